//! Copies stopped by the cut-off: continued without uploading a part twice, completions after
//! the cut-off, the pace of parts, and parts whose answers were lost.

use super::{body, holding, job, limits, Rig, PART};
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::store::source::SourceMetadata;
use s3_oss_sync::sync::copy::{CopyOptions, JobReport};
use s3_oss_sync::sync::resume::Checkpoint;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn a_copy_stopped_by_the_cut_off_continues_and_uploads_no_part_twice() {
    let bytes = body((PART * 20 + 1000) as usize, 7);
    let source = holding("big", bytes.clone());
    let rig = Rig::new(100, CopyOptions::default());
    let (dest, store, copier) = (&rig.dest, &rig.store, rig.copier(&source));
    let mut runs = Vec::new();
    loop {
        let r = copier.run(&job("big"), &limits(300)).await;
        runs.push((r.outcome, r.bytes_moved));
        if r.outcome != OutcomeKind::InProgress {
            assert_eq!(r.outcome, OutcomeKind::Copied, "{r:?}");
            break;
        }
        assert!(r.bytes_moved > 0, "every run moves bytes: {runs:?}");
        let cp = store.all();
        assert_eq!(cp.len(), 1, "one checkpoint while the copy is in progress");
        let cp = Checkpoint::parse(cp.values().next().unwrap()).unwrap();
        let moved: u64 = runs.iter().map(|r| r.1).sum();
        assert_eq!(
            cp.bytes_done(),
            moved,
            "the checkpoint holds every finished part"
        );
        assert!(runs.len() < 30, "the copy must finish: {runs:?}");
    }
    assert!(runs.len() >= 3, "the copy needed several runs: {runs:?}");
    let (head, got) = dest.get("big").unwrap();
    assert_eq!(got, bytes);
    assert_eq!(head.crc64, Some(s3_oss_sync::checksum::crc64(&bytes)));
    let counts = dest.part_uploads.lock().unwrap().clone();
    assert_eq!(counts.len(), 21);
    assert!(
        counts.values().all(|&n| n == 1),
        "a part was uploaded twice: {counts:?}"
    );
    assert_eq!(runs.iter().map(|r| r.1).sum::<u64>(), bytes.len() as u64);
    assert!(dest.open_uploads().is_empty());
    assert!(
        store.all().is_empty(),
        "the checkpoint is removed at the end"
    );
}

/// A completion in flight at the cut-off lands after the handler has dropped its job: the job's
/// record tells the bytes its parts moved, and the next job records the copy (not a skip) and
/// removes the checkpoint; the one after that skips. (End to end, under load, a 1 GiB
/// completion ran past a 5 s invocation's cut-off: the object complete, its record `deferred`
/// with 0 bytes, the next `skipped`, no record `copied` and the checkpoint left behind.)
#[tokio::test(start_paused = true)]
async fn a_completion_that_lands_after_the_cut_off_is_recorded_by_the_next_job() {
    let bytes = body((PART * 4 + 10) as usize, 3);
    let source = holding("big", bytes.clone());
    let rig = Rig::new(10, CopyOptions::default());
    *rig.dest.slow_completion.lock().unwrap() = Some(Duration::from_secs(5));
    let (dest, store, copier) = (&rig.dest, &rig.store, rig.copier(&source));
    // As the handler runs a job: dropped at the cut-off, its progress read after.
    let cut = limits(2000);
    let progress = AtomicU64::new(0);
    let first = job("big");
    let run = copier.run_counted(&first, &cut, &progress);
    let stopped = tokio::time::timeout_at(cut.cutoff.unwrap(), run).await;
    assert!(
        stopped.is_err(),
        "the completion was still in flight at the cut-off"
    );
    let moved = progress.load(Ordering::Relaxed);
    assert_eq!(moved, bytes.len() as u64, "every part landed in that run");
    let record = JobReport::cut_off(Duration::from_secs(2), moved);
    assert_eq!(record.outcome, OutcomeKind::Deferred);
    assert_eq!(record.bytes_moved, moved);
    assert_eq!(
        dest.get("big").map(|(_, b)| b),
        Some(bytes.clone()),
        "it landed"
    );
    assert_eq!(store.all().len(), 1, "its checkpoint is still there");

    let next = copier.run(&job("big"), &limits(10_000)).await;
    assert_eq!(next.outcome, OutcomeKind::Copied, "{next:?}");
    assert_eq!(next.bytes_moved, 0, "its bytes are in the earlier record");
    assert_eq!(next.crc64, Some(s3_oss_sync::checksum::crc64(&bytes)));
    assert!(store.all().is_empty(), "the checkpoint is removed");
    let again = copier.run(&job("big"), &limits(10_000)).await;
    assert_eq!(again.outcome, OutcomeKind::Skipped, "{again:?}");
    let counts = dest.part_uploads.lock().unwrap().clone();
    assert!(
        counts.values().all(|&n| n == 1),
        "a part was sent twice: {counts:?}"
    );
    assert_eq!(dest.initiated.load(Ordering::Relaxed), 1);
    assert!(dest.open_uploads().is_empty());
}

