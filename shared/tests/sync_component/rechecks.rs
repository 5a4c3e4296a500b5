//! Redeliveries and rechecks: a redelivery hands over to a recheck, the recheck chain, and the
//! recheck every write leaves first.

use super::{
    batch, created, failed_ids, kinds, large_body, message, meta, service, service_holding, Service,
};
use aws_lambda_events::event::sqs::SqsMessage;
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::sync::copy::CopyOptions;
use s3_oss_sync::sync::handler::{BatchReport, Invocation};
use s3_oss_sync::sync::recheck::{string_attribute, RECHECK_ATTEMPTS, RECHECK_OF, RECHECK_WAIT};
use s3_oss_sync::testing::memory::MemorySource;
use std::time::Duration;

fn redelivered(id: &str, body: &str, count: u32) -> SqsMessage {
    let mut m = message(id, body);
    m.attributes
        .insert("ApproximateReceiveCount".into(), count.to_string());
    m
}

/// A service over `k` holding `x` whose rechecks cannot be queued: SQS answers 503.
fn rechecks_down() -> (Service<MemorySource>, String) {
    let (mut svc, etag) = service_holding("k", b"x", CopyOptions::default());
    svc.rechecks.fail_with = Some("SQS SendMessageBatch: 503".into());
    (svc, etag)
}

/// Asserts that the one message of `r` failed because its recheck could not be queued.
fn assert_recheck_not_queued(r: &BatchReport) {
    assert_eq!(kinds(r), [OutcomeKind::Failed]);
    assert_eq!(
        r.outcomes[0].error_code.as_deref(),
        Some("RecheckNotQueued")
    );
}

#[tokio::test]
async fn a_redelivery_hands_its_events_to_a_recheck_and_writes_nothing() {
    let (mut svc, etag) = service_holding("k", b"x", CopyOptions::default());
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
    let (svc, etag) = rechecks_down();
    let r = svc
        .handle(
            &batch(vec![redelivered("m", &created("k", &etag, 1, None), 2)]),
            "1",
        )
        .await;
    assert_recheck_not_queued(&r);
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
    let (svc, etag) = service_holding("k", b"x", CopyOptions::default());
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
    let (mut svc, etag) = service_holding("k", b"x", CopyOptions::default());
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
    let (svc, etag) = rechecks_down();
    let r = svc
        .handle(
            &batch(vec![message("m", &created("k", &etag, 1, None))]),
            "1",
        )
        .await;
    assert_recheck_not_queued(&r);
    assert!(!r.outcomes[0].is_final);
    assert_eq!(failed_ids(&r), ["m"], "the message comes again");
    assert!(svc.dest.get("mirror/k").is_none(), "nothing written");
}

#[tokio::test(start_paused = true)]
async fn a_write_ahead_outlasts_the_invocations_real_deadline() {
    // The configured timeout says 300 s (a recheck after 315 s), but Lambda gave this invocation
    // 900 s: the write's recheck must come after that, plus the slack.
    let (mut svc, etag) = service_holding("k", b"x", CopyOptions::default());
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
