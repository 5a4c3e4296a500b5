//! Component tests: the sync handler with real SQS event types against in-memory source,
//! destination and results stores.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use s3_oss_sync::aws::sqs_poll::{lambda_event, lambda_message};
use s3_oss_sync::oss::{self};
use s3_oss_sync::outcome::{Outcome, OutcomeKind};
use s3_oss_sync::store::destination::DestinationStore;
use s3_oss_sync::store::object::{ByteStream, ObjectHead};
use s3_oss_sync::store::source::{SourceError, SourceMetadata, SourceObject, SourceStore};
use s3_oss_sync::store::upload::{BodySource, UploadOutcome, UploadRequest};
use s3_oss_sync::sync::copy::CopyOptions;
use s3_oss_sync::sync::handler::{BatchReport, Invocation, RecentWrites, SyncService};
use s3_oss_sync::sync::recheck::{
    string_attribute, HeldRechecks, RECHECK_ATTEMPTS, RECHECK_OF, RECHECK_WAIT,
};
use s3_oss_sync::task::TaskBinding;
use s3_oss_sync::testing::memory::{MemoryDestination, MemoryResults, MemorySource};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BUCKET: &str = "mybucket";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/s3-events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn message(id: &str, body: &str) -> SqsMessage {
    lambda_message(id, body, 1)
}

/// A recheck standing for message `of`: what a redelivery of `of` becomes (it hands over), and
/// what every write leaves behind.
fn recheck_message(id: &str, body: &str, of: &str) -> SqsMessage {
    let mut m = message(id, body);
    m.message_attributes
        .insert(RECHECK_OF.into(), string_attribute(of));
    m
}

/// A body larger than `decide::WRITE_FIRST_MAX`: its first delivery reads the destination first,
/// as every delivery of a small object did before.
fn large_body(tag: &[u8]) -> Vec<u8> {
    let mut b = tag.to_vec();
    b.resize(
        s3_oss_sync::sync::decide::WRITE_FIRST_MAX as usize + 1,
        b'.',
    );
    b
}

fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
    lambda_event(messages)
}

fn created(key: &str, etag: &str, size: u64, sequencer: Option<&str>) -> String {
    let mut object = serde_json::json!({"key": key, "size": size, "eTag": etag});
    if let Some(s) = sequencer {
        object["sequencer"] = s.into();
    }
    serde_json::json!({"Records": [{
        "eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T03:00:00.000Z",
        "s3": {"bucket": {"name": BUCKET}, "object": object}
    }]})
    .to_string()
}

fn removed(key: &str, sequencer: Option<&str>) -> String {
    let mut object = serde_json::json!({"key": key});
    if let Some(s) = sequencer {
        object["sequencer"] = s.into();
    }
    serde_json::json!({"Records": [{
        "eventName": "ObjectRemoved:Delete", "eventTime": "2026-11-25T03:00:01.000Z",
        "s3": {"bucket": {"name": BUCKET}, "object": object}
    }]})
    .to_string()
}

type Service<S, D = MemoryDestination> = SyncService<S, D, MemoryResults, HeldRechecks>;

fn service<S: SourceStore>(
    source: S,
    options: CopyOptions,
) -> (Service<S>, Arc<Mutex<Vec<String>>>) {
    service_with(source, MemoryDestination::default(), options)
}

fn service_with<S: SourceStore, D: DestinationStore>(
    source: S,
    dest: D,
    options: CopyOptions,
) -> (Service<S, D>, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink_lines = lines.clone();
    let svc = SyncService {
        task_id: "task-1".into(),
        binding: TaskBinding {
            source_bucket: BUCKET.into(),
            source_prefix: String::new(),
            dest_bucket: "dst".into(),
            dest_prefix: "mirror/".into(),
            strip_source_prefix: false,
            report_area: Some("reports/".into()),
        },
        options,
        concurrency: 4,
        results_prefix: "results".into(),
        max_receive_count: None,
        throughput: Default::default(),
        source,
        dest,
        results: MemoryResults::default(),
        rechecks: HeldRechecks::default(),
        recheck_after: std::time::Duration::from_secs(915),
        sink: Arc::new(move |l: &str| sink_lines.lock().unwrap().push(l.to_owned())),
        checkpoints: None,
        // A warm instance, whose writes the destination has accepted (a fresh one:
        // `a_fresh_instance_reads_the_destination_first_until_it_accepts_a_request`).
        recent_writes: RecentWrites::default().accepting(),
    };
    (svc, lines)
}

fn deletes_on() -> CopyOptions {
    CopyOptions {
        sync_deletes: true,
        ..CopyOptions::default()
    }
}

