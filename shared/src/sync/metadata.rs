//! Metadata mapping: S3 object metadata → OSS object metadata, with the names OSS cannot carry
//! reported rather than dropped silently, and the sync marker that lets a later event see that
//! the destination already holds a source version.

use crate::store::object::{ObjectHead, ObjectMetadata};
use crate::store::source::{SourceMetadata, SourceObject};

/// User-metadata name (after `x-oss-meta-`) holding the source ETag of the copied version.
pub const MARKER_ETAG: &str = "s3sync-source-etag";
/// User-metadata name holding the source version id, when the source bucket is versioned.
pub const MARKER_VERSION: &str = "s3sync-source-version-id";
/// User-metadata name holding a fingerprint of the source version's metadata (content headers,
/// user metadata, storage class), so a change of metadata alone, which keeps the ETag, is seen.
pub const MARKER_META: &str = "s3sync-source-meta";
/// User-metadata name holding the S3 `sequencer` of the event the copy was made for, when it had
/// one: a later event with a sequencer not above it needs nothing.
pub const MARKER_SEQUENCER: &str = "s3sync-source-sequencer";
/// User-metadata name holding the id of the SQS message whose job wrote the copy: a redelivery of
/// that message must confirm its own write against the source, a duplicate in another message need
/// not (see `copy.rs`).
pub const MARKER_MESSAGE: &str = "s3sync-message-id";
/// User-metadata names starting with this are the product's own; a source name with it is
/// reported and not copied.
pub const MARKER_PREFIX: &str = "s3sync-";

/// Most bytes of user metadata (names and values) OSS keeps on one object.
pub const MAX_USER_METADATA: usize = 8 * 1024;
/// Most tags on one object.
pub const MAX_TAGS: usize = 10;

/// Metadata ready for OSS, and what could not be carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mapped {
    /// What the destination object gets.
    pub metadata: ObjectMetadata,
    /// Source names that were not copied, each with the reason
    /// (`x-amz-meta-my_key: name has characters OSS does not allow`).
    pub dropped: Vec<String>,
}

/// Whether a header value can be sent as is: visible ASCII, spaces and tabs.
fn header_safe(v: &str) -> bool {
    v.bytes().all(|c| c == b'\t' || (0x20..0x7f).contains(&c))
}

/// OSS user-metadata names: letters, digits and `-` (stored lower-case).
fn oss_meta_name_ok(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// OSS tag keys (1–128) and values (0–256): ASCII letters, digits, spaces and `+ - = . _ : /`
/// (OSS refuses the whole upload for any other character, `@` and non-ASCII letters included).
fn tag_ok(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b" +-=._:/".contains(&c))
}

/// A short fingerprint (hex) of a source version's metadata: what S3 can change without
/// changing the ETag (`CopyObject` onto itself with new metadata, or a PUT of the same bytes).
pub fn metadata_fingerprint(m: &SourceMetadata) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut field = |v: Option<&str>| {
        match v {
            None => h.update([0u8]),
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        };
    };
    for v in [
        &m.content_type,
        &m.cache_control,
        &m.content_disposition,
        &m.content_encoding,
        &m.content_language,
        &m.expires,
        &m.storage_class,
    ] {
        field(v.as_deref());
    }
    let mut user: Vec<(String, &str)> = m
        .user
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    user.sort();
    for (k, v) in &user {
        field(Some(k));
        field(Some(v));
    }
    hex::encode(&h.finalize()[..8])
}

/// For which event and message a copy is written: recorded in the sync marker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrittenFor<'a> {
    /// The S3 sequencer of the event the copy is made for, if it had one.
    pub sequencer: Option<&'a str>,
    /// The SQS message whose job writes the copy.
    pub message_id: Option<&'a str>,
}

