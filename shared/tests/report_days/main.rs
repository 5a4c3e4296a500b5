//! Report days across time zones and runs: serial days (one day pushing at a time), days of 23
//! and 25 hours in a zone with daylight saving, a change of zone between runs, with every record
//! counted exactly once across the days' `attempts_list` and `late_list`, and paused periods.

use s3_oss_sync::outcome::{format_time, Outcome};
use s3_oss_sync::report::build::ReportSettings;
use s3_oss_sync::report::day::Zone;
use s3_oss_sync::store::results::{results_key, to_json_lines};
use s3_oss_sync::testing::memory::MemoryBucket;
use serde_json::Value;
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

mod pauses;
mod serial;
mod zones;

fn settings(zone: &str) -> ReportSettings {
    ReportSettings {
        task: "t1".into(),
        results_prefix: "results".into(),
        report_prefix: "reports".into(),
        zone: Zone::parse(zone).unwrap(),
        grace: Duration::minutes(30),
        part_bytes: 4096,
        sort_budget: 1 << 20,
        parallel_reads: 4,
    }
}

fn record(key: &str, at: OffsetDateTime) -> Outcome {
    serde_json::from_value(serde_json::json!({
        "task": "t1", "processed_at": format_time(at), "source_key": key, "dest_key": key,
        "event_time": format_time(at - Duration::seconds(2)), "event_name": "ObjectCreated:Put",
        "bucket": "src", "outcome": "copied", "bytes_moved": 10, "size": 10, "attempts": 1,
        "duration_ms": 5, "message_id": format!("m-{key}"),
    }))
    .unwrap()
}

/// One record filed in its own results object at `filed`.
fn file(bucket: &MemoryBucket, key: &str, at: OffsetDateTime, filed: OffsetDateTime) {
    bucket.insert(
        &results_key("results", "t1", filed, key),
        to_json_lines(&[record(key, at)]),
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

/// The day folders under the task's reports: day → (summary, manifest if complete).
fn days(bucket: &MemoryBucket) -> BTreeMap<String, (Value, Option<Value>)> {
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

/// The `source_key` column of every row of a day's list.
fn keys_in(bucket: &MemoryBucket, dir: &str, list: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (key, body) in bucket.snapshot() {
        if key.starts_with(&format!("{dir}/{list}/")) {
            let mut r = csv::Reader::from_reader(&body[..]);
            let col = r
                .headers()
                .unwrap()
                .iter()
                .position(|h| h == "source_key")
                .unwrap();
            out.extend(r.records().map(|row| row.unwrap()[col].to_owned()));
        }
    }
    out
}

/// At most one day is pushing, and every day before it is complete.
fn assert_serial(bucket: &MemoryBucket, when: OffsetDateTime) {
    let days = days(bucket);
    let pushing: Vec<&String> = days
        .iter()
        .filter(|(_, (s, m))| s["state"] == "pushing" && m.is_none())
        .map(|(d, _)| d)
        .collect();
    assert!(pushing.len() <= 1, "{when}: pushing at once: {pushing:?}");
    if let Some(p) = pushing.first() {
        for (d, (_, m)) in days.range::<String, _>(..(*p).clone()) {
            assert!(m.is_some(), "{when}: {d} is incomplete before pushing {p}");
        }
    }
}