fn failed_ids(r: &BatchReport) -> Vec<&str> {
    r.response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

fn kinds(r: &BatchReport) -> Vec<OutcomeKind> {
    r.outcomes.iter().map(|o| o.outcome).collect()
}

fn meta() -> SourceMetadata {
    SourceMetadata {
        content_type: Some("text/plain".into()),
        user: vec![
            ("author".into(), "ann".into()),
            ("bad_name".into(), "x".into()),
        ],
        ..SourceMetadata::default()
    }
}

#[tokio::test]
async fn every_fixture_shape_gets_one_record_and_the_right_answer() {
    let source = MemorySource::default();
    source.put("photos/2026/summer trip+day 1.jpg", vec![7u8; 1024], meta());
    let (svc, lines) = service(source, CopyOptions::default());
    let names = [
        "s3-object-created-put.json",
        "s3-object-removed-delete.json",
        "s3-test-event.json",
        "eventbridge-object-created.json",
        "moto-object-created-put.json",
        "sns-wrapped-object-created.json",
    ];
    let mut msgs: Vec<SqsMessage> = names.iter().map(|n| message(n, &fixture(n))).collect();
    msgs.push(message("junk", "{\"not\": \"an event\""));
    let r = svc.handle(&batch(msgs), "inv-1").await;
    assert_eq!(
        kinds(&r),
        [
            OutcomeKind::Copied, // put: the event's ETag is stale, the current version is copied
            OutcomeKind::Ignored, // delete with delete sync off
            OutcomeKind::Ignored, // s3:TestEvent
            OutcomeKind::Filtered, // another bucket
            OutcomeKind::Filtered, // another bucket
            OutcomeKind::Superseded, // multipart object no longer in the source
            OutcomeKind::Invalid,
        ]
    );
    assert_eq!(failed_ids(&r), ["junk"]);
    let copied = &r.outcomes[0];
    assert_eq!(
        copied.dest_key.as_deref(),
        Some("mirror/photos/2026/summer trip+day 1.jpg")
    );
    assert_eq!(copied.bytes_moved, 1024);
    assert_eq!(
        copied.requests, 3,
        "a fresh copy of a small object in its first delivery: source GET, PUT, source HEAD"
    );
    assert_eq!(copied.dropped_metadata.len(), 1);
    assert!(copied.dropped_metadata[0].contains("bad_name"));
    assert_eq!(r.outcomes[3].error_code.as_deref(), Some("OtherBucket"));
    assert!(r.outcomes[6]
        .error_message
        .as_deref()
        .unwrap()
        .contains("not JSON"));
    let (head, body) = svc
        .dest
        .get("mirror/photos/2026/summer trip+day 1.jpg")
        .unwrap();
    assert_eq!(body.len(), 1024);
    assert_eq!(head.metadata.content_type.as_deref(), Some("text/plain"));
    assert!(head
        .metadata
        .user
        .contains(&("author".into(), "ann".into())));

    // The records are in the results store, one line per event, keyed by task and hour.
    let stored = svc.results.objects();
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].0.starts_with("results/task-1/dt="),
        "{}",
        stored[0].0
    );
    assert!(stored[0].0.ends_with("/inv-1.jsonl"));
    assert_eq!(stored[0].0, r.results_key);
    let back: Vec<Outcome> = std::str::from_utf8(&stored[0].1)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, r.outcomes);
    // One log line per event, plus one metrics line.
    let lines = lines.lock().unwrap();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("\"message\":\"outcome\""))
            .count(),
        7
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("CloudWatchMetrics"))
            .count(),
        1
    );
}