/// Maps a source version's metadata (and tags, if copied) for the destination, with the sync
/// marker saying which version it is and for which event and message it was written.
pub fn map_metadata(
    src: &SourceObject,
    tags: &[(String, String)],
    storage_classes: &[(String, String)],
    written_for: WrittenFor<'_>,
) -> Mapped {
    let m: &SourceMetadata = &src.metadata;
    let mut dropped = Vec::new();
    let mut standard = |name: &str, v: &Option<String>| -> Option<String> {
        let v = v.as_ref()?;
        if header_safe(v) {
            Some(v.clone())
        } else {
            dropped.push(format!("{name}: value is not printable ASCII"));
            None
        }
    };
    let mut out = ObjectMetadata {
        content_type: standard("content-type", &m.content_type),
        cache_control: standard("cache-control", &m.cache_control),
        content_disposition: standard("content-disposition", &m.content_disposition),
        content_encoding: standard("content-encoding", &m.content_encoding),
        content_language: standard("content-language", &m.content_language),
        expires: standard("expires", &m.expires),
        ..ObjectMetadata::default()
    };
    let mut user = vec![
        (MARKER_ETAG.to_owned(), src.etag.clone()),
        (MARKER_META.to_owned(), metadata_fingerprint(m)),
    ];
    if let Some(v) = &src.version_id {
        user.push((MARKER_VERSION.to_owned(), v.clone()));
    }
    for (name, value) in [
        (MARKER_SEQUENCER, written_for.sequencer),
        (MARKER_MESSAGE, written_for.message_id),
    ] {
        if let Some(v) = value.filter(|v| header_safe(v) && !v.is_empty()) {
            user.push((name.to_owned(), v.to_owned()));
        }
    }
    let mut budget: usize = user.iter().map(|(k, v)| k.len() + v.len()).sum();
    for (name, value) in &m.user {
        let name = name.to_ascii_lowercase();
        let why = if !oss_meta_name_ok(&name) {
            Some("name has characters OSS does not allow (only letters, digits and '-')")
        } else if name.starts_with(MARKER_PREFIX) {
            Some("name is reserved for the sync marker")
        } else if !header_safe(value) {
            Some("value is not printable ASCII")
        } else if budget + name.len() + value.len() > MAX_USER_METADATA {
            Some("user metadata would exceed OSS's 8 KB")
        } else {
            None
        };
        match why {
            Some(why) => dropped.push(format!("x-amz-meta-{name}: {why}")),
            None => {
                budget += name.len() + value.len();
                user.push((name, value.clone()));
            }
        }
    }
    user.sort();
    out.user = user;
    if let Some(class) = &m.storage_class {
        out.storage_class = storage_classes
            .iter()
            .find(|(s3, _)| s3 == class)
            .map(|(_, oss)| oss.clone());
    }
    let mut kept = Vec::new();
    for (k, v) in tags {
        if kept.len() == MAX_TAGS {
            dropped.push(format!("tag {k}: more than {MAX_TAGS} tags"));
        } else if !tag_ok(k, 1, 128) || !tag_ok(v, 0, 256) {
            dropped.push(format!("tag {k}: key or value OSS does not allow"));
        } else {
            kept.push(format!("{}={}", tag_encode(k), tag_encode(v)));
        }
    }
    if !kept.is_empty() {
        out.tagging = Some(kept.join("&"));
    }
    Mapped {
        metadata: out,
        dropped,
    }
}

fn tag_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What a destination object's sync marker says: which source version it is a copy of, and for
/// which event and message it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The source version's ETag.
    pub etag: String,
    /// The object's size (the destination's, which equals the source version's).
    pub size: u64,
    /// The fingerprint of the source version's metadata.
    pub fingerprint: Option<String>,
    /// The S3 sequencer of the event the copy was written for, if it had one.
    pub sequencer: Option<String>,
    /// The SQS message whose job wrote the copy, if known.
    pub message_id: Option<String>,
}

impl Marker {
    /// Whether the marked copy is of this source version: same ETag, size and metadata.
    pub fn holds(&self, source: &SourceObject, fingerprint: &str) -> bool {
        self.etag == source.etag
            && self.size == source.size
            && self.fingerprint.as_deref() == Some(fingerprint)
    }
}

