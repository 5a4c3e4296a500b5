//! Copies fanned out to range jobs: completed once by the last of them, duplicates, sources
//! that changed, the ranges, older heads and claims left behind.

use super::{body, holding, job, Rig, PART};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::store::checkpoints::CheckpointStore;
use s3_oss_sync::store::destination::DestinationStore;
use s3_oss_sync::store::source::{SourceMetadata, SourceObject, SourceStore};
use s3_oss_sync::sync::copy::{
    Copier, CopyOptions, Job, Limits, WriteAhead, FANNED_OUT, RANGE_UPLOADED,
};
use s3_oss_sync::sync::resume::{checkpoint_key, split_ranges, RangeJob};
use s3_oss_sync::testing::hooked::HookedSource;
use s3_oss_sync::testing::memory::MemoryDestination;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The handler's side of fan-out: range jobs are kept here, write-aheads always succeed.
#[derive(Default)]
struct Ranges(std::sync::Mutex<Vec<RangeJob>>);

impl WriteAhead for Ranges {
    fn before_write<'a>(&'a self, _job: &'a Job<'_>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn send_ranges<'a>(
        &'a self,
        _job: &'a Job<'_>,
        ranges: &'a [RangeJob],
    ) -> BoxFuture<'a, Result<(), String>> {
        self.0.lock().unwrap().extend_from_slice(ranges);
        Box::pin(async { Ok(()) })
    }
}

fn fanning() -> CopyOptions {
    CopyOptions {
        fan_out_threshold: Some(PART * 4),
        fan_out_range: PART * 3,
        ..CopyOptions::default()
    }
}

/// Stores for copies fanned out to range jobs of three parts ([`fanning`]), OSS answering each
/// part after `delay_ms`, and the queue the range jobs go to.
fn fanning_rig(delay_ms: u64) -> (Rig, Ranges) {
    (Rig::new(delay_ms, fanning()), Ranges::default())
}

/// A copier from `source` into `rig` whose range jobs go to `queue`.
fn fanning_copier<'a, S>(
    rig: &'a Rig,
    source: &'a S,
    queue: &'a Ranges,
) -> Copier<'a, S, MemoryDestination> {
    Copier {
        write_ahead: Some(queue),
        ..rig.copier(source)
    }
}

/// Runs the job of `huge`, which fans its copy out; the first of the range jobs it sent.
async fn fanned_out_first<S: SourceStore>(
    copier: &Copier<'_, S, MemoryDestination>,
    queue: &Ranges,
) -> RangeJob {
    copier.run(&job("huge"), &Limits::none()).await;
    queue.0.lock().unwrap()[0].clone()
}

#[tokio::test(start_paused = true)]
async fn a_copy_fanned_out_to_range_jobs_is_completed_once_by_the_last_of_them() {
    let bytes = body((PART * 10 + 7) as usize, 4);
    let source = holding("huge", bytes.clone());
    let (rig, queue) = fanning_rig(50);
    let (dest, store, copier) = (&rig.dest, &rig.store, fanning_copier(&rig, &source, &queue));
    let r = copier.run(&job("huge"), &Limits::none()).await;
    assert_eq!(
        (r.outcome, r.code),
        (OutcomeKind::InProgress, Some(FANNED_OUT)),
        "{r:?}"
    );
    let ranges = queue.0.lock().unwrap().clone();
    let spans: Vec<(u32, u32)> = ranges.iter().map(|r| (r.first, r.last)).collect();
    assert_eq!(spans, [(1, 3), (4, 6), (7, 9), (10, 11)]);
    // A duplicate event meanwhile sends nothing: the range jobs carry the copy.
    let dup = copier.run(&job("huge"), &Limits::none()).await;
    assert_eq!(dup.code, Some(FANNED_OUT));
    assert!(dup.note.unwrap().contains("(0 sent now)"));
    assert_eq!(queue.0.lock().unwrap().len(), 4);
    assert_eq!(dest.open_uploads().len(), 1);
    // The four range jobs run at once, as on four instances.
    let jobs: Vec<Job<'_>> = ranges
        .iter()
        .map(|r| Job {
            range: Some(r),
            ..job("huge")
        })
        .collect();
    let none = Limits::none();
    let reports = futures_util::future::join_all(jobs.iter().map(|j| copier.run(j, &none))).await;
    let copied: Vec<_> = reports
        .iter()
        .filter(|r| r.outcome == OutcomeKind::Copied)
        .collect();
    assert_eq!(copied.len(), 1, "exactly one completion: {reports:?}");
    assert!(reports
        .iter()
        .filter(|r| r.outcome != OutcomeKind::Copied)
        .all(|r| r.outcome == OutcomeKind::InProgress && r.code == Some(RANGE_UPLOADED)));
    assert_eq!(
        reports.iter().map(|r| r.bytes_moved).sum::<u64>(),
        bytes.len() as u64
    );
    let (head, got) = dest.get("huge").unwrap();
    assert_eq!(got, bytes);
    assert_eq!(head.crc64, Some(s3_oss_sync::checksum::crc64(&bytes)));
    let counts = dest.part_uploads.lock().unwrap().clone();
    assert_eq!(counts.len(), 11);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    assert!(dest.open_uploads().is_empty());
    assert!(
        store.all().is_empty(),
        "checkpoint, range records and claim are gone: {:?}",
        store.all().keys()
    );
    // A range job delivered again afterwards ends quietly, saying why, and uploads nothing.
    let late = copier.run(&jobs[1], &Limits::none()).await;
    assert_eq!(late.outcome, OutcomeKind::Skipped, "{late:?}");
    assert!(late
        .note
        .unwrap()
        .contains("already holds the current version"));
    assert_eq!(dest.parts_uploaded(), 11);
}