#[tokio::test]
async fn a_duplicate_event_is_skipped_after_one_request() {
    // An object read destination-first even in its first delivery (larger than
    // WRITE_FIRST_MAX); a small one's duplicates: the next test.
    let source = MemorySource::default();
    let data = large_body(b"hello");
    let size = data.len() as u64;
    let etag = source.put("a", data.clone(), meta());
    let (svc, _) = service(source, CopyOptions::default());
    let seq = Some("0055AED6DCD90281E5");
    let body = created("a", &etag, size, seq);
    let ev = batch(vec![message("m1", &body)]);
    assert_eq!(kinds(&svc.handle(&ev, "1").await), [OutcomeKind::Copied]);
    // S3 delivers at least once: the same event again, in another SQS message.
    let duplicate = batch(vec![message("m1-again", &body)]);
    let again = svc.handle(&duplicate, "2").await;
    assert_eq!(kinds(&again), [OutcomeKind::Skipped]);
    assert_eq!(again.outcomes[0].requests, 1);
    assert_eq!(
        svc.source.gets.load(Ordering::Relaxed),
        1,
        "no second read of the source"
    );
    assert_eq!(svc.dest.uploads.load(Ordering::Relaxed), 1);
    // The same message delivered again (its first job may have died after writing, before its
    // check) does not trust its own marker: a source HEAD confirms, still without a body.
    let redelivered = svc.handle(&ev, "3").await;
    assert_eq!(kinds(&redelivered), [OutcomeKind::Skipped]);
    assert_eq!(redelivered.outcomes[0].requests, 2);
    assert_eq!(svc.source.gets.load(Ordering::Relaxed), 1);
    assert_eq!(svc.dest.uploads.load(Ordering::Relaxed), 1);
    // Without a sequencer the destination's HEAD cannot tell a duplicate from a metadata change:
    // the source's headers decide, and nothing is uploaded.
    let plain = batch(vec![message("m2", &created("a", &etag, size, None))]);
    let third = svc.handle(&plain, "4").await;
    assert_eq!(kinds(&third), [OutcomeKind::Skipped]);
    assert_eq!(third.outcomes[0].requests, 2);
    assert_eq!(svc.dest.uploads.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_small_object_in_its_first_delivery_is_copied_without_reading_the_destination() {
    let source = MemorySource::default();
    let etag = source.put("a", &b"hello"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    // As instances that did not copy the key themselves (the next test: one that did).
    svc.recent_writes = RecentWrites::new(0).accepting();
    let body = created("a", &etag, 5, Some("0055AED6DCD90281E5"));
    let first = svc.handle(&batch(vec![message("m1", &body)]), "1").await;
    assert_eq!(kinds(&first), [OutcomeKind::Copied]);
    assert_eq!(
        first.outcomes[0].requests, 3,
        "source GET, PUT, source HEAD: one round trip to the destination"
    );
    assert_eq!(svc.dest.heads.load(Ordering::Relaxed), 0);
    assert_eq!(svc.rechecks.sent().len(), 1, "the write left its recheck");
    // An S3 duplicate in another message, first delivered too: copied again (its cost: a GET, a
    // PUT and a recheck instead of one HEAD), the destination still the source's version.
    let dup = svc
        .handle(&batch(vec![message("m1-again", &body)]), "2")
        .await;
    assert_eq!(kinds(&dup), [OutcomeKind::Copied]);
    assert_eq!(svc.dest.uploads.load(Ordering::Relaxed), 2);
    // The rechecks both writes left read the destination first: m1's finds the marker the other
    // message wrote for the same event (one request); the last writer's trusts no marker of its
    // own, and a source HEAD confirms.
    for (i, of, requests) in [(0, "m1", 1), (1, "m1-again", 2)] {
        let r = svc
            .handle(
                &batch(vec![recheck_message("r", &body, of)]),
                &format!("r{i}"),
            )
            .await;
        assert_eq!(kinds(&r), [OutcomeKind::Skipped]);
        assert_eq!(r.outcomes[0].requests, requests, "recheck of {of}");
    }
    // Events ctl sends (a backfill) expect to find the key current: destination first.
    let backfill =
        created("a", &etag, 5, None).replace("ObjectCreated:Put", "ObjectCreated:Backfill");
    let r = svc.handle(&batch(vec![message("b", &backfill)]), "b").await;
    assert_eq!(kinds(&r), [OutcomeKind::Skipped]);
    assert_eq!(r.outcomes[0].requests, 2, "dest HEAD, source HEAD");
    assert_eq!(svc.dest.uploads.load(Ordering::Relaxed), 2);
    // A source gone by the time the first delivery reads it: the destination is read then, and
    // (delete sync off) kept.
    svc.source.delete("a");
    let r = svc.handle(&batch(vec![message("m3", &body)]), "3").await;
    assert_eq!(kinds(&r), [OutcomeKind::Superseded]);
    assert!(svc.dest.get("mirror/a").is_some());
}

#[tokio::test]
async fn an_instance_that_copied_a_key_lately_reads_the_destination_first_for_it() {
    let source = MemorySource::default();
    let etag = source.put("a", &b"hello"[..], meta());
    let (svc, _) = service(source, CopyOptions::default());
    let body = created("a", &etag, 5, Some("0055AED6DCD90281E5"));
    let first = svc.handle(&batch(vec![message("m1", &body)]), "1").await;
    assert_eq!(kinds(&first), [OutcomeKind::Copied]);
    assert_eq!(first.outcomes[0].requests, 3);
    assert!(svc.recent_writes.contains("mirror/a"));
    // S3's duplicate in another message reaches the same instance: the marker settles it.
    let dup = svc
        .handle(&batch(vec![message("m1-again", &body)]), "2")
        .await;
    assert_eq!(kinds(&dup), [OutcomeKind::Skipped]);
    assert_eq!(dup.outcomes[0].requests, 1);
    assert_eq!(svc.dest.uploads.load(Ordering::Relaxed), 1);
    assert_eq!(svc.rechecks.sent().len(), 1, "a skip leaves no recheck");
}

#[tokio::test]
async fn a_fresh_instance_reads_the_destination_first_until_it_accepts_a_request() {
    let source = MemorySource::default();
    let mut bodies = Vec::new();
    for key in ["a", "b", "c"] {
        let etag = source.put(key, &b"hello"[..], meta());
        bodies.push(created(key, &etag, 5, Some("0055AED6DCD90281E5")));
    }
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.recent_writes = RecentWrites::default();
    assert!(!svc.recent_writes.destination_accepts());
    // A wrong secret: the first request is the HEAD, refused before any recheck is left, so the
    // event's message is the only one to come again (and reach the DLQ).
    svc.dest.refuse_credentials.store(true, Ordering::SeqCst);
    let r = svc
        .handle(&batch(vec![message("m1", &bodies[0])]), "1")
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Failed]);
    assert_eq!(
        r.outcomes[0].error_code.as_deref(),
        Some("SignatureDoesNotMatch")
    );
    assert_eq!(failed_ids(&r), ["m1"]);
    assert_eq!(svc.dest.heads.load(Ordering::Relaxed), 1);
    assert!(
        svc.rechecks.sent().is_empty(),
        "no write-ahead for a refused job"
    );
    // Fixed: the next batch still reads first (nothing accepted yet), then writes.
    svc.dest.refuse_credentials.store(false, Ordering::SeqCst);
    let r = svc
        .handle(&batch(vec![message("m2", &bodies[1])]), "2")
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied]);
    assert_eq!(
        r.outcomes[0].requests, 4,
        "dest HEAD, source GET, PUT, source HEAD"
    );
    assert!(svc.recent_writes.destination_accepts());
    // Accepted: a first delivery now writes without the HEAD.
    let r = svc
        .handle(&batch(vec![message("m3", &bodies[2])]), "3")
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied]);
    assert_eq!(r.outcomes[0].requests, 3);
    assert_eq!(svc.dest.heads.load(Ordering::Relaxed), 2);
    // Credentials revoked on a warm instance: the first refusal (after its write-ahead) turns
    // the HEAD back on, so the next batch's refusals leave no recheck.
    svc.dest.refuse_credentials.store(true, Ordering::SeqCst);
    let etag = svc.source.put("d", &b"world"[..], meta());
    let d = created("d", &etag, 5, Some("0055AED6DCD90281E6"));
    let r = svc.handle(&batch(vec![message("m4", &d)]), "4").await;
    assert_eq!(kinds(&r), [OutcomeKind::Failed]);
    assert!(!svc.recent_writes.destination_accepts());
    let sent = svc.rechecks.sent().len();
    let r = svc.handle(&batch(vec![message("m5", &d)]), "5").await;
    assert_eq!(kinds(&r), [OutcomeKind::Failed]);
    assert_eq!(svc.rechecks.sent().len(), sent, "the HEAD is refused first");
}