fn marker_value<'a>(dest: &'a ObjectHead, name: &str) -> Option<&'a str> {
    dest.metadata
        .user
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The sync marker of a destination object; `None` for objects the task did not write.
pub fn read_marker(dest: &ObjectHead) -> Option<Marker> {
    let etag = marker_value(dest, MARKER_ETAG)?
        .trim_matches('"')
        .to_owned();
    let value = |name| marker_value(dest, name).map(str::to_owned);
    Some(Marker {
        etag,
        size: dest.size,
        fingerprint: value(MARKER_META),
        sequencer: value(MARKER_SEQUENCER).filter(|s| !s.is_empty()),
        message_id: value(MARKER_MESSAGE).filter(|s| !s.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> SourceObject {
        SourceObject {
            size: 5,
            etag: "0123456789abcdef0123456789abcdef".into(),
            version_id: Some("v1".into()),
            tag_count: 0,
            etag_is_md5: true,
            metadata: SourceMetadata {
                content_type: Some("text/plain; charset=utf-8".into()),
                cache_control: Some("max-age=60".into()),
                content_disposition: Some("attachment; filename=\"ü.txt\"".into()),
                content_encoding: Some("gzip".into()),
                content_language: Some("de".into()),
                expires: Some("Thu, 01 Dec 2033 16:00:00 GMT".into()),
                user: vec![
                    ("author".into(), "Ann".into()),
                    ("my_key".into(), "x".into()),
                    ("s3sync-source-etag".into(), "forged".into()),
                    ("Title-Case".into(), "=?UTF-8?B?w7w=?=".into()),
                ],
                storage_class: Some("STANDARD_IA".into()),
                tagging: None,
            },
        }
    }

    #[test]
    fn standard_headers_user_metadata_and_marker() {
        let m = map_metadata(
            &src(),
            &[],
            &[("STANDARD_IA".into(), "IA".into())],
            WrittenFor::default(),
        );
        let md = &m.metadata;
        assert_eq!(
            md.content_type.as_deref(),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(md.expires.as_deref(), Some("Thu, 01 Dec 2033 16:00:00 GMT"));
        assert_eq!(md.content_disposition, None);
        assert_eq!(md.storage_class.as_deref(), Some("IA"));
        let names: Vec<&str> = md.user.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "author",
                MARKER_ETAG,
                MARKER_META,
                MARKER_VERSION,
                "title-case"
            ]
        );
        assert!(md.user.contains(&(MARKER_ETAG.into(), src().etag)));
        assert_eq!(m.dropped.len(), 3, "{:?}", m.dropped);
        assert!(m.dropped[0].starts_with("content-disposition"));
        assert!(m.dropped[1].starts_with("x-amz-meta-my_key"));
        assert!(m.dropped[2].contains("reserved"));
    }

    #[test]
    fn unmapped_storage_class_gets_the_bucket_default() {
        assert_eq!(
            map_metadata(&src(), &[], &[], WrittenFor::default())
                .metadata
                .storage_class,
            None
        );
    }

    #[test]
    fn metadata_over_8_kb_is_reported() {
        let mut s = src();
        s.metadata.user = (0..10)
            .map(|i| (format!("k{i}"), "v".repeat(1000)))
            .collect();
        let m = map_metadata(&s, &[], &[], WrittenFor::default());
        // Three markers (ETag, metadata fingerprint, version id) and eight of the ten.
        assert_eq!(m.metadata.user.len(), 3 + 8);
        assert_eq!(m.dropped.iter().filter(|d| d.contains("8 KB")).count(), 2);
    }

    #[test]
    fn tags_within_oss_limits() {
        let mut tags: Vec<(String, String)> = vec![
            ("team".into(), "data eng".into()),
            ("bad#key".into(), "v".into()),
            ("k".into(), "x".repeat(257)),
        ];
        tags.extend((0..10).map(|i| (format!("t{i}"), "v".into())));
        let m = map_metadata(&src(), &tags, &[], WrittenFor::default());
        let t = m.metadata.tagging.unwrap();
        assert!(t.starts_with("team=data%20eng&t0=v"), "{t}");
        assert_eq!(t.split('&').count(), 10);
        assert_eq!(
            m.dropped.iter().filter(|d| d.starts_with("tag ")).count(),
            3
        );
    }

    /// A destination HEAD of 5 bytes with this metadata.
    fn head_with(metadata: ObjectMetadata) -> ObjectHead {
        ObjectHead {
            size: 5,
            etag: "\"X\"".into(),
            crc64: None,
            last_modified: None,
            object_type: None,
            tagging_count: 0,
            metadata,
            request_id: String::new(),
        }
    }

    #[test]
    fn the_marker_reads_back_what_was_written() {
        let mapped = map_metadata(&src(), &[], &[], WrittenFor::default());
        let m = read_marker(&head_with(mapped.metadata)).unwrap();
        let fp = metadata_fingerprint(&src().metadata);
        assert!(m.holds(&src(), &fp));
        assert_eq!((&m.sequencer, &m.message_id), (&None, &None));
        let mut bigger = src();
        bigger.size = 6;
        assert!(!m.holds(&bigger, &fp));
        assert!(!m.holds(&src(), "another fingerprint"));
        assert_eq!(read_marker(&head_with(ObjectMetadata::default())), None);
    }

    #[test]
    fn tags_follow_oss_character_rules() {
        let tags: Vec<(String, String)> = vec![
            ("owner".into(), "ann@example.com".into()),
            ("stadt".into(), "Zürich".into()),
            ("path".into(), "a/b c+d=e.f_g:h-i".into()),
        ];
        let m = map_metadata(&src(), &tags, &[], WrittenFor::default());
        assert_eq!(
            m.metadata.tagging.as_deref(),
            Some("path=a%2Fb%20c%2Bd%3De%2Ef%5Fg%3Ah%2Di")
        );
        let tags: Vec<&String> = m.dropped.iter().filter(|d| d.starts_with("tag ")).collect();
        assert_eq!(tags.len(), 2, "{:?}", m.dropped);
        assert!(tags[0].starts_with("tag owner:"), "{tags:?}");
        assert!(tags[1].starts_with("tag stadt:"), "{tags:?}");
    }

    #[test]
    fn metadata_changes_change_the_fingerprint_and_the_marker_names_the_event() {
        let a = src();
        let mut b = src();
        assert_eq!(
            metadata_fingerprint(&a.metadata),
            metadata_fingerprint(&b.metadata)
        );
        b.metadata.user[0].1.push('!');
        assert_ne!(
            metadata_fingerprint(&a.metadata),
            metadata_fingerprint(&b.metadata)
        );
        let mut c = src();
        c.metadata.content_type = None;
        assert_ne!(
            metadata_fingerprint(&a.metadata),
            metadata_fingerprint(&c.metadata)
        );
        let written_for = WrittenFor {
            sequencer: Some("0055B988C5A8B2A6D9"),
            message_id: Some("m-1"),
        };
        let mapped = map_metadata(&a, &[], &[], written_for);
        let m = read_marker(&head_with(mapped.metadata)).unwrap();
        assert_eq!(
            m.fingerprint.as_deref(),
            Some(metadata_fingerprint(&a.metadata).as_str())
        );
        assert_eq!(m.sequencer.as_deref(), Some("0055B988C5A8B2A6D9"));
        assert_eq!(m.message_id.as_deref(), Some("m-1"));
    }
}
