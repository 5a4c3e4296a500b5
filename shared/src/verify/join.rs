//! The pure core of a verification: the merge-join of two listings in key order, and the rule
//! that decides what each key is from what the listings say, or from the HEADs when they cannot.
//!
//! Nothing here does I/O: [`next_pair`] pairs the heads of two sorted queues, [`listing_verdict`]
//! settles a pair from the listings or names the HEADs it needs, and [`head_verdict`] settles it
//! from those HEADs. [`MergeJoin`] runs the join over two iterators (the tests' and the property
//! test's way in); the runner in [`super::run`] runs it over pages fetched as the queues drain.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::VecDeque;

/// One object as a listing shows it, under its destination key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The destination key (for an S3 object: where the task copies it).
    pub key: String,
    /// The object's size.
    pub size: u64,
    /// The ETag, without quotes (compared without regard to case: S3 writes MD5s in lower case,
    /// OSS in upper case).
    pub etag: String,
    /// Last modified, whole seconds since the epoch (both listings give whole seconds).
    pub modified: i64,
}

/// What a key is, once verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// OSS holds the S3 object's bytes (and, as far as the rule can tell, its metadata).
    Equal,
    /// In S3, not in OSS.
    Missing,
    /// In OSS, not in S3.
    Extra,
    /// In both, with different sizes.
    SizeDiffers,
    /// In both, same size, but nothing proves OSS holds the current S3 version: see [`Reason`].
    MayDiffer,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 5] = [
        Kind::Equal,
        Kind::Missing,
        Kind::Extra,
        Kind::SizeDiffers,
        Kind::MayDiffer,
    ];

    /// The kind's name in the report (`size_differs`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Equal => "equal",
            Kind::Missing => "missing",
            Kind::Extra => "extra",
            Kind::SizeDiffers => "size_differs",
            Kind::MayDiffer => "may_differ",
        }
    }
}

/// Why a key [`Kind::MayDiffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Both ETags are MD5s of the bytes and they differ, and OSS's sync marker does not name the
    /// S3 ETag either (it would for an S3 object encrypted with KMS, whose ETag is no MD5).
    Etag,
    /// The ETags cannot be compared (a multipart ETag on either side) or the rule needed the
    /// marker, and the OSS object has none: the task did not write it.
    NoMarker,
    /// The OSS object's sync marker names another S3 ETag: it is a copy of another version.
    OtherVersion,
    /// The S3 object changed after OSS's copy was written (by their times) and the copy's marker
    /// records other metadata than S3's now: a change of metadata alone (S3 keeps the ETag).
    Metadata,
    /// A side changed between the listing and the HEAD (gone, or another ETag or size): the
    /// verification saw the key mid-change.
    Changed,
}

impl Reason {
    /// The reason's name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Etag => "etag",
            Reason::NoMarker => "no_marker",
            Reason::OtherVersion => "other_version",
            Reason::Metadata => "metadata",
            Reason::Changed => "changed",
        }
    }
}

/// A key from one side or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pair {
    /// Only in S3.
    Source(Entry),
    /// Only in OSS.
    Dest(Entry),
    /// In both.
    Both(Entry, Entry),
}

impl Pair {
    /// The destination key.
    pub fn key(&self) -> &str {
        match self {
            Pair::Source(e) | Pair::Dest(e) | Pair::Both(e, _) => &e.key,
        }
    }
}

/// Takes the next pair off two queues sorted by key: the smaller head alone, or both heads when
/// their keys are equal. Each queue must be non-empty unless its side is exhausted; `None` when
/// both are empty. Keys compare as bytes, the order both listings use.
pub fn next_pair(source: &mut VecDeque<Entry>, dest: &mut VecDeque<Entry>) -> Option<Pair> {
    Some(match which(source.front(), dest.front())? {
        Ordering::Less => Pair::Source(source.pop_front()?),
        Ordering::Greater => Pair::Dest(dest.pop_front()?),
        Ordering::Equal => Pair::Both(source.pop_front()?, dest.pop_front()?),
    })
}

