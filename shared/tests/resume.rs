//! Resumable copies against in-memory stores, on tokio's paused clock: a copy stopped by the
//! cut-off continues where it stopped, no part is uploaded twice, a source that changes makes the
//! copy start over on the new version with the old upload aborted, and nothing is left open.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use s3_oss_sync::budget::MemoryBudget;
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::store::checkpoints::CheckpointStore;
use s3_oss_sync::store::destination::DestinationStore;
use s3_oss_sync::store::object::ByteStream;
use s3_oss_sync::store::source::{SourceError, SourceMetadata, SourceObject, SourceStore};
use s3_oss_sync::store::upload::ListedPart;
use s3_oss_sync::store::upload::PartPlan;
use s3_oss_sync::sync::copy::{
    Copier, CopyOptions, Job, JobKind, JobReport, Limits, WriteAhead, FANNED_OUT, RANGE_UPLOADED,
};
use s3_oss_sync::sync::resume::{
    checkpoint_key, plan_resume, split_ranges, Checkpoint, DonePart, RangeJob, Resume,
    CHECKPOINT_VERSION,
};
use s3_oss_sync::testing::memory::MemoryCheckpoints;
use s3_oss_sync::testing::memory::{MemoryDestination, MemorySource};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

const KIB: u64 = 1024;
const PART: u64 = 256 * KIB;

fn body(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

fn dest(delay_ms: u64) -> MemoryDestination {
    MemoryDestination::with_parts(
        PartPlan {
            threshold: PART,
            part_size: PART,
            parts_in_flight: 3,
            budget: MemoryBudget::new(64 * 1024 * KIB),
            pace: Default::default(),
        },
        Duration::from_millis(delay_ms),
    )
}

fn job(key: &str) -> Job<'_> {
    Job {
        kind: JobKind::Create,
        source_key: key,
        dest_key: key,
        etag: None,
        size: None,
        sequencer: None,
        message_id: Some("m-1"),
        answers_for: &[],
        range: None,
        first_delivery: false,
    }
}

fn resume(store: &MemoryCheckpoints) -> Resume<'_> {
    Resume {
        store,
        task: "t",
        results_prefix: "results",
        source_bucket: "src",
    }
}

fn limits(ms: u64) -> Limits {
    Limits {
        cutoff: Some(tokio::time::Instant::now() + Duration::from_millis(ms)),
        bytes_per_sec: (PART * 3 * 10) as f64,
    }
}

#[tokio::test(start_paused = true)]
async fn a_copy_stopped_by_the_cut_off_continues_and_uploads_no_part_twice() {
    let source = MemorySource::default();
    let bytes = body((PART * 20 + 1000) as usize, 7);
    source.put("big", bytes.clone(), SourceMetadata::default());
    let dest = dest(100);
    let store = MemoryCheckpoints::default();
    let options = CopyOptions::default();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: None,
        resume: Some(resume(&store)),
    };
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
    let source = MemorySource::default();
    let bytes = body((PART * 4 + 10) as usize, 3);
    source.put("big", bytes.clone(), SourceMetadata::default());
    let dest = dest(10);
    *dest.slow_completion.lock().unwrap() = Some(Duration::from_secs(5));
    let store = MemoryCheckpoints::default();
    let options = CopyOptions::default();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: None,
        resume: Some(resume(&store)),
    };
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
    let source = MemorySource::default();
    let (a, b) = (body((PART * 3) as usize, 1), body((PART * 3) as usize, 2));
    source.put("a", a, SourceMetadata::default());
    source.put("b", b.clone(), SourceMetadata::default());
    let dest = dest(10);
    *dest.slow_completion.lock().unwrap() = Some(Duration::from_secs(3));
    let store = MemoryCheckpoints::default();
    let options = CopyOptions::default();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: None,
        resume: Some(resume(&store)),
    };
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
    let source = MemorySource::default();
    let small = body((PART + 1) as usize, 1);
    let big = body((PART * 6) as usize, 2);
    source.put("small", small.clone(), SourceMetadata::default());
    source.put("big", big.clone(), SourceMetadata::default());
    let dest = dest(100);
    let store = MemoryCheckpoints::default();
    let options = CopyOptions::default();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: None,
        resume: Some(resume(&store)),
    };
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
    let source = MemorySource::default();
    let bytes = body((PART * 6) as usize, 3);
    source.put("big", bytes.clone(), SourceMetadata::default());
    let mut dest = dest(10);
    dest.answer_delay = Duration::from_millis(400);
    let store = MemoryCheckpoints::default();
    let options = CopyOptions::default();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: None,
        resume: Some(resume(&store)),
    };
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