/// A duplicate event that finds a fanned-out copy before its initiator noted the range jobs sent
/// waits a little for the note instead of sending every range job again; if the note never comes
/// (the initiator died after creating the copy), it sends them itself.
#[tokio::test(start_paused = true)]
async fn a_duplicate_waits_for_the_note_of_range_jobs_sent_and_sends_them_only_without_it() {
    use s3_oss_sync::store::checkpoints::CheckpointStore;
    let source = holding("huge", body((PART * 10 + 7) as usize, 4));
    let (rig, queue) = fanning_rig(50);
    let (store, copier) = (&rig.store, fanning_copier(&rig, &source, &queue));
    let r = copier.run(&job("huge"), &Limits::none()).await;
    assert_eq!(r.code, Some(FANNED_OUT), "{r:?}");
    assert_eq!(queue.0.lock().unwrap().len(), 4);
    let note = store
        .all()
        .into_iter()
        .find(|(k, _)| k.contains(".sent-"))
        .expect("the note of range jobs sent");
    // As if the initiator had not written its note yet: it comes a second later.
    store.remove(&note.0).await.unwrap();
    let late_note = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        store.save(&note.0, note.1.clone()).await.unwrap();
    };
    let (dup_job, none) = (job("huge"), Limits::none());
    let (dup, ()) = tokio::join!(copier.run(&dup_job, &none), late_note);
    assert!(dup.note.unwrap().contains("(0 sent now)"));
    assert_eq!(queue.0.lock().unwrap().len(), 4, "nothing sent twice");
    // The note never comes: the duplicate sends the range jobs itself, after its wait.
    store.remove(&note.0).await.unwrap();
    let began = tokio::time::Instant::now();
    let dup = copier.run(&job("huge"), &Limits::none()).await;
    assert!(dup.note.unwrap().contains("(4 sent now)"));
    assert_eq!(queue.0.lock().unwrap().len(), 8);
    assert!(began.elapsed() >= Duration::from_secs(3));
}

/// A range job that finds the source changed aborts its copy's upload and takes over as its
/// message's job: jobs acknowledged while the old copy was in progress trusted its range jobs to
/// carry it on, so the new version is copied (here fanned out anew) by the range job itself.
#[tokio::test(start_paused = true)]
async fn a_range_job_for_a_source_that_changed_aborts_the_upload_and_takes_over() {
    let source = holding("huge", body((PART * 10) as usize, 5));
    let (rig, queue) = fanning_rig(10);
    let (dest, copier) = (&rig.dest, fanning_copier(&rig, &source, &queue));
    let first = fanned_out_first(&copier, &queue).await;
    source.put(
        "huge",
        body((PART * 10) as usize, 6),
        SourceMetadata::default(),
    );
    let r = copier
        .run(
            &Job {
                range: Some(&first),
                ..job("huge")
            },
            &Limits::none(),
        )
        .await;
    assert_eq!(
        (r.outcome, r.code),
        (OutcomeKind::InProgress, Some(FANNED_OUT)),
        "{r:?}"
    );
    assert_eq!(dest.aborted.load(Ordering::SeqCst), 1);
    let open = dest.open_uploads();
    assert_eq!(open.len(), 1, "the new version's upload: {open:?}");
    let sent = queue.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 8, "four range jobs of each copy: {sent:?}");
    assert!(sent[4..].iter().all(|r| r.upload_id != first.upload_id));
    assert_eq!(dest.parts_uploaded(), 0);
}

