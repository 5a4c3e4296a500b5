//! Tests of reading the copies in progress, and the helpers the sweep's tests share: a
//! checkpoint and a range record written some hours before `NOW`, and `Fake`, an in-memory
//! results bucket.

use super::*;
use crate::sync::resume::{checkpoint_key, DonePart, CHECKPOINT_VERSION};
use std::collections::BTreeMap;
use std::sync::Mutex;
use time::macros::datetime;

pub(crate) const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

/// A checkpoint of `size` bytes in parts of `part`, `done` of them finished, written
/// `updated_h` hours before [`NOW`].
pub(crate) fn checkpoint(
    key: &str,
    upload: &str,
    size: u64,
    part: u64,
    done: u32,
    updated_h: i64,
) -> Checkpoint {
    let at = |h: i64| crate::outcome::format_time(NOW - time::Duration::hours(h));
    let parts: Vec<DonePart> = (1..=done)
        .map(|n| DonePart {
            number: n,
            size: part.min(size - u64::from(n - 1) * part),
            etag: format!("\"p{n}\""),
            crc64: "00000000000000ab".into(),
        })
        .collect();
    // From JSON, as stored: fields the format gains later take their defaults.
    let json = serde_json::json!({
        "version": CHECKPOINT_VERSION,
        "task": "t1",
        "source_bucket": "src",
        "source_key": key,
        "etag": "\"e\"",
        "size": size,
        "fingerprint": "f",
        "dest_bucket": "dst",
        "dest_key": format!("m/{key}"),
        "part_size": part,
        "upload_id": upload,
        "started_at": at(30),
        "updated_at": at(updated_h),
        "parts": parts,
    });
    Checkpoint::parse(json.to_string().as_bytes()).unwrap()
}

/// A range record of `cp`'s upload for parts `first..=last`, `done` of them finished, written
/// `updated_h` hours before [`NOW`].
pub(crate) fn range(
    cp: &Checkpoint,
    first: u32,
    last: u32,
    done: u32,
    updated_h: i64,
) -> RangeRecord {
    let parts: Vec<DonePart> = (first..first + done)
        .map(|n| DonePart {
            number: n,
            size: cp.range(n).1,
            etag: format!("\"p{n}\""),
            crc64: "00000000000000ab".into(),
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "version": CHECKPOINT_VERSION,
        "upload_id": cp.upload_id,
        "first": first,
        "last": last,
        "updated_at": crate::outcome::format_time(NOW - time::Duration::hours(updated_h)),
        "parts": parts,
    }))
    .unwrap()
}

/// Objects in memory with last-modified times; listing pages of `page`; some reads fail.
#[derive(Default)]
pub(crate) struct Fake {
    pub objects: BTreeMap<String, (Bytes, OffsetDateTime)>,
    pub page: usize,
    pub fail_list: bool,
    pub fail_get: Vec<String>,
    pub gets: Mutex<Vec<String>>,
}

impl Fake {
    pub(crate) fn with(checkpoints: &[(Checkpoint, i64)]) -> Self {
        let mut f = Self {
            page: 1000,
            ..Self::default()
        };
        for (cp, modified_h) in checkpoints {
            f.objects.insert(
                checkpoint_key("results", "t1", &cp.dest_bucket, &cp.dest_key),
                (
                    Bytes::from(serde_json::to_vec(cp).unwrap()),
                    NOW - time::Duration::hours(*modified_h),
                ),
            );
        }
        f
    }

    /// Adds `r`, a range record of `cp`, last modified `modified_h` hours before [`NOW`].
    pub(crate) fn add_range(&mut self, cp: &Checkpoint, r: &RangeRecord, modified_h: i64) {
        let key = checkpoint_key("results", "t1", &cp.dest_bucket, &cp.dest_key);
        self.objects.insert(
            crate::sync::resume::range_record_key(&key, &r.upload_id, r.first, r.last),
            (
                Bytes::from(serde_json::to_vec(r).unwrap()),
                NOW - time::Duration::hours(modified_h),
            ),
        );
    }
}

