//! The bad-input corpus: every input in `tests/bad-input/cases.jsonl` goes through the sync
//! handler (in-memory stores) and must give its expected, clear outcome: the outcome kinds
//! recorded, the error code, and whether the message is reported failed (to be delivered again; a
//! permanent failure, such as a key OSS cannot hold, is recorded once as final and acknowledged).
//! Nothing may be acknowledged without a record, and nothing may be copied for bad input.
//!
//! Each line: `{"name", "body", "expect": {"outcomes": [...], "error_code": "..." | null,
//! "redeliver": bool, "copied": n}}`. Run with `BAD_INPUT_SHOW=1` to print what each input
//! gives now (for writing a new case's expectation by hand after checking it is right).

use aws_lambda_events::event::sqs::SqsEvent;
use s3_oss_sync::aws::sqs_poll::{lambda_event, lambda_message};
use s3_oss_sync::outcome::Outcome;
use s3_oss_sync::store::source::SourceMetadata;
use s3_oss_sync::sync::copy::CopyOptions;
use s3_oss_sync::sync::handler::{BatchReport, SyncService};
use s3_oss_sync::sync::recheck::HeldRechecks;
use s3_oss_sync::testing::memory::{MemoryDestination, MemoryResults, MemorySource};
use s3_oss_sync::testing::service::sync_service;
use serde::Deserialize;
use std::sync::{Arc, Mutex};

const BUCKET: &str = "mybucket";
/// SQS's largest message.
const SQS_MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Deserialize, PartialEq)]
struct Expect {
    outcomes: Vec<String>,
    error_code: Option<String>,
    redeliver: bool,
    copied: usize,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    body: String,
    expect: Option<Expect>,
}

type Service = SyncService<MemorySource, MemoryDestination, MemoryResults, HeldRechecks>;

fn service() -> (Service, Arc<Mutex<Vec<String>>>) {
    let source = MemorySource::default();
    // The keys the corpus's odd-key cases name exist, so they reach the destination's rules.
    let long = "k".repeat(1024);
    let longest = "k".repeat(1023);
    for key in ["k.txt", "a\u{1}b", "a\nb", "a\0b", "/lead", &long, &longest] {
        source.put(key, "hello", SourceMetadata::default());
    }
    sync_service(
        BUCKET,
        "",
        source,
        MemoryDestination::default(),
        CopyOptions {
            sync_deletes: true,
            ..CopyOptions::default()
        },
    )
}

fn event(body: &str) -> SqsEvent {
    lambda_event(vec![lambda_message("m-1", body, 1)])
}

/// What one input gave.
async fn run(body: &str) -> (Expect, BatchReport, Service) {
    let (svc, _) = service();
    let report = svc.handle(&event(body), "inv-1").await;
    let got = Expect {
        outcomes: report
            .outcomes
            .iter()
            .map(|o| o.outcome.as_str().to_owned())
            .collect(),
        error_code: report.outcomes.iter().find_map(|o| o.error_code.clone()),
        redeliver: !report.response.batch_item_failures.is_empty(),
        copied: svc.dest.keys().len(),
    };
    (got, report, svc)
}

/// Every input: at least one record, each with the message id, and a failed or invalid
/// record says why in words.
fn check_records(name: &str, records: &[Outcome], report: &BatchReport) {
    assert!(!records.is_empty(), "{name}: no record");
    assert!(
        report.results_error.is_none(),
        "{name}: records not written"
    );
    let redelivered = !report.response.batch_item_failures.is_empty();
    for r in records {
        assert_eq!(r.message_id, "m-1", "{name}");
        if r.outcome.as_str() == "failed" && !redelivered {
            assert!(r.is_final, "{name}: an acknowledged failure must be final");
        }
        if matches!(r.outcome.as_str(), "failed" | "invalid" | "ignored") {
            let msg = r.error_message.as_deref().unwrap_or_default();
            assert!(msg.len() >= 10, "{name}: unclear error message {msg:?}");
            assert!(r.error_code.is_some(), "{name}: no error code");
        }
    }
}

fn cases() -> Vec<Case> {
    let path = format!("{}/tests/bad-input/cases.jsonl", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}: {l}")))
        .collect()
}

#[tokio::test]
async fn every_corpus_input_gives_its_expected_outcome() {
    let show = std::env::var_os("BAD_INPUT_SHOW").is_some();
    let mut wrong = Vec::new();
    let all = cases();
    assert!(all.len() >= 30, "the corpus shrank to {}", all.len());
    for case in &all {
        let (got, report, _) = run(&case.body).await;
        if show {
            println!(
                "{:<50} {:?} {:?} redeliver={} copied={} | {:?}",
                case.name,
                got.outcomes,
                got.error_code,
                got.redeliver,
                got.copied,
                report
                    .outcomes
                    .first()
                    .and_then(|o| o.error_message.clone())
            );
            continue;
        }
        check_records(&case.name, &report.outcomes, &report);
        match &case.expect {
            Some(want) if *want == got => {}
            want => wrong.push(format!("{}: expected {want:?}, got {got:?}", case.name)),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A message at SQS's size limit: one valid event padded with an unknown field, and one made of
/// as many records as fit. Both are handled whole, one record per event.
#[tokio::test]
async fn messages_at_the_sqs_size_limit() {
    let record = |key: &str| {
        serde_json::json!({
            "eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T03:00:00.000Z",
            "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 5}}
        })
    };
    let mut padded = serde_json::json!({"Records": [record("k.txt")]});
    let base = padded.to_string().len();
    padded["Records"][0]["padding"] = "x".repeat(SQS_MAX_BYTES - base - 13).into();
    let body = padded.to_string();
    assert_eq!(body.len(), SQS_MAX_BYTES);
    let (got, report, svc) = run(&body).await;
    check_records("padded", &report.outcomes, &report);
    assert_eq!((got.outcomes, got.copied), (vec!["copied".to_owned()], 1));
    assert_eq!(svc.dest.keys(), ["k.txt"]);

    let one = record("missing-0000").to_string().len() + 1;
    let n = (SQS_MAX_BYTES - 20) / one;
    let records: Vec<_> = (0..n).map(|i| record(&format!("missing-{i:04}"))).collect();
    let body = serde_json::json!({ "Records": records }).to_string();
    assert!(body.len() <= SQS_MAX_BYTES && body.len() > SQS_MAX_BYTES - 2 * one);
    let (got, report, _) = run(&body).await;
    check_records("many", &report.outcomes, &report);
    assert_eq!(got.outcomes.len(), n, "one record per event");
}