/// Which head goes next: `Less` the source's alone, `Greater` the destination's alone, `Equal`
/// both; `None` when both sides are exhausted.
fn which(source: Option<&Entry>, dest: Option<&Entry>) -> Option<Ordering> {
    Some(match (source, dest) {
        (None, None) => return None,
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (Some(s), Some(d)) => s.key.as_bytes().cmp(d.key.as_bytes()),
    })
}

/// The merge-join of two key-ordered iterators, by [`next_pair`].
pub struct MergeJoin<S: Iterator<Item = Entry>, D: Iterator<Item = Entry>> {
    source: S,
    dest: D,
    heads: (VecDeque<Entry>, VecDeque<Entry>),
}

impl<S: Iterator<Item = Entry>, D: Iterator<Item = Entry>> MergeJoin<S, D> {
    /// Joins `source` and `dest`, each sorted by key.
    pub fn new(source: S, dest: D) -> Self {
        Self {
            source,
            dest,
            heads: (VecDeque::new(), VecDeque::new()),
        }
    }
}

impl<S: Iterator<Item = Entry>, D: Iterator<Item = Entry>> Iterator for MergeJoin<S, D> {
    type Item = Pair;

    fn next(&mut self) -> Option<Pair> {
        if self.heads.0.is_empty() {
            self.heads.0.extend(self.source.next());
        }
        if self.heads.1.is_empty() {
            self.heads.1.extend(self.dest.next());
        }
        next_pair(&mut self.heads.0, &mut self.heads.1)
    }
}

/// What the listings settle about a key in both, or which HEADs it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Settled by the listings.
    Settled(Kind),
    /// The listings cannot settle it: HEAD the OSS object (its sync marker) and, when `source`,
    /// the S3 object too (its metadata, to compare with the marker's fingerprint).
    Head {
        /// Whether the S3 object's HEAD is needed too.
        source: bool,
    },
}

/// Whether an ETag is a plain MD5 (32 hex digits): a multipart ETag (`…-N`) is not.
pub fn is_md5(etag: &str) -> bool {
    let etag = etag.trim_matches('"');
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether two ETags are the same, quotes and case aside.
fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"')
        .eq_ignore_ascii_case(b.trim_matches('"'))
}

/// Whether the OSS object was written after the S3 object's last change, by more than
/// `tolerance_s` seconds (the clock difference allowed between the two clouds; the listings'
/// whole seconds are already allowed for by the strict comparison).
pub fn written_after(source: &Entry, dest: &Entry, tolerance_s: i64) -> bool {
    dest.modified > source.modified.saturating_add(tolerance_s)
}

/// The listing rule, for a key in both listings:
///
/// 1. Sizes differ: [`Kind::SizeDiffers`].
/// 2. Both ETags are MD5s and equal, and OSS's copy was written after S3's last change: the bytes
///    are the same (both ETags are the MD5 of the bytes) and the copy was made from the current
///    version, so its metadata too: [`Kind::Equal`], no request.
/// 3. Both ETags are MD5s and equal, but the copy is not later than S3's last change: the bytes
///    are the same, the metadata may not be (S3 keeps the ETag when only the metadata changes, and
///    a copy onto itself moves `LastModified`): HEAD both sides and compare the marker's
///    metadata fingerprint with S3's metadata.
/// 4. Otherwise (ETags differ, or one is multipart so they cannot be compared): HEAD the OSS
///    object, whose sync marker names the S3 ETag it was copied from; and S3's too when the copy
///    is not later than S3's last change (for the metadata).
pub fn listing_verdict(source: &Entry, dest: &Entry, tolerance_s: i64) -> Verdict {
    debug_assert_eq!(source.key, dest.key);
    if source.size != dest.size {
        return Verdict::Settled(Kind::SizeDiffers);
    }
    let after = written_after(source, dest, tolerance_s);
    let comparable = is_md5(&source.etag) && is_md5(&dest.etag);
    if comparable && same_etag(&source.etag, &dest.etag) && after {
        return Verdict::Settled(Kind::Equal);
    }
    Verdict::Head { source: !after }
}

