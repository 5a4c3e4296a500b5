//! Component tests: the report run over outcome records spread across several days, against an
//! in-memory bucket that keeps the order of its writes.

use md5::{Digest, Md5};
use s3_oss_sync::outcome::{format_time, Outcome, OutcomeKind};
use s3_oss_sync::report::build::{ReportSettings, Reporter};
use s3_oss_sync::report::day::Zone;
use s3_oss_sync::store::results::{results_key, to_json_lines};
use s3_oss_sync::testing::memory::MemoryBucket;
use serde_json::Value;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

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

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
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

#[tokio::test]
async fn days_are_reported_oldest_first_pushing_then_complete() {
    let b = MemoryBucket::default();
    let d20 = datetime!(2026-11-20 10:00 UTC);
    file(
        &b,
        &[
            record("a", d20, OutcomeKind::Copied),
            record("b", d20, OutcomeKind::Failed),
        ],
        d20,
        "i1",
    );
    // Processed just before midnight, filed just after: still the 20th.
    let late = datetime!(2026-11-20 23:59:58 UTC);
    file(
        &b,
        &[record("c", late, OutcomeKind::Skipped)],
        late + Duration::seconds(5),
        "i2",
    );
    let d22 = datetime!(2026-11-22 08:00 UTC);
    file(&b, &[record("d", d22, OutcomeKind::Copied)], d22, "i3");

    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    let runs = r.run(datetime!(2026-11-22 12:00 UTC)).await.unwrap().days;
    let states: Vec<(String, &str, u64)> = runs
        .iter()
        .map(|d| (d.day.to_string(), d.state, d.records))
        .collect();
    assert_eq!(
        states,
        [
            ("2026-11-20".into(), "complete", 3),
            ("2026-11-21".into(), "complete", 0),
            ("2026-11-22".into(), "pushing", 1),
        ]
    );
    let m20 = check_manifest(&b, "reports/t1/2026-11-20");
    assert_eq!(m20["records"], 3);
    assert_eq!(m20["counts"]["failed"], 1);
    check_manifest(&b, "reports/t1/2026-11-21");
    assert!(b.object("reports/t1/2026-11-22/manifest.json").is_none());
    // The page is listed (with its MD5, checked above) and written while a day is pushing too.
    assert!(m20["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["key"] == "reports/t1/2026-11-20/report.html" && f["rows"].is_null()));
    let page = b.object("reports/t1/2026-11-22/report.html").unwrap();
    assert!(std::str::from_utf8(&page)
        .unwrap()
        .contains(r#"data-hour="8" data-state="copied" data-files="1""#));
    assert_eq!(
        json(&b, "reports/t1/2026-11-22/summary.json")["state"],
        "pushing"
    );
    let journal = b.journal();
    let pos = |k: &str| journal.iter().position(|j| j == k).unwrap();
    assert!(
        pos("reports/t1/2026-11-20/manifest.json") < pos("reports/t1/2026-11-21/manifest.json")
    );
    let failed = b
        .object("reports/t1/2026-11-20/failed_list/part-00001.csv")
        .unwrap();
    assert_eq!(
        failed.iter().filter(|c| **c == b'\n').count(),
        2,
        "header and one row"
    );

    // Within the grace period after the 22nd's end it is still pushing; after it, complete.
    let runs = r.run(datetime!(2026-11-23 00:10 UTC)).await.unwrap().days;
    assert_eq!(
        (runs[0].day.to_string().as_str(), runs[0].state),
        ("2026-11-22", "pushing")
    );
    let runs = r.run(datetime!(2026-11-23 00:31 UTC)).await.unwrap().days;
    assert_eq!(runs[0].day.to_string(), "2026-11-22");
    assert_eq!(runs[0].state, "complete");
    check_manifest(&b, "reports/t1/2026-11-22");
    assert_eq!(
        json(&b, "reports/t1/2026-11-22/summary.json")["state"],
        "complete"
    );

    // A re-run changes nothing.
    let before = b.snapshot();
    r.run(datetime!(2026-11-23 00:31 UTC)).await.unwrap();
    assert_eq!(b.snapshot(), before);
}

#[tokio::test]
async fn a_crash_midway_never_leaves_a_manifest_and_the_next_run_converges() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    let records: Vec<Outcome> = (0..200)
        .map(|i| record(&format!("k{i:03}"), t, OutcomeKind::Copied))
        .collect();
    file(&b, &records, t, "i1");
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    *b.writes_left.lock().unwrap() = Some(5);
    assert!(r.run(datetime!(2026-11-21 01:00 UTC)).await.is_err());
    assert!(b.object("reports/t1/2026-11-20/manifest.json").is_none());
    *b.writes_left.lock().unwrap() = None;
    r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    let m = check_manifest(&b, "reports/t1/2026-11-20");
    let parts = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["key"].as_str().unwrap().contains("total_list"))
        .count();
    assert!(parts > 3, "small parts: {parts}");
    let rows: u64 = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["key"].as_str().unwrap().contains("total_list"))
        .map(|f| f["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, 200);
}

#[tokio::test]
async fn days_follow_a_fixed_offset() {
    let b = MemoryBucket::default();
    // 17:00 UTC on the 20th is 01:00 on the 21st in +08:00.
    let t = datetime!(2026-11-20 17:00 UTC);
    file(&b, &[record("east", t, OutcomeKind::Copied)], t, "i1");
    let s = settings("+08:00");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    let runs = r.run(datetime!(2026-11-21 17:00 UTC)).await.unwrap().days;
    assert_eq!(runs[0].day.to_string(), "2026-11-21");
    assert_eq!(runs[0].records, 1);
    assert_eq!(runs[0].state, "complete");
    let m = check_manifest(&b, "reports/t1/2026-11-21");
    assert_eq!(m["utc_offset"], "+08:00");
}

#[tokio::test]
async fn awkward_keys_survive_the_csv() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    let keys = [
        "comma,key",
        "quote\"key",
        "new\nline",
        "日本/ü ß",
        "plus+sign%41",
    ];
    let records: Vec<Outcome> = keys
        .iter()
        .map(|k| record(k, t, OutcomeKind::Copied))
        .collect();
    file(&b, &records, t, "i1");
    let s = settings("Z");
    Reporter {
        settings: &s,
        results: &b,
        store: &b,
    }
    .run(datetime!(2026-11-21 01:00 UTC))
    .await
    .unwrap();
    let mut got = Vec::new();
    for (key, body) in b.snapshot() {
        if key.contains("total_list/") {
            let mut r = csv::Reader::from_reader(&body[..]);
            assert_eq!(r.headers().unwrap().get(0), Some("source_key"));
            for row in r.records() {
                let raw = row.unwrap()[0].to_owned();
                got.push(
                    percent_encoding::percent_decode_str(&raw)
                        .decode_utf8()
                        .unwrap()
                        .into_owned(),
                );
            }
        }
    }
    let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "decoded, in key order");
}

#[tokio::test]
async fn an_empty_day_after_the_last_complete_one_still_gets_its_report() {
    let b = MemoryBucket::default();
    let d20 = datetime!(2026-11-20 10:00 UTC);
    file(&b, &[record("a", d20, OutcomeKind::Copied)], d20, "i1");
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    check_manifest(&b, "reports/t1/2026-11-20");
    let d22 = datetime!(2026-11-22 10:00 UTC);
    file(&b, &[record("b", d22, OutcomeKind::Copied)], d22, "i2");
    let runs = r.run(datetime!(2026-11-23 01:00 UTC)).await.unwrap().days;
    let days: Vec<(String, &str)> = runs.iter().map(|d| (d.day.to_string(), d.state)).collect();
    assert_eq!(
        days[..2],
        [
            ("2026-11-21".into(), "complete"),
            ("2026-11-22".into(), "complete")
        ]
    );
    let m21 = check_manifest(&b, "reports/t1/2026-11-21");
    assert_eq!(m21["records"], 0);
    let empty = b
        .object("reports/t1/2026-11-21/total_list/part-00001.csv")
        .unwrap();
    assert_eq!(
        empty.iter().filter(|c| **c == b'\n').count(),
        1,
        "only the header row"
    );
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

#[tokio::test]
async fn files_synced_with_a_wrong_secret_then_the_right_one_are_copied_not_failed() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    let keys = ["k1", "k2", "k3", "k4"];
    let mut records = Vec::new();
    let mut second = 0;
    let mut at = |n: i64| {
        second += n;
        t + Duration::seconds(second)
    };
    for k in keys {
        // With the wrong secret: a transient failure SQS delivers again, the write-ahead
        // recheck's failure, the last delivery's failure (final), a redrive's failure (final).
        let mut failures = Vec::new();
        for (is_final, recheck) in [(false, false), (true, true), (true, false), (true, false)] {
            let mut o = record(k, at(1), OutcomeKind::Failed);
            o.error_code = Some("SignatureDoesNotMatch".into());
            o.is_final = is_final;
            o.recheck_of = recheck.then(|| format!("m-{k}"));
            failures.push(o);
        }
        records.extend(failures);
    }
    // Put right: each key copied once, and the copy's recheck finds it current.
    for k in keys {
        records.push(record(k, at(60), OutcomeKind::Copied));
        let mut recheck = record(k, at(1), OutcomeKind::Skipped);
        recheck.recheck_of = Some(format!("m-{k}"));
        records.push(recheck);
    }
    let mut test_event = record("", at(1), OutcomeKind::Ignored);
    (test_event.source_key, test_event.dest_key) = (None, None);
    test_event.event_name = Some("s3:TestEvent".into());
    records.push(test_event);
    file(&b, &records, t + Duration::minutes(5), "i1");

    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    let runs = r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap().days;
    assert_eq!((runs[0].files, runs[0].records), (5, 25));
    let dir = "reports/t1/2026-11-20";
    let m = check_manifest(&b, dir);
    assert_eq!(m["format_version"], 5);
    assert_eq!(
        (m["file_count"].as_u64(), m["records"].as_u64()),
        (Some(5), Some(25))
    );
    assert_eq!(m["file_states"]["failed"], 0);
    let summary = json(&b, &format!("{dir}/summary.json"));
    assert_eq!(summary["file_count"], 5);
    assert_eq!(summary["file_states"]["copied"], 4);
    assert_eq!(summary["file_states"]["failed"], 0);
    assert_eq!(summary["file_states"]["ignored"], 1);
    assert_eq!(
        summary["counts"]["failed"], 16,
        "every failed attempt is counted as a record"
    );
    assert_eq!(summary["lists"]["failed_list"]["rows"], 0);

    assert!(list_rows(&b, dir, "failed_list").is_empty());
    let files = list_rows(&b, dir, "total_list");
    let copied: Vec<(&str, &str, &str, &str)> = files
        .iter()
        .filter(|f| !f["source_key"].is_empty())
        .map(|f| {
            (
                f["source_key"].as_str(),
                f["state"].as_str(),
                f["deliveries"].as_str(),
                f["attempts"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        copied,
        keys.iter()
            .map(|k| (*k, "copied", "4", "6"))
            .collect::<Vec<_>>()
    );
    let attempts = list_rows(&b, dir, "attempts_list");
    assert_eq!(attempts.len(), 25, "every attempt listed");
    assert_eq!(
        attempts.iter().filter(|a| a["outcome"] == "failed").count(),
        16
    );
    let skipped = list_rows(&b, dir, "skipped_list");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["event_name"], "s3:TestEvent");
}

#[tokio::test]
async fn records_filed_after_their_day_completed_are_listed_late_never_dropped() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    // The 20th: a record, and one processed just before midnight and filed just after.
    let d20 = datetime!(2026-11-20 10:00 UTC);
    file(&b, &[record("a", d20, OutcomeKind::Copied)], d20, "i1");
    let edge = datetime!(2026-11-20 23:59:58 UTC);
    file(
        &b,
        &[record("b", edge, OutcomeKind::Copied)],
        edge + Duration::seconds(5),
        "i2",
    );
    // Completed early (as of a later instant, or past a grace shorter than a slow batch).
    r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    let m20 = check_manifest(&b, "reports/t1/2026-11-20");
    assert_eq!(m20["records"], 2);
    assert_eq!(m20["read_after_end"].as_array().unwrap().len(), 1);
    let day20: Vec<_> = b
        .snapshot()
        .into_iter()
        .filter(|(k, _)| k.starts_with("reports/t1/2026-11-20/"))
        .collect();

    // Then records of the 20th are filed: one within its grace hour, one hours later, one on
    // the 22nd just after midnight (in both the 21st's and the 22nd's partitions); and a
    // record of the 21st in the same object as a late one.
    let c = datetime!(2026-11-20 23:59:59 UTC);
    file(
        &b,
        &[record("c", c, OutcomeKind::Copied)],
        datetime!(2026-11-21 00:20 UTC),
        "i3",
    );
    let d21 = datetime!(2026-11-21 02:59 UTC);
    file(
        &b,
        &[
            record("d", c, OutcomeKind::Failed),
            record("e", d21, OutcomeKind::Copied),
        ],
        datetime!(2026-11-21 03:00 UTC),
        "i4",
    );
    file(
        &b,
        &[record("f", c, OutcomeKind::Copied)],
        datetime!(2026-11-22 00:10 UTC),
        "i5",
    );
    r.run(datetime!(2026-11-22 00:40 UTC)).await.unwrap();
    let now20: Vec<_> = b
        .snapshot()
        .into_iter()
        .filter(|(k, _)| k.starts_with("reports/t1/2026-11-20/"))
        .collect();
    assert_eq!(now20, day20, "a complete day is never touched again");
    let m21 = check_manifest(&b, "reports/t1/2026-11-21");
    assert_eq!(
        (m21["records"].as_u64(), m21["late_records"].as_u64()),
        (Some(1), Some(3))
    );
    let late = list_rows(&b, "reports/t1/2026-11-21", "late_list");
    let listed: Vec<(&str, &str, &str)> = late
        .iter()
        .map(|l| {
            (
                l["day"].as_str(),
                l["source_key"].as_str(),
                l["outcome"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("2026-11-20", "c", "copied"),
            ("2026-11-20", "d", "failed"),
            ("2026-11-20", "f", "copied"),
        ]
    );
    // The 22nd reads the object the 21st took "f" from: not listed twice.
    r.run(datetime!(2026-11-23 01:00 UTC)).await.unwrap();
    let m22 = check_manifest(&b, "reports/t1/2026-11-22");
    assert_eq!(
        (m22["records"].as_u64(), m22["late_records"].as_u64()),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn a_record_whose_time_cannot_be_read_is_counted_unreadable() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    let mut bad = record("bad", t, OutcomeKind::Copied);
    bad.processed_at = "yesterday-ish".into();
    file(&b, &[record("a", t, OutcomeKind::Copied), bad], t, "i1");
    let s = settings("Z");
    Reporter {
        settings: &s,
        results: &b,
        store: &b,
    }
    .run(datetime!(2026-11-21 01:00 UTC))
    .await
    .unwrap();
    let m = check_manifest(&b, "reports/t1/2026-11-20");
    assert_eq!(
        (m["records"].as_u64(), m["unreadable_records"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn a_stray_folder_under_the_results_prefix_is_ignored_and_reports_continue() {
    let b = MemoryBucket::default();
    // A query engine's output beside the partitions (sorting before them), a day folder holding
    // no hour partition, and a folder inside a real partition.
    b.insert(
        "results/t1/athena-query-results/2020-01-01/q.csv",
        bytes::Bytes::from_static(b"a,b\n1,2\n"),
    );
    b.insert(
        "results/t1/dt=2026-11-18/tmp/x.jsonl",
        bytes::Bytes::from_static(b"{}\n"),
    );
    b.insert(
        "results/t1/dt=2026-11-20/hr=10/tmp/y.csv",
        bytes::Bytes::from_static(b"not a record\n"),
    );
    let t = datetime!(2026-11-20 10:00 UTC);
    file(&b, &[record("a", t, OutcomeKind::Copied)], t, "i1");
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    let run = r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    let days: Vec<(String, &str)> = run
        .days
        .iter()
        .map(|d| (d.day.to_string(), d.state))
        .collect();
    assert_eq!(
        days,
        [
            ("2026-11-20".into(), "complete"),
            ("2026-11-21".into(), "pushing")
        ]
    );
    assert_eq!(run.nothing_to_do, None);
    assert_eq!(
        run.ignored,
        [
            "results/t1/athena-query-results/",
            "results/t1/dt=2026-11-18/tmp/"
        ]
    );
    let m = check_manifest(&b, "reports/t1/2026-11-20");
    assert_eq!(
        (m["records"].as_u64(), m["unreadable_records"].as_u64()),
        (Some(1), Some(0)),
        "nothing in a folder inside a partition is read"
    );
    assert!(b
        .snapshot()
        .iter()
        .all(|(k, _)| !k.starts_with("reports/t1/2026-11-18")));
}

#[tokio::test]
async fn a_run_with_nothing_to_report_says_why() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    let now = datetime!(2026-11-21 01:00 UTC);
    let run = r.run(now).await.unwrap();
    assert!(run.days.is_empty());
    let why = run.nothing_to_do.unwrap();
    assert!(
        why.contains("no results partitions") && why.contains("results/t1/"),
        "{why}"
    );

    b.insert(
        "results/t1/athena-query-results/q.csv",
        bytes::Bytes::from_static(b"a\n"),
    );
    let why = r.run(now).await.unwrap().nothing_to_do.unwrap();
    assert!(why.contains("1 other folder(s) ignored"), "{why}");

    let t = datetime!(2026-11-20 10:00 UTC);
    file(&b, &[record("a", t, OutcomeKind::Copied)], t, "i1");
    assert_eq!(r.run(now).await.unwrap().days.len(), 2);
    // As of an instant before the next day begins, every day is complete.
    let why = r
        .run(datetime!(2026-11-20 23:00 UTC))
        .await
        .unwrap()
        .nothing_to_do
        .unwrap();
    assert!(
        why.contains("every day through 2026-11-20 is complete"),
        "{why}"
    );
    // As of an instant before the first record, there is nothing yet.
    let empty = MemoryBucket::default();
    file(&empty, &[record("a", t, OutcomeKind::Copied)], t, "i1");
    let early = Reporter {
        settings: &s,
        results: &empty,
        store: &empty,
    };
    let why = early
        .run(datetime!(2026-11-19 12:00 UTC))
        .await
        .unwrap()
        .nothing_to_do
        .unwrap();
    assert!(
        why.contains("2026-11-20") && why.contains("after today"),
        "{why}"
    );
}

#[tokio::test]
async fn lists_follow_the_manifest_file_schema_and_neutralise_formulas() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    let mut copied = record("-a", t, OutcomeKind::Copied);
    copied.crc64 = Some(u64::MAX);
    copied.dropped_metadata = vec!["x-amz-meta-z: value is not printable ASCII".into()];
    let mut failed = record("b", t, OutcomeKind::Failed);
    failed.error_message = Some("=HYPERLINK(\"http://x\",\"y\")".into());
    failed.event_name = Some("@SUM(1)".into());
    file(&b, &[copied, failed], t, "i1");
    let s = settings("Z");
    Reporter {
        settings: &s,
        results: &b,
        store: &b,
    }
    .run(datetime!(2026-11-21 01:00 UTC))
    .await
    .unwrap();
    let dir = "reports/t1/2026-11-20";
    let m = check_manifest(&b, dir);
    assert_eq!(m["format_version"], 5);
    let summary = json(&b, &format!("{dir}/summary.json"));
    assert_eq!(summary["fileSchema"], m["fileSchema"]);
    let mut lists = 0;
    for f in m["files"].as_array().unwrap() {
        let key = f["key"].as_str().unwrap();
        let Some(list) = key
            .strip_prefix(&format!("{dir}/"))
            .and_then(|k| k.split_once('/'))
        else {
            continue;
        };
        lists += 1;
        let body = b.object(key).unwrap();
        let mut r = csv::Reader::from_reader(&body[..]);
        let header: Vec<&str> = r.headers().unwrap().iter().collect();
        assert_eq!(
            m["fileSchema"][list.0].as_str().unwrap(),
            header.join(", "),
            "{key}"
        );
    }
    assert_eq!(lists, 5);
    let rows = |list: &str| -> Vec<std::collections::HashMap<String, String>> {
        let body = b.object(&format!("{dir}/{list}/part-00001.csv")).unwrap();
        csv::Reader::from_reader(&body[..])
            .deserialize()
            .map(Result::unwrap)
            .collect()
    };
    let total = rows("total_list");
    let a = &total[0];
    assert_eq!(a["source_key"], "%2Da");
    assert_eq!(a["dest_crc64"], "'18446744073709551615");
    assert_eq!(a["dest_crc64_hex"], "ffffffffffffffff");
    assert_eq!(
        (a["dest_size"].as_str(), a["bytes_moved"].as_str()),
        ("10", "10")
    );
    assert_eq!(
        a["dropped_metadata"],
        "[\"x-amz-meta-z: value is not printable ASCII\"]"
    );
    let failed = rows("failed_list");
    assert_eq!(
        failed[0]["error_message"],
        "'=HYPERLINK(\"http://x\",\"y\")"
    );
    assert_eq!(failed[0]["event_name"], "'@SUM(1)");
    assert_eq!(
        (
            failed[0]["dest_size"].as_str(),
            failed[0]["dest_crc64"].as_str()
        ),
        ("", "")
    );
    assert_eq!(
        rows("attempts_list")[1]["error_message"],
        failed[0]["error_message"]
    );
}

/// Objects that are not the report's, in its area (synced there before the sync function kept
/// out of it, or put there by hand): a run deletes none of them, a foreign `manifest.json` on a
/// later day does not stop the reports, and parts an earlier run wrote beyond this run's last
/// are still cleaned up.
#[tokio::test]
async fn objects_the_report_did_not_write_survive_and_a_foreign_manifest_stops_nothing() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    // 60 files failed: failed_list has several parts.
    let failed: Vec<Outcome> = (0..60)
        .map(|i| record(&format!("k{i:03}"), t, OutcomeKind::Failed))
        .collect();
    file(&b, &failed, t, "i1");
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    r.run(datetime!(2026-11-20 12:00 UTC)).await.unwrap();
    let dir = "reports/t1/2026-11-20";
    let failed_parts = b
        .snapshot()
        .keys()
        .filter(|k| k.starts_with(&format!("{dir}/failed_list/part-")))
        .count();
    assert!(failed_parts > 3, "{failed_parts}");
    let journal = json(&b, &format!("{dir}/_journal.json"));
    assert_eq!(journal["parts"]["failed_list"], failed_parts as u64);

    // Objects the report did not write, one named like a part beyond any it wrote.
    let user = [
        format!("{dir}/total_list/user-notes.csv"),
        format!("{dir}/total_list/part-00900.csv"),
        format!("{dir}/failed_list/part-00900.csv"),
        format!("{dir}/failed_list/sub/part-00002.csv"),
        format!("{dir}/mine.txt"),
    ];
    for k in &user {
        b.insert(k, "a user's object");
    }
    // A manifest for tomorrow that the report did not write (no checksum), one with a checksum
    // but another task, and one whose checksum does not match.
    let foreign =
        serde_json::json!({"format_version": 4, "task": "t1", "day": "2026-11-21", "files": []});
    b.insert(
        "reports/t1/2026-11-21/manifest.json",
        serde_json::to_vec(&foreign).unwrap(),
    );
    let other_task = serde_json::to_vec(
        &serde_json::json!({"format_version": 4, "task": "t2", "day": "2026-11-22", "files": []}),
    )
    .unwrap();
    b.insert(
        "reports/t1/2026-11-22/manifest.checksum",
        md5_hex(&other_task),
    );
    b.insert("reports/t1/2026-11-22/manifest.json", other_task);
    let wrong_sum = serde_json::to_vec(
        &serde_json::json!({"format_version": 4, "task": "t1", "day": "2026-11-23", "files": []}),
    )
    .unwrap();
    b.insert("reports/t1/2026-11-23/manifest.checksum", "0".repeat(32));
    b.insert("reports/t1/2026-11-23/manifest.json", wrong_sum);
    for day in [
        time::macros::date!(2026 - 11 - 21),
        time::macros::date!(2026 - 11 - 22),
        time::macros::date!(2026 - 11 - 23),
    ] {
        assert!(!r.has_manifest(day).await.unwrap(), "{day}");
    }
    assert_eq!(r.last_complete_day().await.unwrap(), None);

    // The files are then copied: failed_list shrinks to its header.
    let later = t + Duration::hours(2);
    let copied: Vec<Outcome> = (0..60)
        .map(|i| record(&format!("k{i:03}"), later, OutcomeKind::Copied))
        .collect();
    file(&b, &copied, later, "i2");
    let runs = r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    assert_eq!(
        runs.days
            .iter()
            .map(|d| (d.day.to_string(), d.state))
            .collect::<Vec<_>>(),
        [
            ("2026-11-20".to_string(), "complete"),
            ("2026-11-21".to_string(), "pushing")
        ],
        "reporting continues past the foreign manifest"
    );
    let m = check_manifest(&b, dir);
    assert!(r
        .has_manifest(time::macros::date!(2026 - 11 - 20))
        .await
        .unwrap());
    assert_eq!(
        r.last_complete_day().await.unwrap(),
        Some(time::macros::date!(2026 - 11 - 20))
    );
    for k in &user {
        assert_eq!(
            b.object(k).as_deref(),
            Some(&b"a user's object"[..]),
            "{k} survives"
        );
    }
    // The report's own stale parts are gone: failed_list is its one header-only part.
    let listed: Vec<String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap().to_owned())
        .collect();
    for n in 2..=failed_parts {
        let k = format!("{dir}/failed_list/part-{n:05}.csv");
        assert!(b.object(&k).is_none(), "{k} left behind");
    }
    for k in b.snapshot().keys().filter(|k| k.contains("_list/part-")) {
        assert!(
            listed.contains(k) || user.contains(k) || !k.starts_with(dir),
            "{k}: neither listed nor a user's"
        );
    }
    assert_eq!(
        json(&b, &format!("{dir}/_journal.json"))["parts"]["failed_list"],
        1
    );
}

/// A `_journal.json` that cannot be read (torn, overwritten) is recovered from the part names in
/// the list folders: the parts an earlier run wrote beyond this run's last are still deleted,
/// and the journal is whole again.
#[tokio::test]
async fn an_unreadable_journal_is_recovered_from_the_parts_in_the_folders() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    let failed: Vec<Outcome> = (0..60)
        .map(|i| record(&format!("k{i:03}"), t, OutcomeKind::Failed))
        .collect();
    file(&b, &failed, t, "i1");
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    r.run(datetime!(2026-11-20 12:00 UTC)).await.unwrap();
    let dir = "reports/t1/2026-11-20";
    let parts_of = |b: &MemoryBucket, list: &str| {
        b.snapshot()
            .keys()
            .filter(|k| k.starts_with(&format!("{dir}/{list}/part-")))
            .count()
    };
    let failed_parts = parts_of(&b, "failed_list");
    assert!(failed_parts > 3, "{failed_parts}");
    b.insert(&format!("{dir}/_journal.json"), "{\"parts\": {\"failed_li");
    b.insert(&format!("{dir}/failed_list/notes.csv"), "a user's object");

    // The files are then copied: failed_list shrinks to its header.
    let later = t + Duration::hours(1);
    let copied: Vec<Outcome> = (0..60)
        .map(|i| record(&format!("k{i:03}"), later, OutcomeKind::Copied))
        .collect();
    file(&b, &copied, later, "i2");
    r.run(datetime!(2026-11-20 13:00 UTC)).await.unwrap();
    assert_eq!(
        parts_of(&b, "failed_list"),
        1,
        "the stale parts are deleted"
    );
    assert!(b.object(&format!("{dir}/failed_list/notes.csv")).is_some());
    let journal = json(&b, &format!("{dir}/_journal.json"));
    assert_eq!(journal["parts"]["failed_list"], 1);
    assert_eq!(
        journal["parts"]["total_list"],
        parts_of(&b, "total_list") as u64
    );
}

/// A manifest written by a newer build (a rollback): its day is complete, and this build leaves
/// it as it is.
#[tokio::test]
async fn a_day_a_newer_build_completed_is_left_alone() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    file(&b, &[record("a", t, OutcomeKind::Failed)], t, "i1");
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    let now = datetime!(2026-11-21 01:00 UTC);
    r.run(now).await.unwrap();
    let dir = "reports/t1/2026-11-20";
    let mut m = check_manifest(&b, dir);
    m["format_version"] = (s3_oss_sync::report::build::FORMAT_VERSION + 1).into();
    m["a_newer_field"] = "x".into();
    let raw = serde_json::to_vec_pretty(&m).unwrap();
    b.insert(&format!("{dir}/manifest.checksum"), md5_hex(&raw));
    b.insert(&format!("{dir}/manifest.json"), raw);
    let day = time::macros::date!(2026 - 11 - 20);
    assert!(r.has_manifest(day).await.unwrap());
    assert_eq!(r.last_complete_day().await.unwrap(), Some(day));
    let before = b.snapshot();
    r.run(now).await.unwrap();
    assert_eq!(
        b.snapshot(),
        before,
        "the newer build's day is not rewritten"
    );
}

/// A `manifest.json` the report did not write, on a leading day without records, says nothing of
/// what that day read: a record of that day found later is listed late, not taken as read.
#[tokio::test]
async fn a_foreign_manifest_on_a_day_without_a_report_hides_no_late_record() {
    let b = MemoryBucket::default();
    // The first partition (the 20th, 00:00) can hold records of the 19th: a leading day
    // without records, never reported.
    let t = datetime!(2026-11-20 00:10 UTC);
    file(&b, &[record("a", t, OutcomeKind::Copied)], t, "i1");
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    assert!(b.object("reports/t1/2026-11-19/summary.json").is_none());
    check_manifest(&b, "reports/t1/2026-11-20");
    // A record of the 19th, filed very late; and a manifest for the 19th the report did not
    // write (no checksum, no read_after_end).
    let late = record("b", datetime!(2026-11-19 23:00 UTC), OutcomeKind::Copied);
    file(&b, &[late], datetime!(2026-11-21 05:00 UTC), "i2");
    let foreign =
        serde_json::json!({"format_version": 5, "task": "t1", "day": "2026-11-19", "files": []});
    b.insert(
        "reports/t1/2026-11-19/manifest.json",
        serde_json::to_vec(&foreign).unwrap(),
    );
    r.run(datetime!(2026-11-21 06:00 UTC)).await.unwrap();
    let summary = json(&b, "reports/t1/2026-11-21/summary.json");
    assert_eq!(summary["late_records"], 1);
}