/// A process that has seen a finish (write-ahead and completion) take 3 s does not start one
/// with less time than that left before its drop time: the run pauses with every part done and
/// the next delivery completes at once, rather than a completion cut off in flight.
#[tokio::test(start_paused = true)]
async fn a_completion_starts_only_when_the_slowest_finish_seen_still_fits() {
    let (a, b) = (body((PART * 3) as usize, 1), body((PART * 3) as usize, 2));
    let source = holding("a", a);
    source.put("b", b.clone(), SourceMetadata::default());
    let rig = Rig::new(10, CopyOptions::default());
    *rig.dest.slow_completion.lock().unwrap() = Some(Duration::from_secs(3));
    let (dest, store, copier) = (&rig.dest, &rig.store, rig.copier(&source));
    let first = copier.run(&job("a"), &limits(60_000)).await;
    assert_eq!(first.outcome, OutcomeKind::Copied, "{first:?}");
    let paused = copier.run(&job("b"), &limits(2_000)).await;
    assert_eq!(paused.outcome, OutcomeKind::InProgress, "{paused:?}");
    assert_eq!(paused.bytes_moved, b.len() as u64, "every part done");
    assert!(dest.get("b").is_none(), "no completion started");
    let next = copier.run(&job("b"), &limits(10_000)).await;
    assert_eq!(next.outcome, OutcomeKind::Copied, "{next:?}");
    assert_eq!(next.bytes_moved, 0);
    assert_eq!(dest.get("b").map(|(_, got)| got), Some(b));
    assert!(store.all().is_empty());
}

/// A short last part takes a round trip whatever its size; learnt as a rate it would predict
/// hours for a full part and stop every later copy after its first part (8 MiB + 1 byte objects
/// did exactly that end to end).
#[tokio::test(start_paused = true)]
async fn a_short_last_part_does_not_teach_the_pace_and_stop_later_copies() {
    let small = body((PART + 1) as usize, 1);
    let big = body((PART * 6) as usize, 2);
    let source = holding("small", small.clone());
    source.put("big", big.clone(), SourceMetadata::default());
    let rig = Rig::new(100, CopyOptions::default());
    let (dest, copier) = (&rig.dest, rig.copier(&source));
    let r = copier.run(&job("small"), &limits(10_000)).await;
    assert_eq!(r.outcome, OutcomeKind::Copied, "{r:?}");
    // Six parts of 100 ms, three at a time: 200 ms of a second.
    let r = copier.run(&job("big"), &limits(1_000)).await;
    assert_eq!(r.outcome, OutcomeKind::Copied, "{r:?}");
    assert_eq!(dest.get("big").unwrap().1, big);
}

/// Parts dropped at the cut-off after OSS stored them (their answers lost) are not sent again:
/// ListParts shows them, and their ETags are the MD5s of the source ranges read again.
#[tokio::test(start_paused = true)]
async fn parts_that_landed_while_their_answers_were_lost_are_verified_not_sent_again() {
    let bytes = body((PART * 6) as usize, 3);
    let source = holding("big", bytes.clone());
    let mut rig = Rig::new(10, CopyOptions::default());
    rig.dest.answer_delay = Duration::from_millis(400);
    let (dest, store, copier) = (&rig.dest, &rig.store, rig.copier(&source));
    // Three parts stored at 10 ms, their answers due at 410 ms, dropped just before 300 ms.
    let r = copier.run(&job("big"), &limits(300)).await;
    assert_ne!(r.outcome, OutcomeKind::Copied, "{r:?}");
    assert_eq!(dest.parts_uploaded(), 3);
    let r = copier.run(&job("big"), &limits(10_000)).await;
    assert_eq!(r.outcome, OutcomeKind::Copied, "{r:?}");
    assert_eq!(dest.get("big").unwrap().1, bytes);
    let counts = dest.part_uploads.lock().unwrap().clone();
    assert_eq!(counts.len(), 6);
    assert!(
        counts.values().all(|&n| n == 1),
        "a part was uploaded twice: {counts:?}"
    );
    assert!(dest.open_uploads().is_empty() && store.all().is_empty());
}