#[tokio::test]
async fn the_write_aheads_of_first_deliveries_go_in_one_send() {
    let source = MemorySource::default();
    let mut msgs = Vec::new();
    for i in 0..10 {
        let key = format!("k{i}");
        let etag = source.put(&key, &b"small"[..], meta());
        msgs.push(message(&format!("m{i}"), &created(&key, &etag, 5, None)));
    }
    // One more, large: it reads the destination first, and leaves its own write-ahead.
    let data = large_body(b"large");
    let etag = source.put("big", data.clone(), meta());
    msgs.push(message(
        "m-big",
        &created("big", &etag, data.len() as u64, None),
    ));
    let (svc, _) = service(source, CopyOptions::default());
    let r = svc.handle(&batch(msgs), "1").await;
    assert!(kinds(&r).iter().all(|k| *k == OutcomeKind::Copied), "{r:?}");
    let sent = svc.rechecks.sent();
    assert_eq!(sent.len(), 11, "one write-ahead per message");
    assert_eq!(
        svc.rechecks.sends.load(Ordering::Relaxed),
        2,
        "the ten small copies' write-aheads in one send, the large one's alone"
    );
    let mut of: Vec<&str> = sent.iter().map(|r| r.of.as_str()).collect();
    of.sort_unstable();
    of.dedup();
    assert_eq!(of.len(), 11);
}

#[tokio::test]
async fn a_refused_batched_write_ahead_falls_back_to_one_send_per_message() {
    let source = MemorySource::default();
    let mut msgs = Vec::new();
    for i in 0..3 {
        let key = format!("k{i}");
        let etag = source.put(&key, &b"small"[..], meta());
        msgs.push(message(&format!("m{i}"), &created(&key, &etag, 5, None)));
    }
    let (svc, _) = service(source, CopyOptions::default());
    svc.rechecks.fail_calls.store(1, Ordering::SeqCst);
    let r = svc.handle(&batch(msgs), "1").await;
    assert!(kinds(&r).iter().all(|k| *k == OutcomeKind::Copied), "{r:?}");
    assert!(failed_ids(&r).is_empty());
    assert_eq!(
        svc.rechecks.sends.load(Ordering::Relaxed),
        4,
        "the refused batch, then one send per message"
    );
    assert_eq!(svc.rechecks.sent().len(), 3, "every write left its recheck");
}

#[tokio::test]
async fn new_metadata_on_the_same_bytes_is_copied_again() {
    // S3 keeps the ETag when only metadata changes (CopyObject onto itself with REPLACE, or a PUT
    // of the same bytes); the copy must still take the new metadata.
    let source = MemorySource::default();
    let etag = source.put("a", &b"hello"[..], meta());
    let (svc, _) = service(source, CopyOptions::default());
    let first = batch(vec![message(
        "m1",
        &created("a", &etag, 5, Some("0055AED6DCD90281E5")),
    )]);
    assert_eq!(kinds(&svc.handle(&first, "1").await), [OutcomeKind::Copied]);
    for (id, seq) in [("m2", Some("0055AED6DCD90281F0")), ("m3", None)] {
        let mut changed = meta();
        changed.user = vec![("author".into(), format!("bob-{id}"))];
        assert_eq!(svc.source.put("a", &b"hello"[..], changed), etag);
        let ev = batch(vec![message(id, &created("a", &etag, 5, seq))]);
        let r = svc.handle(&ev, id).await;
        assert_eq!(kinds(&r), [OutcomeKind::Copied], "{seq:?}");
        let (head, _) = svc.dest.get("mirror/a").unwrap();
        assert!(head
            .metadata
            .user
            .contains(&("author".into(), format!("bob-{id}"))));
        // Delivered again (a redelivery hands over to a recheck of it), it finds the
        // destination up to date.
        let again = batch(vec![recheck_message(
            &format!("{id}-r"),
            &created("a", &etag, 5, seq),
            id,
        )]);
        assert_eq!(kinds(&svc.handle(&again, id).await), [OutcomeKind::Skipped]);
    }
    assert_eq!(svc.dest.uploads.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn events_for_one_key_in_a_batch_are_handled_once_newest_first() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"v2"[..], meta());
    let (svc, _) = service(source, deletes_on());
    let r = svc
        .handle(
            &batch(vec![
                message("new", &created("k", &etag, 2, Some("0055AED6DCD90281F0"))),
                message("old", &removed("k", Some("0055AED6DCD90281E5"))),
                message("dup", &created("k", &etag, 2, Some("0055AED6DCD90281F0"))),
            ]),
            "1",
        )
        .await;
    let ks = kinds(&r);
    assert_eq!(
        ks.iter().filter(|k| **k == OutcomeKind::Copied).count(),
        1,
        "{ks:?}"
    );
    assert_eq!(
        ks.iter().filter(|k| **k == OutcomeKind::Superseded).count(),
        2,
        "{ks:?}"
    );
    assert_eq!(
        ks[1],
        OutcomeKind::Superseded,
        "the older delete is superseded"
    );
    assert!(failed_ids(&r).is_empty());
    assert_eq!(svc.dest.uploads.load(Ordering::Relaxed), 1);
}