#[tokio::test(start_paused = true)]
async fn a_source_overwritten_between_runs_starts_over_and_aborts_the_old_upload() {
    let source = MemorySource::default();
    source.put(
        "big",
        body((PART * 12) as usize, 1),
        SourceMetadata::default(),
    );
    let dest = dest(100);
    let store = MemoryCheckpoints::default();
    let options = CopyOptions::default();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: None,
        resume: Some(resume(&store)),
    };
    let r = copier.run(&job("big"), &limits(400)).await;
    assert_eq!(r.outcome, OutcomeKind::InProgress);
    let newer = body((PART * 9 + 5) as usize, 2);
    source.put("big", newer.clone(), SourceMetadata::default());
    let mut runs = 1;
    loop {
        let r = copier.run(&job("big"), &limits(400)).await;
        runs += 1;
        if r.outcome == OutcomeKind::Copied {
            break;
        }
        assert_eq!(r.outcome, OutcomeKind::InProgress, "{r:?}");
        assert!(runs < 30);
    }
    assert_eq!(dest.get("big").unwrap().1, newer);
    assert_eq!(
        dest.aborted.load(Ordering::SeqCst),
        1,
        "the old upload is aborted"
    );
    assert_eq!(dest.initiated.load(Ordering::SeqCst), 2);
    assert!(dest.open_uploads().is_empty());
    assert!(store.all().is_empty());
}

/// A source overwritten after a number of ranged reads: the copy running then finds its pin gone.
struct ChangesAfter {
    inner: MemorySource,
    reads: AtomicU32,
    after: u32,
    newer: Bytes,
}

impl SourceStore for ChangesAfter {
    async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
        self.inner.head(key).await
    }
    async fn get(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<(SourceObject, ByteStream)>, SourceError> {
        self.inner.get(key, if_match).await
    }
    async fn tags(&self, k: &str, v: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        self.inner.tags(k, v).await
    }
    async fn get_range(
        &self,
        key: &str,
        etag: &str,
        version_id: Option<&str>,
        start: u64,
        len: u64,
    ) -> Result<Option<ByteStream>, SourceError> {
        if self.reads.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.inner
                .put(key, self.newer.clone(), SourceMetadata::default());
        }
        self.inner
            .get_range(key, etag, version_id, start, len)
            .await
    }
}

#[tokio::test(start_paused = true)]
async fn a_source_changed_during_a_run_is_noticed_by_the_pinned_reads() {
    let newer = body((PART * 5 + 3) as usize, 9);
    let source = ChangesAfter {
        inner: MemorySource::default(),
        reads: AtomicU32::new(0),
        after: 4,
        newer: newer.clone(),
    };
    source.inner.put(
        "big",
        body((PART * 8) as usize, 3),
        SourceMetadata::default(),
    );
    let dest = dest(10);
    let store = MemoryCheckpoints::default();
    let options = CopyOptions::default();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: None,
        resume: Some(resume(&store)),
    };
    let r = copier.run(&job("big"), &Limits::none()).await;
    assert_eq!((r.outcome, r.rounds), (OutcomeKind::Copied, 2), "{r:?}");
    assert_eq!(dest.get("big").unwrap().1, newer);
    assert_eq!(dest.aborted.load(Ordering::SeqCst), 1);
    assert!(dest.open_uploads().is_empty());
    assert!(store.all().is_empty());
}

fn checkpoint(parts: Vec<DonePart>) -> Checkpoint {
    Checkpoint {
        version: CHECKPOINT_VERSION,
        task: "t".into(),
        source_bucket: "s".into(),
        source_key: "k".into(),
        etag: "e".into(),
        version_id: None,
        size: 250,
        fingerprint: "f".into(),
        dest_bucket: "d".into(),
        dest_key: "k".into(),
        part_size: 100,
        upload_id: "u".into(),
        message_id: None,
        started_at: String::new(),
        updated_at: String::new(),
        parts,
        ranges: Vec::new(),
    }
}

fn done(number: u32, size: u64, crc: u64) -> DonePart {
    DonePart {
        number,
        size,
        etag: format!("\"E{number}\""),
        crc64: format!("{crc:016x}"),
    }
}

fn listed(number: u32, size: u64, crc: Option<u64>) -> ListedPart {
    ListedPart {
        number,
        etag: format!("\"E{number}\""),
        size,
        crc64: crc,
    }
}

#[test]
fn only_parts_both_sides_agree_on_are_kept() {
    let cp = checkpoint(vec![done(1, 100, 11), done(2, 100, 22), done(3, 50, 33)]);
    assert_eq!(cp.parts_total(), 3);
    assert_eq!(cp.range(3), (200, 50));
    // Agreed: kept. Listed with another CRC-64: in doubt. Not listed: missing.
    let (kept, todo) = plan_resume(&cp, &[listed(1, 100, Some(11)), listed(2, 100, Some(99))]);
    assert_eq!(kept, vec![done(1, 100, 11)]);
    assert_eq!(todo, vec![2, 3]);
    // Listed but not in the checkpoint (it landed while its invocation was killed): in doubt.
    let cp = checkpoint(vec![done(1, 100, 11)]);
    let (kept, todo) = plan_resume(&cp, &[listed(1, 100, None), listed(2, 100, Some(22))]);
    assert_eq!((kept.len(), todo), (1, vec![2, 3]));
    // Another size or ETag: in doubt.
    let mut other = listed(1, 100, Some(11));
    other.etag = "\"X\"".into();
    assert_eq!(plan_resume(&cp, &[other]).1, vec![1, 2, 3]);
    assert_eq!(
        plan_resume(&cp, &[listed(1, 99, Some(11))]).1,
        vec![1, 2, 3]
    );
}

