//! The invocation deadline and copies in parts: records at the deadline, the cut-off, a copy
//! stopped and continued, and the fan-out to range jobs.

use super::{
    batch, created, failed_ids, kinds, message, meta, service_holding, service_with, Service,
};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use s3_oss_sync::oss::{self};
use s3_oss_sync::outcome::{Outcome, OutcomeKind};
use s3_oss_sync::store::destination::DestinationStore;
use s3_oss_sync::store::object::ObjectHead;
use s3_oss_sync::store::upload::{BodySource, UploadOutcome, UploadRequest};
use s3_oss_sync::sync::copy::CopyOptions;
use s3_oss_sync::sync::handler::{BatchReport, Invocation};
use s3_oss_sync::sync::recheck::{string_attribute, RECHECK_ATTEMPTS, RECHECK_OF};
use s3_oss_sync::testing::memory::{MemoryDestination, MemorySource};
use std::time::Duration;

/// A destination whose uploads of keys containing "slow" take a minute (on tokio's clock).
struct SlowUploads(MemoryDestination);

impl DestinationStore for SlowUploads {
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, oss::Error> {
        self.0.head(key).await
    }
    async fn upload(
        &self,
        req: &UploadRequest<'_>,
        body: &dyn BodySource,
    ) -> Result<UploadOutcome, oss::Error> {
        if req.key.contains("slow") {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        self.0.upload(req, body).await
    }
    async fn delete(&self, key: &str) -> Result<(), oss::Error> {
        self.0.delete(key).await
    }
    fn bucket(&self) -> &str {
        "dst"
    }
}

#[tokio::test(start_paused = true)]
async fn at_the_deadline_every_event_has_a_record_and_only_finished_messages_pass() {
    let source = MemorySource::default();
    let fast = source.put("fast", &b"quick"[..], meta());
    let slow = source.put("slow", &b"takes a minute"[..], meta());
    let (mut svc, _) = service_with(
        source,
        SlowUploads(MemoryDestination::default()),
        CopyOptions::default(),
    );
    svc.max_receive_count = Some(3);
    let ev = batch(vec![
        message("m-fast", &created("fast", &fast, 5, None)),
        message("m-slow", &created("slow", &slow, 14, None)),
    ]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let r = svc
        .handle_within(
            &ev,
            Invocation {
                id: "inv",
                deadline: Some(deadline),
                recheck_after: None,
            },
        )
        .await;
    assert!(
        tokio::time::Instant::now() < deadline,
        "the handler answered before the deadline"
    );
    assert_eq!(kinds(&r), [OutcomeKind::Copied, OutcomeKind::Deferred]);
    assert_eq!(failed_ids(&r), ["m-slow"]);
    let deferred = &r.outcomes[1];
    assert_eq!(deferred.error_code.as_deref(), Some("InvocationDeadline"));
    assert!(!deferred.is_final, "it comes again");
    assert!(
        r.results_error.is_none(),
        "the records were written in time"
    );
    assert_eq!(svc.results.objects().len(), 1);
    assert!(svc.dest.0.get("mirror/slow").is_none());
}

#[tokio::test(start_paused = true)]
async fn no_job_starts_at_the_cut_off() {
    let (svc, etag) = service_holding("k", b"x", CopyOptions::default());
    let ev = batch(vec![message("m", &created("k", &etag, 1, None))]);
    let r = svc
        .handle_within(
            &ev,
            Invocation {
                id: "late",
                deadline: Some(tokio::time::Instant::now() + Duration::from_millis(400)),
                recheck_after: None,
            },
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Deferred]);
    assert_eq!(r.outcomes[0].requests, 0);
    assert_eq!(failed_ids(&r), ["m"]);
}

/// Copies in parts through the handler: a destination taking objects above 256 KiB in parts of
/// 256 KiB, 100 ms each, two at once, and checkpoints in memory.
fn parts_service(options: CopyOptions) -> Service<MemorySource> {
    let dest = MemoryDestination::with_parts(
        s3_oss_sync::store::upload::PartPlan {
            threshold: 256 * 1024,
            part_size: 256 * 1024,
            parts_in_flight: 2,
            budget: s3_oss_sync::budget::MemoryBudget::new(64 << 20),
            pace: Default::default(),
        },
        Duration::from_millis(100),
    );
    let (mut svc, _) = service_with(MemorySource::default(), dest, options);
    svc.checkpoints = Some(Box::new(
        s3_oss_sync::testing::memory::MemoryCheckpoints::default(),
    ));
    svc
}

/// A recheck as SQS delivers it (first delivery).
fn delivered(r: &s3_oss_sync::sync::recheck::Recheck, id: &str) -> SqsMessage {
    let mut m = message(id, &r.body);
    m.message_attributes
        .insert(RECHECK_OF.into(), string_attribute(&r.of));
    m.message_attributes.insert(
        RECHECK_ATTEMPTS.into(),
        string_attribute(&r.attempts.to_string()),
    );
    if let Some(range) = &r.range {
        m.message_attributes.insert(
            s3_oss_sync::sync::recheck::RANGE.into(),
            string_attribute(range),
        );
    }
    m
}

async fn within(svc: &Service<MemorySource>, ev: &SqsEvent, id: &str, secs: u64) -> BatchReport {
    svc.handle_within(
        ev,
        Invocation {
            id,
            deadline: Some(tokio::time::Instant::now() + Duration::from_secs(secs)),
            recheck_after: None,
        },
    )
    .await
}

/// Asserts that OSS holds `data` at `key`, each of its parts uploaded once, and no upload open.
fn assert_copied_in_parts(svc: &Service<MemorySource>, key: &str, data: &[u8]) {
    assert_eq!(&svc.dest.get(key).unwrap().1[..], data);
    assert!(svc
        .dest
        .part_uploads
        .lock()
        .unwrap()
        .values()
        .all(|&n| n == 1));
    assert!(svc.dest.open_uploads().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_copy_stopped_at_the_deadline_is_in_progress_and_its_message_sent_back_at_once() {
    let svc = parts_service(CopyOptions::default());
    let data: Vec<u8> = (0..(256 * 1024 * 40)).map(|i| (i % 251) as u8).collect();
    let etag = svc.source.put("big", data.clone(), meta());
    let mut ev = batch(vec![message(
        "m",
        &created("big", &etag, data.len() as u64, None),
    )]);
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 20, "the copy must finish");
        let before = svc.rechecks.sent().len();
        let r = within(&svc, &ev, &format!("inv-{rounds}"), 1).await;
        assert!(failed_ids(&r).is_empty(), "acknowledged: {:?}", r.outcomes);
        let o = &r.outcomes[0];
        if o.outcome == OutcomeKind::Copied {
            assert!(o.is_final);
            break;
        }
        assert_eq!(o.outcome, OutcomeKind::InProgress, "{o:?}");
        assert!(!o.is_final && o.bytes_moved > 0, "{o:?}");
        // The continuation: the message again, at once, standing for the original.
        let sent = svc.rechecks.sent();
        let cont: Vec<_> = sent[before..]
            .iter()
            .filter(|c| c.after.is_zero())
            .collect();
        assert_eq!(cont.len(), 1, "{sent:?}");
        assert_eq!((cont[0].of.as_str(), cont[0].range.as_deref()), ("m", None));
        ev = batch(vec![delivered(cont[0], &format!("c-{rounds}"))]);
    }
    assert!(rounds >= 3, "{rounds} deliveries");
    assert_copied_in_parts(&svc, "mirror/big", &data);
}

#[tokio::test(start_paused = true)]
async fn a_continuation_that_cannot_be_sent_leaves_its_message_to_come_again() {
    let mut svc = parts_service(CopyOptions::default());
    svc.rechecks.fail_with = Some("SQS is down".into());
    let data = vec![7u8; 256 * 1024 * 40];
    let etag = svc.source.put("big", data.clone(), meta());
    let ev = batch(vec![message(
        "m",
        &created("big", &etag, data.len() as u64, None),
    )]);
    let r = within(&svc, &ev, "inv", 2).await;
    assert_eq!(failed_ids(&r), ["m"]);
    let o = &r.outcomes[0];
    assert_eq!(o.outcome, OutcomeKind::InProgress);
    assert_eq!(
        o.error_code.as_deref(),
        Some("ContinuationNotQueued"),
        "{o:?}"
    );
    assert!(o.error_message.as_deref().unwrap().contains("SQS is down"));
    // The parts stay: the redelivery resumes, it does not start over.
    assert_eq!(svc.dest.open_uploads().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_large_copy_fans_out_to_range_jobs_that_one_of_them_completes() {
    let svc = parts_service(CopyOptions {
        fan_out_threshold: Some(1 << 20),
        fan_out_range: 3 * 256 * 1024,
        ..CopyOptions::default()
    });
    let data: Vec<u8> = (0..(256 * 1024 * 10 + 1))
        .map(|i| (i % 241) as u8)
        .collect();
    let etag = svc.source.put("huge", data.clone(), meta());
    let ev = batch(vec![message(
        "m",
        &created("huge", &etag, data.len() as u64, None),
    )]);
    let r = within(&svc, &ev, "inv-0", 60).await;
    assert!(failed_ids(&r).is_empty());
    let o = &r.outcomes[0];
    assert_eq!(
        (o.outcome, o.error_code.as_deref()),
        (OutcomeKind::InProgress, Some("FannedOut")),
        "{o:?}"
    );
    let jobs = svc.rechecks.sent();
    let ranges: Vec<&str> = jobs.iter().filter_map(|j| j.range.as_deref()).collect();
    assert_eq!(ranges.len(), 4, "11 parts in ranges of 3: {jobs:?}");
    assert!(jobs.iter().all(|j| j.of == "m" && j.after.is_zero()));
    // Four instances take one range job each.
    let events: Vec<SqsEvent> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| batch(vec![delivered(j, &format!("r-{i}"))]))
        .collect();
    let reports = futures_util::future::join_all(
        events
            .iter()
            .enumerate()
            .map(|(i, e)| within(&svc, e, ["i1", "i2", "i3", "i4"][i], 60)),
    )
    .await;
    let outcomes: Vec<&Outcome> = reports.iter().flat_map(|r| &r.outcomes).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o.outcome == OutcomeKind::Copied)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(reports.iter().all(|r| failed_ids(r).is_empty()));
    // Only the completer left a write-ahead (a plain recheck of the message); no continuations.
    let after = &svc.rechecks.sent()[jobs.len()..];
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        (after[0].of.as_str(), after[0].range.as_deref()),
        ("m", None)
    );
    assert!(!after[0].after.is_zero());
    assert_copied_in_parts(&svc, "mirror/huge", &data);
}