/// A source that is overwritten once, after the first copy's upload and before its check.
struct ChangesDuringCopy {
    inner: MemorySource,
    heads: AtomicU32,
}

impl SourceStore for ChangesDuringCopy {
    async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
        if self.heads.fetch_add(1, Ordering::SeqCst) == 0 {
            self.inner.put(key, &b"the newer version"[..], meta());
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
    async fn tags(&self, key: &str, v: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        self.inner.tags(key, v).await
    }
}

#[tokio::test]
async fn a_source_changed_during_the_copy_is_copied_again() {
    let inner = MemorySource::default();
    let etag = inner.put("k", &b"old"[..], meta());
    let source = ChangesDuringCopy {
        inner,
        heads: AtomicU32::new(0),
    };
    let (svc, _) = service(source, CopyOptions::default());
    let r = svc
        .handle(
            &batch(vec![message("m", &created("k", &etag, 3, None))]),
            "1",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied]);
    assert_eq!(r.outcomes[0].attempts, 2);
    assert_eq!(
        &svc.dest.get("mirror/k").unwrap().1[..],
        b"the newer version"
    );
    assert_ne!(r.outcomes[0].source_etag.as_deref(), Some(etag.as_str()));
}

#[tokio::test]
async fn deletes_sync_only_when_on_and_only_if_the_source_is_gone() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (svc, _) = service(source, deletes_on());
    svc.handle(
        &batch(vec![message("c", &created("k", &etag, 1, None))]),
        "1",
    )
    .await;
    // The object exists again (re-created): the delete event copies instead.
    let r = svc
        .handle(&batch(vec![message("d1", &removed("k", None))]), "2")
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Skipped]);
    svc.source.delete("k");
    let r = svc
        .handle(&batch(vec![message("d2", &removed("k", None))]), "3")
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Deleted]);
    assert!(svc.dest.get("mirror/k").is_none());
    let r = svc
        .handle(&batch(vec![message("d3", &removed("k", None))]), "4")
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Skipped], "already absent");

    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (svc, _) = service(source, CopyOptions::default());
    svc.handle(
        &batch(vec![message("c", &created("k", &etag, 1, None))]),
        "1",
    )
    .await;
    svc.source.delete("k");
    let r = svc
        .handle(&batch(vec![message("d", &removed("k", None))]), "2")
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Ignored]);
    assert!(
        svc.dest.get("mirror/k").is_some(),
        "delete sync is off by default"
    );
}

#[tokio::test]
async fn one_failure_fails_only_its_message_and_the_retry_lands() {
    let source = MemorySource::default();
    let e1 = source.put("one", &b"1"[..], meta());
    let e2 = source.put("two", &b"2"[..], meta());
    let (svc, _) = service(source, CopyOptions::default());
    svc.dest.fail_uploads.store(1, Ordering::SeqCst);
    let ev = batch(vec![
        message("m1", &created("one", &e1, 1, None)),
        message("m2", &created("two", &e2, 1, None)),
    ]);
    let r = svc.handle(&ev, "1").await;
    let mut ks = kinds(&r);
    ks.sort();
    assert_eq!(ks, [OutcomeKind::Copied, OutcomeKind::Failed]);
    let failed = r
        .outcomes
        .iter()
        .find(|o| o.outcome == OutcomeKind::Failed)
        .unwrap();
    assert_eq!(failed.error_code.as_deref(), Some("InternalError"));
    assert_eq!(failed_ids(&r), [failed.message_id.as_str()]);
    // The failed message comes again (and hands over to its recheck); the copied one's write left
    // its recheck: both run.
    let again = batch(vec![
        recheck_message("r1", &created("one", &e1, 1, None), "m1"),
        recheck_message("r2", &created("two", &e2, 1, None), "m2"),
    ]);
    let r = svc.handle(&again, "2").await;
    let mut ks = kinds(&r);
    ks.sort();
    assert_eq!(ks, [OutcomeKind::Copied, OutcomeKind::Skipped]);
    assert!(failed_ids(&r).is_empty());
}

#[tokio::test]
async fn nothing_is_acknowledged_without_its_record() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (svc, lines) = service(source, CopyOptions::default());
    svc.results.outage.store(true, Ordering::SeqCst);
    let ev = batch(vec![
        message("m1", &created("k", &etag, 1, None)),
        message("m2", "{}"),
        message("m3", &fixture("s3-test-event.json")),
    ]);
    let r = svc.handle(&ev, "1").await;
    assert_eq!(failed_ids(&r), ["m1", "m2", "m3"]);
    assert!(r
        .results_error
        .as_deref()
        .unwrap()
        .contains("ServiceUnavailable"));
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("could not be written")));
    svc.results.outage.store(false, Ordering::SeqCst);
    let r = svc.handle(&ev, "2").await;
    assert_eq!(
        failed_ids(&r),
        ["m2"],
        "only the invalid message goes on failing"
    );
    assert_eq!(svc.results.objects().len(), 1);
}