impl CheckpointObjects for Fake {
    async fn list(&self, prefix: &str, token: Option<&str>) -> Result<ListedPage, SourceError> {
        if self.fail_list {
            return Err(SourceError::Transport {
                op: "ListObjectsV2",
                key: prefix.into(),
                source: "connection refused".into(),
                transient: true,
            });
        }
        let keys: Vec<(&String, &(Bytes, OffsetDateTime))> = self
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && token.is_none_or(|t| k.as_str() > t))
            .collect();
        let page: Vec<Listed> = keys
            .iter()
            .take(self.page)
            .map(|(k, (_, at))| Listed {
                key: (*k).clone(),
                last_modified: Some(*at),
            })
            .collect();
        let next = (keys.len() > self.page).then(|| page.last().unwrap().key.clone());
        Ok(ListedPage {
            objects: page,
            next,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, SourceError> {
        self.gets.lock().unwrap().push(key.to_owned());
        if self.fail_get.iter().any(|k| k == key) {
            return Err(SourceError::Transport {
                op: "GetObject",
                key: key.into(),
                source: "timed out".into(),
                transient: true,
            });
        }
        Ok(self.objects.get(key).map(|(b, _)| b.clone()))
    }
}

#[test]
fn every_checkpoint_key_of_the_task_is_under_its_prefix() {
    for results in ["results", "/results/", ""] {
        let key = checkpoint_key(results, "t1", "dst", "m/a");
        assert!(key.starts_with(&task_prefix(results, "t1")), "{key}");
        assert!(!key.starts_with(&task_prefix(results, "t")), "{key}");
    }
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    assert_eq!(results_location(env(&[])), None);
    assert_eq!(
        results_location(env(&[("RESULTS_BUCKET", "r")])),
        Some(("r".into(), "results".into()))
    );
    assert_eq!(
        results_location(env(&[("RESULTS_BUCKET", "r"), ("RESULTS_PREFIX", "/x/")])),
        Some(("r".into(), "x".into()))
    );
}

#[tokio::test]
async fn reads_pages_skips_old_checkpoints_and_reports_damaged_ones() {
    let mut fake = Fake::with(&[
        (checkpoint("a", "u1", 100, 10, 3, 0), 0),
        (checkpoint("b", "u2", 100, 10, 10, 50), 50),
        (checkpoint("c", "u3", 100, 10, 0, 1), 1),
    ]);
    fake.page = 1;
    let damaged = format!("{}damaged.json", task_prefix("results", "t1"));
    fake.objects
        .insert(damaged.clone(), (Bytes::from_static(b"{not json"), NOW));
    let failing = format!("{}failing.json", task_prefix("results", "t1"));
    fake.objects
        .insert(failing.clone(), (Bytes::from_static(b"{}"), NOW));
    fake.fail_get = vec![failing.clone()];
    let prefix = task_prefix("results", "t1");
    let since = NOW - time::Duration::hours(25);
    let copies = read_copies(&fake, &prefix, Select::LatestPerCopy(since), READ_LIMITS)
        .await
        .unwrap();
    assert_eq!((copies.listed, copies.not_read, copies.gone), (5, 1, 0));
    let mut ids: Vec<&str> = copies
        .checkpoints
        .iter()
        .map(|(_, c)| c.upload_id.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["u1", "u3"]);
    assert!(copies.checkpoints.is_sorted_by(|a, b| a.0 <= b.0));
    assert_eq!(copies.unreadable.len(), 2);
    let bad: BTreeMap<&str, bool> = copies
        .unreadable
        .iter()
        .map(|u| (u.key.as_str(), u.read_failed))
        .collect();
    assert!(!bad[damaged.as_str()]);
    assert!(bad[failing.as_str()]);
    assert!(copies.incomplete.is_none());
    // Five pages of one, four reads.
    assert_eq!(copies.requests, 9);
    assert_eq!(copies.not_read, 1);
    // Everything, when no time is given.
    let all = read_copies(&fake, &prefix, Select::All, READ_LIMITS)
        .await
        .unwrap();
    assert_eq!((all.checkpoints.len(), all.not_read), (3, 0));
}

#[tokio::test]
async fn bounds_are_reported_and_a_failed_listing_is_an_error() {
    let mut fake = Fake::with(&[
        (checkpoint("a", "u1", 100, 10, 3, 0), 0),
        (checkpoint("b", "u2", 100, 10, 3, 0), 0),
        (checkpoint("c", "u3", 100, 10, 3, 0), 0),
    ]);
    fake.page = 1;
    let prefix = task_prefix("results", "t1");
    let few = ReadLimits {
        max_listed: 2,
        max_read: 1,
        parallel: 1,
    };
    let copies = read_copies(&fake, &prefix, Select::All, few).await.unwrap();
    assert_eq!((copies.listed, copies.checkpoints.len()), (2, 1));
    assert!(copies
        .incomplete
        .unwrap()
        .contains("only the first 1 were read"));
    let read_all = ReadLimits {
        max_read: 10,
        ..few
    };
    let copies = read_copies(&fake, &prefix, Select::All, read_all)
        .await
        .unwrap();
    assert!(copies.incomplete.unwrap().contains("more than 2 objects"));
    fake.fail_list = true;
    assert!(read_copies(&fake, &prefix, Select::All, READ_LIMITS)
        .await
        .is_err());
}

#[test]
fn a_copy_in_progress_shows_its_progress_and_ages() {
    let cp = checkpoint("big", "UP1", 1000, 300, 2, 0);
    let c = CopyInProgress::of(
        "k",
        &cp,
        &[],
        NOW,
        std::time::Duration::from_secs(24 * 3600),
    );
    assert_eq!(
        (c.bytes_done, c.size, c.parts_done, c.parts_total),
        (600, 1000, 2, 4)
    );
    assert_eq!(c.percent, 60.0);
    assert_eq!(
        (c.age_secs, c.since_progress_secs),
        (Some(30 * 3600), Some(0))
    );
    assert!(!c.stale);
    let line = c.render();
    for want in [
        "m/big  600 B of 1000 B (60.0%)",
        "parts 2/4",
        "upload UP1",
        "age 30.0 h",
        "last progress 0 s ago",
    ] {
        assert!(line.contains(want), "{want:?} not in {line}");
    }
    let old = checkpoint("old", "UP2", 3 << 40, 1 << 30, 1024, 26);
    let c = CopyInProgress::of(
        "k",
        &old,
        &[],
        NOW,
        std::time::Duration::from_secs(24 * 3600),
    );
    assert!(c.stale && c.render().contains("STALE"), "{c:?}");
    assert_eq!(c.percent, 33.3);
    assert!(c.render().contains("1.0 TiB of 3.0 TiB"), "{}", c.render());
    let mut broken = cp.clone();
    broken.updated_at = "yesterday".into();
    let c = CopyInProgress::of("k", &broken, &[], NOW, std::time::Duration::from_secs(3600));
    assert_eq!(c.since_progress_secs, None);
    assert!(c.stale);
}

#[test]
fn human_units() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    assert_eq!(human_secs(-5), "0 s");
    assert_eq!(human_secs(119), "119 s");
    assert_eq!(human_secs(600), "10 min");
    assert_eq!(human_secs(9000), "2.5 h");
    assert_eq!(human_secs(3 * 86_400), "3.0 d");
}

#[test]
fn objects_are_told_apart_by_name() {
    let p = "results-checkpoints/t1/";
    let c = |k: &str| classify(&format!("{p}{k}"));
    assert_eq!(
        c("0123abcd.json"),
        (Kind::Checkpoint, format!("{p}0123abcd.json"))
    );
    assert_eq!(
        c("0123abcd.range-1-64-00ff00ff00ff00ff.json"),
        (Kind::Range, format!("{p}0123abcd.json"))
    );
    assert_eq!(c("0123abcd.claim-00ff00ff00ff00ff.json").0, Kind::Other);
    assert_eq!(c("notes.txt").0, Kind::Other);
    let key = checkpoint_key("results", "t1", "dst", "m/a");
    assert_eq!(classify(&key), (Kind::Checkpoint, key.clone()));
    assert_eq!(
        classify(&crate::sync::resume::range_record_key(&key, "UP", 3, 9)),
        (Kind::Range, key.clone())
    );
    assert_eq!(
        classify(&crate::sync::resume::claim_key(&key, "UP")).0,
        Kind::Other
    );
}

/// A fanned-out copy: its checkpoint written when it began (30 hours ago), its range records
/// since.
fn fanned_out() -> (Fake, Checkpoint) {
    let mut cp = checkpoint("huge", "UPF", 400, 10, 0, 30);
    cp.ranges = crate::sync::resume::split_ranges(cp.parts_total(), 10);
    let mut fake = Fake::with(&[(cp.clone(), 30)]);
    fake.add_range(&cp, &range(&cp, 1, 10, 10, 20), 20);
    fake.add_range(&cp, &range(&cp, 11, 20, 4, 1), 1);
    let mut other_upload = range(&cp, 21, 30, 10, 0);
    other_upload.upload_id = "OLD".into();
    fake.add_range(&cp, &other_upload, 26);
    let claim =
        crate::sync::resume::claim_key(&checkpoint_key("results", "t1", "dst", "m/huge"), "UPF");
    fake.objects
        .insert(claim, (Bytes::from_static(b"1-10 UPF"), NOW));
    (fake, cp)
}

#[tokio::test]
async fn the_sweep_reads_one_object_per_copy_the_latest_written() {
    let (fake, _) = fanned_out();
    let prefix = task_prefix("results", "t1");
    let since = NOW - time::Duration::hours(25);
    let copies = read_copies(&fake, &prefix, Select::LatestPerCopy(since), READ_LIMITS)
        .await
        .unwrap();
    assert_eq!(fake.gets.lock().unwrap().len(), 1);
    assert!(copies.checkpoints.is_empty());
    assert_eq!(copies.ranges.len(), 1);
    assert_eq!(
        (
            copies.ranges[0].1.first,
            copies.ranges[0].1.upload_id.as_str()
        ),
        (11, "UPF")
    );
    assert_eq!((copies.listed, copies.not_read), (5, 4));

    // The latest is damaged: the next latest is read.
    let (mut fake, cp) = fanned_out();
    let key = checkpoint_key("results", "t1", &cp.dest_bucket, &cp.dest_key);
    let latest = crate::sync::resume::range_record_key(&key, "UPF", 11, 20);
    fake.objects.get_mut(&latest).unwrap().0 = Bytes::from_static(b"{\"version\":");
    let copies = read_copies(&fake, &prefix, Select::LatestPerCopy(since), READ_LIMITS)
        .await
        .unwrap();
    assert_eq!(fake.gets.lock().unwrap().len(), 2);
    assert_eq!(copies.unreadable.len(), 1);
    assert!(!copies.unreadable[0].read_failed);
    assert_eq!(copies.ranges[0].1.first, 1);

    // Nothing written since: nothing read.
    let (fake, _) = fanned_out();
    let later = NOW - time::Duration::minutes(30);
    let copies = read_copies(&fake, &prefix, Select::LatestPerCopy(later), READ_LIMITS)
        .await
        .unwrap();
    assert!(fake.gets.lock().unwrap().is_empty());
    assert_eq!(copies.not_read, 5);
}

#[tokio::test]
async fn a_fanned_out_copy_shows_the_progress_of_its_ranges() {
    let (fake, _) = fanned_out();
    let prefix = task_prefix("results", "t1");
    let copies = read_copies(&fake, &prefix, Select::All, READ_LIMITS)
        .await
        .unwrap();
    // The claim is not read.
    assert_eq!(fake.gets.lock().unwrap().len(), 4);
    let list = in_progress(&copies, NOW, std::time::Duration::from_secs(24 * 3600));
    assert_eq!(list.len(), 1);
    let c = &list[0];
    // 14 parts of 10 bytes in this upload's records; the other upload's are left out.
    assert_eq!((c.bytes_done, c.parts_done, c.parts_total), (140, 14, 40));
    assert_eq!((c.ranges_done, c.ranges_total), (1, 4));
    assert_eq!(c.since_progress_secs, Some(3600));
    assert!(!c.stale);
    assert!(
        c.render().contains("parts 14/40  ranges 1/4  upload UPF"),
        "{}",
        c.render()
    );
}
