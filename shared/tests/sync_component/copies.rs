//! What is copied, deleted, filtered or failed: a source changing during its copy, deletes,
//! failures and retries, the prefix binding, the report area, keys and tags OSS refuses.

use super::{
    batch, created, deletes_on, failed_ids, fixture, kinds, message, meta, recheck_message,
    removed, service, service_holding, BUCKET,
};
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::sync::copy::CopyOptions;
use s3_oss_sync::testing::hooked::HookedSource;
use s3_oss_sync::testing::memory::MemorySource;
use std::sync::atomic::{AtomicU32, Ordering};

#[tokio::test]
async fn a_source_changed_during_the_copy_is_copied_again() {
    let inner = MemorySource::default();
    let etag = inner.put("k", &b"old"[..], meta());
    // Overwritten once, after the first copy's upload and before its check.
    let heads = AtomicU32::new(0);
    let source = HookedSource::new(inner).on_head(move |inner, key| {
        if heads.fetch_add(1, Ordering::SeqCst) == 0 {
            inner.put(key, &b"the newer version"[..], meta());
        }
        None
    });
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
    let (svc, etag) = service_holding("k", b"x", deletes_on());
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

    let (svc, etag) = service_holding("k", b"x", CopyOptions::default());
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
    let (mut svc, etag) = service_holding("in/a", b"x", CopyOptions::default());
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

#[tokio::test]
async fn a_transient_failure_is_final_only_on_the_last_delivery() {
    let (mut svc, etag) = service_holding("k", b"x", CopyOptions::default());
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
    let (svc, etag) = service_holding("k", b"v", CopyOptions::default());
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