/// What a HEAD of the OSS object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestHead {
    /// Gone since the listing.
    Gone,
    /// There: its size, and its sync marker's source ETag and metadata fingerprint, if it has a
    /// marker.
    Found {
        /// Its size now.
        size: u64,
        /// The marker's source ETag and fingerprint; `None` without a marker.
        marker: Option<(String, Option<String>)>,
    },
}

/// What a HEAD of the S3 object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceHead {
    /// Not asked (the copy is later than S3's last change).
    NotAsked,
    /// Gone since the listing.
    Gone,
    /// There: its ETag, size and metadata fingerprint now.
    Found {
        /// ETag without quotes.
        etag: String,
        /// Size.
        size: u64,
        /// [`crate::sync::metadata::metadata_fingerprint`] of its metadata.
        fingerprint: String,
    },
}

/// The rule after the HEADs [`listing_verdict`] asked for: a key whose bytes the ETags or the
/// marker tie to the S3 object, and whose marker's metadata matches S3's when S3 was asked, is
/// [`Kind::Equal`]; anything else [`Kind::MayDiffer`], with the reason.
pub fn head_verdict(
    source: &Entry,
    dest: &Entry,
    dest_head: &DestHead,
    source_head: &SourceHead,
) -> (Kind, Option<Reason>) {
    let may = |r| (Kind::MayDiffer, Some(r));
    let (size, marker) = match dest_head {
        DestHead::Gone => return may(Reason::Changed),
        DestHead::Found { size, marker } => (*size, marker.as_ref()),
    };
    if size != dest.size {
        return may(Reason::Changed);
    }
    let marked = marker.is_some_and(|(etag, _)| same_etag(etag, &source.etag));
    let comparable = is_md5(&source.etag) && is_md5(&dest.etag);
    let bytes_tied = marked || (comparable && same_etag(&source.etag, &dest.etag));
    if !bytes_tied {
        return may(match marker {
            _ if comparable => Reason::Etag,
            None => Reason::NoMarker,
            Some(_) => Reason::OtherVersion,
        });
    }
    match source_head {
        SourceHead::NotAsked => (Kind::Equal, None),
        SourceHead::Gone => may(Reason::Changed),
        SourceHead::Found {
            etag,
            size,
            fingerprint,
        } => {
            if !same_etag(etag, &source.etag) || *size != source.size {
                may(Reason::Changed)
            } else {
                match marker {
                    None => may(Reason::NoMarker),
                    Some((_, fp)) if fp.as_deref() == Some(fingerprint.as_str()) => {
                        (Kind::Equal, None)
                    }
                    Some(_) => may(Reason::Metadata),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MD5_A: &str = "0cc175b9c0f1b6a831c399e269772661";
    const MD5_B: &str = "92eb5ffee6ae2fec3ad71c777531578f";

    fn e(key: &str, size: u64, etag: &str, modified: i64) -> Entry {
        Entry {
            key: key.into(),
            size,
            etag: etag.into(),
            modified,
        }
    }

    fn marked(etag: &str, fp: &str) -> DestHead {
        DestHead::Found {
            size: 1,
            marker: Some((etag.into(), Some(fp.into()))),
        }
    }

    fn found(etag: &str, fp: &str) -> SourceHead {
        SourceHead::Found {
            etag: etag.into(),
            size: 1,
            fingerprint: fp.into(),
        }
    }

    #[test]
    fn the_join_pairs_equal_keys_and_keeps_byte_order() {
        let s = vec![e("a", 1, "x", 0), e("b", 1, "x", 0), e("é", 1, "x", 0)];
        let d = vec![e("b", 1, "x", 0), e("c", 1, "x", 0), e("z", 1, "x", 0)];
        let got: Vec<(String, &str)> = MergeJoin::new(s.into_iter(), d.into_iter())
            .map(|p| {
                let side = match &p {
                    Pair::Source(_) => "s",
                    Pair::Dest(_) => "d",
                    Pair::Both(..) => "both",
                };
                (p.key().to_owned(), side)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), "s"),
                ("b".into(), "both"),
                ("c".into(), "d"),
                ("z".into(), "d"),
                // "é" is 0xC3 0xA9: after every ASCII key, as S3 and OSS list it.
                ("é".into(), "s"),
            ]
        );
    }

    #[test]
    fn the_listing_settles_sizes_and_equal_md5s_written_after() {
        let s = e("k", 1, MD5_A, 100);
        assert_eq!(
            listing_verdict(&s, &e("k", 2, MD5_A, 200), 1),
            Verdict::Settled(Kind::SizeDiffers)
        );
        // S3's lower case, OSS's upper case, OSS quoted: the same MD5.
        let upper = format!("\"{}\"", MD5_A.to_uppercase());
        assert_eq!(
            listing_verdict(&s, &e("k", 1, &upper, 102), 1),
            Verdict::Settled(Kind::Equal)
        );
        // Within the tolerance: S3 may have changed after the copy (metadata only).
        assert_eq!(
            listing_verdict(&s, &e("k", 1, MD5_A, 101), 1),
            Verdict::Head { source: true }
        );
        assert_eq!(
            listing_verdict(&s, &e("k", 1, MD5_A, 99), 0),
            Verdict::Head { source: true }
        );
        // Other bytes of the same size, written later: only the OSS marker is needed.
        assert_eq!(
            listing_verdict(&s, &e("k", 1, MD5_B, 200), 1),
            Verdict::Head { source: false }
        );
        // A multipart ETag on either side cannot be compared.
        assert_eq!(
            listing_verdict(&e("k", 1, "abc-2", 100), &e("k", 1, MD5_A, 200), 1),
            Verdict::Head { source: false }
        );
    }

    #[test]
    fn the_heads_settle_by_marker_and_metadata() {
        let s = e("k", 1, MD5_A, 100);
        let later = e("k", 1, MD5_B, 200);
        // Overwritten behind the pipeline's back: no marker.
        let bare = DestHead::Found {
            size: 1,
            marker: None,
        };
        assert_eq!(
            head_verdict(&s, &later, &bare, &SourceHead::NotAsked),
            (Kind::MayDiffer, Some(Reason::Etag))
        );
        // A KMS object: the ETags differ but the marker names S3's.
        assert_eq!(
            head_verdict(&s, &later, &marked(MD5_A, "f"), &SourceHead::NotAsked),
            (Kind::Equal, None)
        );
        // Multipart: the marker decides.
        let mp = e("k", 1, "abc-2", 100);
        let oss_mp = e("k", 1, "DEF-3", 200);
        assert_eq!(
            head_verdict(&mp, &oss_mp, &marked("abc-2", "f"), &SourceHead::NotAsked),
            (Kind::Equal, None)
        );
        assert_eq!(
            head_verdict(&mp, &oss_mp, &marked("old-2", "f"), &SourceHead::NotAsked),
            (Kind::MayDiffer, Some(Reason::OtherVersion))
        );
        assert_eq!(
            head_verdict(&mp, &oss_mp, &bare, &SourceHead::NotAsked),
            (Kind::MayDiffer, Some(Reason::NoMarker))
        );
        // Same bytes, S3 changed after the copy: the metadata fingerprints decide.
        let same = e("k", 1, MD5_A, 100);
        assert_eq!(
            head_verdict(&s, &same, &marked(MD5_A, "f1"), &found(MD5_A, "f1")),
            (Kind::Equal, None)
        );
        assert_eq!(
            head_verdict(&s, &same, &marked(MD5_A, "f1"), &found(MD5_A, "f2")),
            (Kind::MayDiffer, Some(Reason::Metadata))
        );
        assert_eq!(
            head_verdict(&s, &same, &bare, &found(MD5_A, "f1")),
            (Kind::MayDiffer, Some(Reason::NoMarker))
        );
        // Mid-change.
        assert_eq!(
            head_verdict(&s, &same, &marked(MD5_A, "f1"), &found(MD5_B, "f1")),
            (Kind::MayDiffer, Some(Reason::Changed))
        );
        assert_eq!(
            head_verdict(&s, &same, &DestHead::Gone, &SourceHead::NotAsked),
            (Kind::MayDiffer, Some(Reason::Changed))
        );
        assert_eq!(
            head_verdict(&s, &same, &marked(MD5_A, "f1"), &SourceHead::Gone),
            (Kind::MayDiffer, Some(Reason::Changed))
        );
    }

    fn keys() -> impl Strategy<Value = std::collections::BTreeSet<String>> {
        proptest::collection::btree_set("[a-c\\x{e9}/]{0,4}", 0..40)
    }

    fn entries(keys: &std::collections::BTreeSet<String>) -> Vec<Entry> {
        // BTreeSet<String> orders by bytes, as the listings do.
        keys.iter().map(|k| e(k, 1, MD5_A, 0)).collect()
    }

    proptest! {
        #[test]
        fn every_key_comes_once_in_order_paired_when_on_both_sides(a in keys(), b in keys()) {
            let got: Vec<Pair> = MergeJoin::new(entries(&a).into_iter(), entries(&b).into_iter()).collect();
            let all: Vec<&String> = a.union(&b).collect();
            prop_assert_eq!(got.len(), all.len());
            for (p, k) in got.iter().zip(all) {
                prop_assert_eq!(p.key(), k.as_str());
                let expect = match (a.contains(k), b.contains(k)) {
                    (true, true) => matches!(p, Pair::Both(..)),
                    (true, false) => matches!(p, Pair::Source(_)),
                    _ => matches!(p, Pair::Dest(_)),
                };
                prop_assert!(expect, "{:?}", p);
            }
        }

        #[test]
        fn equal_is_never_said_of_other_bytes(
            size in 0u64..3, dsize in 0u64..3,
            se in prop_oneof![Just(MD5_A), Just(MD5_B), Just("abc-2")],
            de in prop_oneof![Just(MD5_A), Just(MD5_B), Just("DEF-3")],
            sm in 0i64..5, dm in 0i64..5, tol in 0i64..2,
            marker in proptest::option::of(prop_oneof![Just(MD5_A), Just(MD5_B), Just("abc-2")]),
            fp_same in any::<bool>(),
        ) {
            let s = e("k", size, se, sm);
            let d = e("k", dsize, de, dm);
            let equal = match listing_verdict(&s, &d, tol) {
                Verdict::Settled(k) => k == Kind::Equal,
                Verdict::Head { source } => {
                    let dh = DestHead::Found { size: dsize, marker: marker.map(|m| (m.to_owned(), Some("f".to_owned()))) };
                    let sh = if source { SourceHead::Found { etag: se.into(), size, fingerprint: if fp_same { "f".into() } else { "g".into() } } } else { SourceHead::NotAsked };
                    let (k, r) = head_verdict(&s, &d, &dh, &sh);
                    prop_assert_eq!(k == Kind::Equal, r.is_none());
                    if k == Kind::Equal && source {
                        prop_assert!(fp_same && marker.is_some());
                    }
                    k == Kind::Equal
                }
            };
            if equal {
                prop_assert_eq!(size, dsize);
                // The bytes are tied to S3's: equal MD5s, or a marker naming S3's ETag.
                prop_assert!((is_md5(se) && se == de) || marker == Some(se));
            }
        }
    }
}