#[tokio::test]
async fn prefix_binding_filters_and_maps_keys() {
    let source = MemorySource::default();
    let etag = source.put("in/a", &b"x"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.binding.source_prefix = "in/".into();
    svc.binding.strip_source_prefix = true;
    let r = svc
        .handle(
            &batch(vec![
                message("m1", &created("in/a", &etag, 1, None)),
                message("m2", &created("out/b", &etag, 1, None)),
            ]),
            "1",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied, OutcomeKind::Filtered]);
    assert_eq!(r.outcomes[0].dest_key.as_deref(), Some("mirror/a"));
    assert_eq!(r.outcomes[1].error_code.as_deref(), Some("OutsidePrefix"));
    assert!(failed_ids(&r).is_empty());
}

/// With an empty DEST_PREFIX the destination bucket's root is shared with the reports: a source
/// object whose key falls in the report area (a `manifest.json` for tomorrow, a file in a list
/// folder) is filtered with the reason, never copied; its neighbours are copied.
#[tokio::test]
async fn objects_bound_for_the_report_area_are_filtered_not_copied() {
    let source = MemorySource::default();
    let keys = [
        "reports/task-1/2026-11-26/manifest.json",
        "reports/task-1/2026-11-25/total_list/part-00001.csv",
        "reports-old/a.csv",
    ];
    let etags: Vec<String> = keys
        .iter()
        .map(|k| source.put(k, &b"x"[..], meta()))
        .collect();
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.binding.dest_prefix = String::new();
    let r = svc
        .handle(
            &batch(
                keys.iter()
                    .zip(&etags)
                    .enumerate()
                    .map(|(i, (k, e))| message(&format!("m{i}"), &created(k, e, 1, None)))
                    .collect(),
            ),
            "1",
        )
        .await;
    assert_eq!(
        kinds(&r),
        [
            OutcomeKind::Filtered,
            OutcomeKind::Filtered,
            OutcomeKind::Copied
        ]
    );
    for o in &r.outcomes[..2] {
        assert_eq!(o.error_code.as_deref(), Some("ReportArea"));
        assert!(
            o.error_message
                .as_deref()
                .is_some_and(|m| m.contains("REPORT_PREFIX")),
            "{:?}",
            o.error_message
        );
    }
    assert_eq!(svc.dest.keys(), ["reports-old/a.csv"]);
    assert!(failed_ids(&r).is_empty());
}

#[tokio::test]
async fn keys_oss_cannot_hold_fail_permanently_with_a_clear_code() {
    let source = MemorySource::default();
    let long = "k".repeat(1100);
    let etag = source.put(&long, &b"x"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.binding.dest_prefix = String::new();
    let r = svc
        .handle(
            &batch(vec![message("m", &created(&long, &etag, 1, None))]),
            "1",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Failed]);
    assert_eq!(
        r.outcomes[0].error_code.as_deref(),
        Some("InvalidObjectName")
    );
    // Permanent: recorded once as final and acknowledged, not delivered again and again.
    assert!(r.outcomes[0].is_final);
    assert!(failed_ids(&r).is_empty());
    // Refused before any request: no write-ahead recheck that would fail the same way again.
    assert_eq!(r.outcomes[0].requests, 0);
    assert!(svc.rechecks.sent().is_empty());
    assert_eq!(svc.source.gets.load(Ordering::Relaxed), 0);
    // Nor in a batch whose other first deliveries send their write-aheads together.
    let ok = svc.source.put("fine", &b"y"[..], meta());
    let r = svc
        .handle(
            &batch(vec![
                message("m2", &created(&long, &etag, 1, None)),
                message("m3", &created("fine", &ok, 1, None)),
            ]),
            "2",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Failed, OutcomeKind::Copied]);
    let sent: Vec<String> = svc.rechecks.sent().iter().map(|r| r.of.clone()).collect();
    assert_eq!(sent, ["m3"]);
}

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
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (svc, _) = service(source, CopyOptions::default());
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

#[tokio::test]
async fn a_transient_failure_is_final_only_on_the_last_delivery() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.max_receive_count = Some(2);
    for (count, last) in [("1", false), ("2", true)] {
        svc.dest.fail_uploads.store(1, Ordering::SeqCst);
        let mut m = message("m", &created("k", &etag, 1, None));
        m.attributes
            .insert("ApproximateReceiveCount".into(), count.into());
        let r = svc.handle(&batch(vec![m]), count).await;
        assert_eq!(kinds(&r), [OutcomeKind::Failed]);
        assert_eq!(failed_ids(&r), ["m"], "transient: delivered again");
        assert_eq!(r.outcomes[0].is_final, last, "receive count {count}");
    }
}