#[test]
fn ranges_cover_every_part_once_and_parse_back() {
    assert_eq!(split_ranges(11, 3), [[1, 3], [4, 6], [7, 9], [10, 11]]);
    assert_eq!(split_ranges(3, 5), [[1, 3]]);
    assert_eq!(split_ranges(4, 0), [[1, 1], [2, 2], [3, 3], [4, 4]]);
    let r = RangeJob {
        first: 4,
        last: 6,
        upload_id: "U-1".into(),
    };
    assert_eq!(RangeJob::parse(&r.attribute()), Some(r));
    for bad in ["", "4-6", "6-4 U", "0-1 U", "a-b U", "4-6  "] {
        assert_eq!(RangeJob::parse(bad), None, "{bad:?}");
    }
}

/// Defect E of the fan-out: a job holding the HEAD of an older version finds the copy of a newer
/// one, fanned out (its message acknowledged, its range jobs on their way). It must not discard
/// it: it reads the source again and leaves the copy to its range jobs.
#[tokio::test(start_paused = true)]
async fn a_job_holding_an_older_head_leaves_a_newer_fanned_out_copy_alone() {
    let len = PART * 10;
    // The next HEAD, once set, answers an older version: a job whose HEAD was answered before
    // a newer version was written.
    let stale: Arc<Mutex<Option<SourceObject>>> = Default::default();
    let lag = stale.clone();
    let source = HookedSource::new(holding("huge", body(len as usize, 1)))
        .on_head(move |_, _| lag.lock().unwrap().take());
    let older = source.inner.head("huge").await.unwrap();
    source
        .inner
        .put("huge", body(len as usize, 2), SourceMetadata::default());
    let (rig, queue) = fanning_rig(10);
    let (dest, copier) = (&rig.dest, fanning_copier(&rig, &source, &queue));
    let newer = Job {
        message_id: Some("m-2"),
        size: Some(len),
        ..job("huge")
    };
    assert_eq!(
        copier.run(&newer, &Limits::none()).await.code,
        Some(FANNED_OUT)
    );
    *stale.lock().unwrap() = older;
    let late = Job {
        size: Some(len),
        ..job("huge")
    };
    let r = copier.run(&late, &Limits::none()).await;
    assert_eq!(
        (r.outcome, r.code),
        (OutcomeKind::InProgress, Some(FANNED_OUT)),
        "{r:?}"
    );
    assert!(r.note.unwrap().contains("(0 sent now)"));
    assert_eq!(
        dest.aborted.load(Ordering::SeqCst),
        0,
        "the newer copy stays"
    );
    assert_eq!(dest.open_uploads().len(), 1);
    assert_eq!(queue.0.lock().unwrap().len(), 4);
}

/// Defect D of the fan-out: a completion claim written for an upload discarded since (a claim
/// that landed late, after the discard had removed what it knew of) must not keep the upload
/// that replaced it from completing: claims, like range records, are named by their upload.
#[tokio::test(start_paused = true)]
async fn a_claim_left_for_a_discarded_upload_does_not_block_the_next_one() {
    let len = PART * 10;
    let source = holding("huge", body(len as usize, 1));
    let (rig, queue) = fanning_rig(10);
    let (dest, store) = (&rig.dest, &rig.store);
    let copier = fanning_copier(&rig, &source, &queue);
    let old = fanned_out_first(&copier, &queue).await;
    let newer = body(len as usize, 2);
    source.put("huge", newer.clone(), SourceMetadata::default());
    // Every range job of the new version's copy, run one after another (the last completes).
    let run_ranges = |ranges: Vec<RangeJob>| {
        let copier = &copier;
        async move {
            let mut reports = Vec::new();
            for r in &ranges {
                let j = Job {
                    range: Some(r),
                    ..job("huge")
                };
                reports.push(copier.run(&j, &Limits::none()).await);
            }
            reports
        }
    };
    // The old copy's first range job finds the source changed: it discards that copy and fans
    // out the new version's.
    let r = run_ranges(vec![old.clone()]).await;
    assert_eq!(r[0].code, Some(FANNED_OUT), "{r:?}");
    let key = checkpoint_key("results", "t", dest.bucket(), "huge");
    let stale = s3_oss_sync::sync::resume::claim_key(&key, &old.upload_id);
    assert!(store
        .create(&stale, Bytes::from(old.attribute()))
        .await
        .unwrap());
    let new_ranges: Vec<RangeJob> = queue.0.lock().unwrap()[4..].to_vec();
    assert!(new_ranges.iter().all(|r| r.upload_id != old.upload_id));
    let reports = run_ranges(new_ranges).await;
    assert_eq!(
        reports.last().map(|r| r.outcome),
        Some(OutcomeKind::Copied),
        "{reports:?}"
    );
    assert_eq!(dest.get("huge").unwrap().1, newer);
}
