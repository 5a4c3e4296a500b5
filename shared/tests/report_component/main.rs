//! Component tests: the report run over outcome records spread across several days, against an
//! in-memory bucket that keeps the order of its writes.

use s3_oss_sync::checksum::md5_hex;
use s3_oss_sync::outcome::{format_time, Outcome, OutcomeKind};
use s3_oss_sync::report::build::ReportSettings;
use s3_oss_sync::report::day::Zone;
use s3_oss_sync::store::results::{results_key, to_json_lines};
use s3_oss_sync::testing::memory::MemoryBucket;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

mod days;
mod objects;
mod records;

fn settings(offset: &str) -> ReportSettings {
    ReportSettings {
        task: "t1".into(),
        results_prefix: "results".into(),
        report_prefix: "reports".into(),
        zone: Zone::parse(offset).unwrap(),
        grace: Duration::minutes(30),
        part_bytes: 1024,
        sort_budget: 1 << 20,
        parallel_reads: 4,
    }
}

fn record(key: &str, at: OffsetDateTime, kind: OutcomeKind) -> Outcome {
    serde_json::from_value(serde_json::json!({
        "task": "t1", "processed_at": format_time(at), "source_key": key, "dest_key": key,
        "event_time": format_time(at - Duration::seconds(2)), "event_name": "ObjectCreated:Put",
        "bucket": "src", "outcome": kind, "bytes_moved": if kind == OutcomeKind::Copied { 10 } else { 0 },
        "size": 10, "attempts": 1, "duration_ms": 5, "message_id": format!("m-{key}"),
        "error_code": if kind == OutcomeKind::Failed { Some("InternalError") } else { None },
    }))
    .unwrap()
}

/// Files records as the sync function does: one object per invocation, under its write hour.
fn file(bucket: &MemoryBucket, records: &[Outcome], written: OffsetDateTime, inv: &str) {
    bucket.insert(
        &results_key("results", "t1", written, inv),
        to_json_lines(records),
    );
}

fn json(bucket: &MemoryBucket, key: &str) -> Value {
    serde_json::from_slice(
        &bucket
            .object(key)
            .unwrap_or_else(|| panic!("{key} missing")),
    )
    .unwrap()
}

fn check_manifest(bucket: &MemoryBucket, day_dir: &str) -> Value {
    let raw = bucket.object(&format!("{day_dir}/manifest.json")).unwrap();
    let checksum = bucket
        .object(&format!("{day_dir}/manifest.checksum"))
        .unwrap();
    assert_eq!(std::str::from_utf8(&checksum).unwrap(), md5_hex(&raw));
    let m: Value = serde_json::from_slice(&raw).unwrap();
    let journal = bucket.journal();
    let manifest_at = journal
        .iter()
        .rposition(|k| k == &format!("{day_dir}/manifest.json"))
        .unwrap();
    for f in m["files"].as_array().unwrap() {
        let key = f["key"].as_str().unwrap();
        let body = bucket.object(key).unwrap();
        assert_eq!(f["md5"], md5_hex(&body), "{key}");
        assert_eq!(f["size"], body.len() as u64);
        let written_at = journal.iter().rposition(|k| k == key).unwrap();
        assert!(written_at < manifest_at, "{key} written after the manifest");
    }
    m
}

/// The rows of every part of a day's list, as maps of column to value.
fn list_rows(
    bucket: &MemoryBucket,
    day_dir: &str,
    list: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    let mut rows = Vec::new();
    for (key, body) in bucket.snapshot() {
        if key.starts_with(&format!("{day_dir}/{list}/")) {
            let mut r = csv::Reader::from_reader(&body[..]);
            let header = r.headers().unwrap().clone();
            for row in r.records() {
                let row = row.unwrap();
                rows.push(
                    header
                        .iter()
                        .zip(row.iter())
                        .map(|(h, v)| (h.to_owned(), v.to_owned()))
                        .collect(),
                );
            }
        }
    }
    rows
}
