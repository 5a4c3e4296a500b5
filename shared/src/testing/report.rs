//! The report's component-test fixtures: settings for task `t1`, outcome records filed as the
//! sync function files them, a reporter over a [`MemoryBucket`], and readers of what a run wrote
//! (JSON objects, manifests checked against the files they list, list rows, day folders).

use super::memory::MemoryBucket;
use crate::checksum::md5_hex;
use crate::outcome::{format_time, Outcome, OutcomeKind};
use crate::report::build::{DayRun, ReportSettings, Reporter};
use crate::report::day::Zone;
use crate::store::results::{results_key, to_json_lines};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use time::{Duration, OffsetDateTime};

/// Settings of task `t1`: results under `results/`, reports under `reports/`, days in `zone`, a
/// 30-minute grace, lists cut into parts of `part_bytes`.
pub fn settings(zone: &str, part_bytes: usize) -> ReportSettings {
    ReportSettings {
        task: "t1".into(),
        results_prefix: "results".into(),
        report_prefix: "reports".into(),
        zone: Zone::parse(zone).unwrap(),
        grace: Duration::minutes(30),
        part_bytes,
        sort_budget: 1 << 20,
        parallel_reads: 4,
    }
}

/// A reporter that reads its records from `bucket` and writes its report there too.
pub fn reporter<'a>(
    settings: &'a ReportSettings,
    bucket: &'a MemoryBucket,
) -> Reporter<'a, MemoryBucket, MemoryBucket> {
    Reporter {
        settings,
        results: bucket,
        store: bucket,
    }
}

/// Task `t1`'s outcome `kind` for a 10-byte `key` (message `m-{key}`), processed at `at` for an
/// event two seconds older; a failure carries `InternalError`.
pub fn record(key: &str, at: OffsetDateTime, kind: OutcomeKind) -> Outcome {
    serde_json::from_value(serde_json::json!({
        "task": "t1", "processed_at": format_time(at), "source_key": key, "dest_key": key,
        "event_time": format_time(at - Duration::seconds(2)), "event_name": "ObjectCreated:Put",
        "bucket": "src", "outcome": kind, "bytes_moved": if kind == OutcomeKind::Copied { 10 } else { 0 },
        "size": 10, "attempts": 1, "duration_ms": 5, "message_id": format!("m-{key}"),
        "error_code": if kind == OutcomeKind::Failed { Some("InternalError") } else { None },
    }))
    .unwrap()
}

/// `n` records of keys `k000`, `k001`, ..., all `kind` at `at`.
pub fn records(n: usize, at: OffsetDateTime, kind: OutcomeKind) -> Vec<Outcome> {
    (0..n)
        .map(|i| record(&format!("k{i:03}"), at, kind))
        .collect()
}

/// Files `records` as the sync function does: one results object per invocation `inv`, under
/// the hour it was `written`.
pub fn file(bucket: &MemoryBucket, records: &[Outcome], written: OffsetDateTime, inv: &str) {
    bucket.insert(
        &results_key("results", "t1", written, inv),
        to_json_lines(records),
    );
}

/// The JSON object at `key`; panics naming the key when it is missing.
pub fn json(bucket: &MemoryBucket, key: &str) -> Value {
    serde_json::from_slice(
        &bucket
            .object(key)
            .unwrap_or_else(|| panic!("{key} missing")),
    )
    .unwrap()
}

/// The manifest of `day_dir`, checked: its checksum matches, and every file it lists has the
/// listed MD5 and size and was written before the manifest.
pub fn check_manifest(bucket: &MemoryBucket, day_dir: &str) -> Value {
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
pub fn list_rows(bucket: &MemoryBucket, day_dir: &str, list: &str) -> Vec<HashMap<String, String>> {
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

/// The `source_key` column of every row of a day's list.
pub fn keys_in(bucket: &MemoryBucket, day_dir: &str, list: &str) -> Vec<String> {
    list_rows(bucket, day_dir, list)
        .into_iter()
        .map(|mut row| row.remove("source_key").unwrap())
        .collect()
}

/// The day folders under task `t1`'s reports: day → (summary, manifest if complete).
pub fn days(bucket: &MemoryBucket) -> BTreeMap<String, (Value, Option<Value>)> {
    let mut out = BTreeMap::new();
    for (key, _) in bucket.snapshot() {
        let Some(day) = key
            .strip_prefix("reports/t1/")
            .and_then(|k| k.strip_suffix("/summary.json"))
        else {
            continue;
        };
        let dir = format!("reports/t1/{day}");
        let manifest = bucket
            .object(&format!("{dir}/manifest.json"))
            .map(|_| json(bucket, &format!("{dir}/manifest.json")));
        out.insert(
            day.to_owned(),
            (json(bucket, &format!("{dir}/summary.json")), manifest),
        );
    }
    out
}

/// Each day of a run as (day, state).
pub fn states(days: &[DayRun]) -> Vec<(String, &'static str)> {
    days.iter().map(|d| (d.day.to_string(), d.state)).collect()
}

/// Each day of a run as (day, state, records).
pub fn counted_states(days: &[DayRun]) -> Vec<(String, &'static str, u64)> {
    days.iter()
        .map(|d| (d.day.to_string(), d.state, d.records))
        .collect()
}
