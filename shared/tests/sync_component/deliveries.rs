//! First deliveries and duplicates: one record per event, when the destination is read first,
//! the batched write-aheads, and one job per key in a batch.

use super::{
    batch, created, deletes_on, failed_ids, fixture, kinds, large_body, message, meta,
    recheck_message, removed, service, service_holding,
};
use aws_lambda_events::event::sqs::SqsMessage;
use s3_oss_sync::outcome::{Outcome, OutcomeKind};
use s3_oss_sync::sync::copy::CopyOptions;
use s3_oss_sync::sync::handler::RecentWrites;
use s3_oss_sync::testing::memory::MemorySource;
use std::sync::atomic::Ordering;

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
    let (mut svc, etag) = service_holding("a", b"hello", CopyOptions::default());
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
    let (svc, etag) = service_holding("a", b"hello", CopyOptions::default());
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
    let (svc, etag) = service_holding("a", b"hello", CopyOptions::default());
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
    let (svc, etag) = service_holding("k", b"v2", deletes_on());
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