#[tokio::test]
async fn forty_records_of_one_key_with_and_without_sequencers_are_one_job() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"v"[..], meta());
    let (svc, _) = service(source, CopyOptions::default());
    let records: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            let mut object = serde_json::json!({"key": "k", "size": 1, "eTag": etag});
            if i % 2 == 0 {
                object["sequencer"] = format!("0055AED6DCD9{:06X}", (i * 7919) % 65_536).into();
            }
            serde_json::json!({
                "eventName": if i % 2 == 0 { "ObjectCreated:Put" } else { "ObjectCreated:Backfill" },
                "eventTime": format!("2026-11-25T03:00:{:02}.000Z", (i * 37) % 60),
                "s3": {"bucket": {"name": BUCKET}, "object": object}
            })
        })
        .collect();
    let body = serde_json::json!({ "Records": records }).to_string();
    let r = svc.handle(&batch(vec![message("m", &body)]), "1").await;
    let ks = kinds(&r);
    assert_eq!(ks.len(), 40);
    assert_eq!(ks.iter().filter(|k| **k == OutcomeKind::Copied).count(), 1);
    assert_eq!(
        ks.iter().filter(|k| **k == OutcomeKind::Superseded).count(),
        39
    );
    assert!(failed_ids(&r).is_empty());
}

#[tokio::test]
async fn a_tag_oss_refuses_is_dropped_and_listed_and_the_object_copied() {
    let source = MemorySource::default();
    let etag = source.put_tagged(
        "k",
        &b"tagged"[..],
        meta(),
        vec![
            ("owner".into(), "ann@example.com".into()),
            ("team".into(), "data".into()),
        ],
    );
    let (svc, _) = service(
        source,
        CopyOptions {
            sync_tags: true,
            ..CopyOptions::default()
        },
    );
    let r = svc
        .handle(
            &batch(vec![message("m", &created("k", &etag, 6, None))]),
            "1",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied]);
    assert!(
        r.outcomes[0]
            .dropped_metadata
            .iter()
            .any(|d| d.starts_with("tag owner:")),
        "{:?}",
        r.outcomes[0].dropped_metadata
    );
    let (head, _) = svc.dest.get("mirror/k").unwrap();
    assert_eq!(head.tagging_count, 1, "the allowed tag is kept");
}

fn redelivered(id: &str, body: &str, count: u32) -> SqsMessage {
    let mut m = message(id, body);
    m.attributes
        .insert("ApproximateReceiveCount".into(), count.to_string());
    m
}

#[tokio::test]
async fn a_redelivery_hands_its_events_to_a_recheck_and_writes_nothing() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.max_receive_count = Some(5);
    let r = svc
        .handle(
            &batch(vec![redelivered("m", &created("k", &etag, 1, None), 3)]),
            "1",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Deferred]);
    let o = &r.outcomes[0];
    assert_eq!(o.error_code.as_deref(), Some("Rechecking"));
    assert!(!o.is_final, "its work goes on in the recheck");
    assert_eq!(o.requests, 0);
    assert!(
        failed_ids(&r).is_empty(),
        "acknowledged: the recheck takes over"
    );
    assert!(svc.dest.get("mirror/k").is_none(), "nothing written");
    let sent = svc.rechecks.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].of, "m");
    assert_eq!(
        sent[0].attempts, 2,
        "two deliveries before this one's hand-over"
    );
    assert_eq!(sent[0].after, Duration::from_secs(915));
}

#[tokio::test]
async fn a_recheck_trusts_no_marker_written_for_its_message() {
    let source = MemorySource::default();
    let seq = "0055AED6DCE72C21";
    // Large enough that its first deliveries read the destination's marker.
    let (va, vb) = (large_body(b"version a"), large_body(b"version b"));
    let a = source.put("k", va.clone(), meta());
    let (svc, _) = service(source, CopyOptions::default());
    let event = created("k", &a, va.len() as u64, Some(seq));
    let r = svc.handle(&batch(vec![message("m", &event)]), "1").await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied]);
    // The source moves on (its own event is still on its way).
    svc.source.put("k", vb.clone(), meta());
    // An S3 duplicate of A's event in another message: settled by the marker, one request.
    let r = svc.handle(&batch(vec![message("x", &event)]), "2").await;
    assert_eq!(kinds(&r), [OutcomeKind::Skipped]);
    assert_eq!(r.outcomes[0].requests, 1);
    // A recheck standing for A's message reads the source and copies what it holds now.
    let mut recheck = message("r", &event);
    recheck
        .message_attributes
        .insert(RECHECK_OF.into(), string_attribute("m"));
    let r = svc.handle(&batch(vec![recheck]), "3").await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied]);
    assert_eq!(r.outcomes[0].recheck_of.as_deref(), Some("m"));
    assert_eq!(&svc.dest.get("mirror/k").unwrap().1[..], &vb[..]);
}

#[tokio::test]
async fn a_recheck_that_cannot_be_queued_leaves_the_message_to_come_again() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.rechecks.fail_with = Some("SQS SendMessageBatch: 503".into());
    let r = svc
        .handle(
            &batch(vec![redelivered("m", &created("k", &etag, 1, None), 2)]),
            "1",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Failed]);
    assert_eq!(
        r.outcomes[0].error_code.as_deref(),
        Some("RecheckNotQueued")
    );
    assert!(r.outcomes[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("503"));
    assert!(!r.outcomes[0].is_final);
    assert_eq!(failed_ids(&r), ["m"]);
    assert!(svc.dest.get("mirror/k").is_none(), "nothing written");
}