#[test]
fn checkpoints_live_beside_the_results_and_refuse_what_they_cannot_read() {
    let k = checkpoint_key("results", "task-1", "dest", "a/b.bin");
    assert!(
        k.starts_with("results-checkpoints/task-1/") && k.ends_with(".json"),
        "{k}"
    );
    assert!(
        !k.starts_with("results/"),
        "never under the results the report reads"
    );
    assert_ne!(k, checkpoint_key("results", "task-1", "dest", "a/b.bin2"));
    let cp = checkpoint(vec![done(1, 100, u64::MAX)]);
    let text = serde_json::to_vec(&cp).unwrap();
    assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
    assert!(String::from_utf8_lossy(&text).contains("\"crc64\":\"ffffffffffffffff\""));
    let mut bad = cp.clone();
    bad.version = 99;
    assert!(Checkpoint::parse(&serde_json::to_vec(&bad).unwrap()).is_err());
    assert!(Checkpoint::parse(b"{").is_err());
}

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

#[tokio::test(start_paused = true)]
async fn a_copy_fanned_out_to_range_jobs_is_completed_once_by_the_last_of_them() {
    let source = MemorySource::default();
    let bytes = body((PART * 10 + 7) as usize, 4);
    source.put("huge", bytes.clone(), SourceMetadata::default());
    let dest = dest(50);
    let store = MemoryCheckpoints::default();
    let queue = Ranges::default();
    let options = fanning();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: Some(&queue),
        resume: Some(resume(&store)),
    };
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
    let source = MemorySource::default();
    source.put(
        "huge",
        body((PART * 10 + 7) as usize, 4),
        SourceMetadata::default(),
    );
    let dest = dest(50);
    let store = MemoryCheckpoints::default();
    let queue = Ranges::default();
    let options = fanning();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: Some(&queue),
        resume: Some(resume(&store)),
    };
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
    let source = MemorySource::default();
    source.put(
        "huge",
        body((PART * 10) as usize, 5),
        SourceMetadata::default(),
    );
    let dest = dest(10);
    let store = MemoryCheckpoints::default();
    let queue = Ranges::default();
    let options = fanning();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: Some(&queue),
        resume: Some(resume(&store)),
    };
    copier.run(&job("huge"), &Limits::none()).await;
    let first = queue.0.lock().unwrap()[0].clone();
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

/// A source whose next HEAD answers an older version, once: a job whose HEAD was answered before
/// a newer version was written.
struct Lagging {
    inner: MemorySource,
    stale: std::sync::Mutex<Option<SourceObject>>,
}

impl SourceStore for Lagging {
    async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
        if let Some(old) = self.stale.lock().unwrap().take() {
            return Ok(Some(old));
        }
        self.inner.head(key).await
    }
    async fn get(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<(SourceObject, ByteStream)>, SourceError> {
        self.inner.get(key, if_match).await
    }
    async fn tags(&self, k: &str, v: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        self.inner.tags(k, v).await
    }
}

/// Defect E of the fan-out: a job holding the HEAD of an older version finds the copy of a newer
/// one, fanned out (its message acknowledged, its range jobs on their way). It must not discard
/// it: it reads the source again and leaves the copy to its range jobs.
#[tokio::test(start_paused = true)]
async fn a_job_holding_an_older_head_leaves_a_newer_fanned_out_copy_alone() {
    let len = PART * 10;
    let source = Lagging {
        inner: MemorySource::default(),
        stale: Default::default(),
    };
    source
        .inner
        .put("huge", body(len as usize, 1), SourceMetadata::default());
    let older = source.inner.head("huge").await.unwrap();
    source
        .inner
        .put("huge", body(len as usize, 2), SourceMetadata::default());
    let dest = dest(10);
    let store = MemoryCheckpoints::default();
    let queue = Ranges::default();
    let options = fanning();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: Some(&queue),
        resume: Some(resume(&store)),
    };
    let newer = Job {
        message_id: Some("m-2"),
        size: Some(len),
        ..job("huge")
    };
    assert_eq!(
        copier.run(&newer, &Limits::none()).await.code,
        Some(FANNED_OUT)
    );
    *source.stale.lock().unwrap() = older;
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
    let source = MemorySource::default();
    source.put("huge", body(len as usize, 1), SourceMetadata::default());
    let dest = dest(10);
    let store = MemoryCheckpoints::default();
    let queue = Ranges::default();
    let options = fanning();
    let copier = Copier {
        source: &source,
        dest: &dest,
        options: &options,
        write_ahead: Some(&queue),
        resume: Some(resume(&store)),
    };
    copier.run(&job("huge"), &Limits::none()).await;
    let old = queue.0.lock().unwrap()[0].clone();
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