#[tokio::test]
async fn a_waiting_recheck_is_sent_on_for_its_next_hop() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (svc, _) = service(source, CopyOptions::default());
    let mut m = message("r1", &created("k", &etag, 1, None));
    m.message_attributes
        .insert(RECHECK_OF.into(), string_attribute("m"));
    m.message_attributes
        .insert(RECHECK_WAIT.into(), string_attribute("315"));
    m.message_attributes
        .insert(RECHECK_ATTEMPTS.into(), string_attribute("1"));
    let r = svc.handle(&batch(vec![m]), "1").await;
    assert_eq!(kinds(&r), [OutcomeKind::Ignored]);
    assert_eq!(r.outcomes[0].error_code.as_deref(), Some("RecheckWaiting"));
    assert!(!r.outcomes[0].is_final, "its work is still to come");
    assert!(failed_ids(&r).is_empty());
    let sent = svc.rechecks.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].of.as_str(), sent[0].after, sent[0].attempts),
        ("m", Duration::from_secs(315), 1)
    );
    assert!(svc.dest.get("mirror/k").is_none());
}

#[tokio::test]
async fn a_chain_at_max_receive_count_is_worked_on_in_place() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.max_receive_count = Some(5);
    let mut m = redelivered("r", &created("k", &etag, 1, None), 2);
    m.message_attributes
        .insert(RECHECK_OF.into(), string_attribute("m"));
    m.message_attributes
        .insert(RECHECK_ATTEMPTS.into(), string_attribute("3"));
    let r = svc.handle(&batch(vec![m]), "1").await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied]);
    let sent = svc.rechecks.sent();
    assert_eq!(sent.len(), 1, "only the write-ahead recheck, no hand-over");
    assert_eq!((sent[0].of.as_str(), sent[0].attempts), ("m", 4));
    assert_eq!(sent[0].receipt, None, "the message itself is not deleted");
}

#[tokio::test]
async fn a_write_leaves_a_recheck_first_and_a_skip_leaves_none() {
    let source = MemorySource::default();
    let a = source.put("k", &b"version a"[..], meta());
    let b = source.put("j", &b"version b"[..], meta());
    let (svc, _) = service(source, CopyOptions::default());
    // Two messages that write: a recheck for each, sent before its first write, with the
    // message's body and id, delayed by the lifetime, leaving the message itself alone.
    let r = svc
        .handle(
            &batch(vec![
                message("m1", &created("k", &a, 9, None)),
                message("m2", &created("j", &b, 9, None)),
            ]),
            "1",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied, OutcomeKind::Copied]);
    let mut sent = svc.rechecks.sent();
    sent.sort_by(|x, y| x.of.cmp(&y.of));
    assert_eq!(
        sent.iter().map(|s| s.of.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert_eq!(sent[0].body, created("k", &a, 9, None));
    assert_eq!(sent[0].after, Duration::from_secs(915));
    assert_eq!((sent[0].attempts, sent[0].receipt.as_deref()), (0, None));
    // The recheck of m1 finds the destination current: it skips and leaves nothing.
    let mut recheck = message("r", &created("k", &a, 9, None));
    recheck
        .message_attributes
        .insert(RECHECK_OF.into(), string_attribute("m1"));
    let r = svc.handle(&batch(vec![recheck]), "2").await;
    assert_eq!(kinds(&r), [OutcomeKind::Skipped]);
    assert_eq!(svc.rechecks.sent().len(), 2, "a skip leaves no recheck");
}

#[tokio::test]
async fn a_write_whose_recheck_cannot_be_queued_is_not_made() {
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.rechecks.fail_with = Some("SQS SendMessageBatch: 503".into());
    let r = svc
        .handle(
            &batch(vec![message("m", &created("k", &etag, 1, None))]),
            "1",
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Failed]);
    assert_eq!(
        r.outcomes[0].error_code.as_deref(),
        Some("RecheckNotQueued")
    );
    assert!(!r.outcomes[0].is_final);
    assert_eq!(failed_ids(&r), ["m"], "the message comes again");
    assert!(svc.dest.get("mirror/k").is_none(), "nothing written");
}

#[tokio::test(start_paused = true)]
async fn a_write_ahead_outlasts_the_invocations_real_deadline() {
    // The configured timeout says 300 s (a recheck after 315 s), but Lambda gave this invocation
    // 900 s: the write's recheck must come after that, plus the slack.
    let source = MemorySource::default();
    let etag = source.put("k", &b"x"[..], meta());
    let (mut svc, _) = service(source, CopyOptions::default());
    svc.recheck_after = Duration::from_secs(315);
    let r = svc
        .handle_within(
            &batch(vec![message("m", &created("k", &etag, 1, None))]),
            Invocation {
                id: "1",
                deadline: Some(tokio::time::Instant::now() + Duration::from_secs(900)),
                recheck_after: None,
            },
        )
        .await;
    assert_eq!(kinds(&r), [OutcomeKind::Copied]);
    let sent = svc.rechecks.sent();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].after >= Duration::from_secs(914) && sent[0].after <= Duration::from_secs(915),
        "{:?}",
        sent[0].after
    );
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
    assert_eq!(&svc.dest.get("mirror/big").unwrap().1[..], &data[..]);
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
    assert_eq!(&svc.dest.get("mirror/huge").unwrap().1[..], &data[..]);
    assert!(svc
        .dest
        .part_uploads
        .lock()
        .unwrap()
        .values()
        .all(|&n| n == 1));
    assert!(svc.dest.open_uploads().is_empty());
}
