//! Report days across time zones and runs: serial days (one day pushing at a time), days of 23
//! and 25 hours in a zone with daylight saving, a change of zone between runs, with every record
//! counted exactly once across the days' `attempts_list` and `late_list`, and paused periods.

use bytes::Bytes;
use s3_oss_sync::outcome::{format_time, Outcome};
use s3_oss_sync::report::build::{ReportError, ReportSettings, Reporter};
use s3_oss_sync::report::day::Zone;
use s3_oss_sync::report::lease::{
    lease_key, new_holder, Clock, Condition, LeaseHolder, LeaseSettings, LeaseStore, LeasedRun,
};
use s3_oss_sync::report::pauses::{PauseWatch, Sighting};
use s3_oss_sync::store::results::{results_key, to_json_lines};
use s3_oss_sync::testing::memory::MemoryBucket;
use serde_json::Value;
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

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

#[tokio::test]
async fn the_next_day_pushes_only_once_the_day_before_is_complete() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    file(
        &b,
        "a",
        datetime!(2026-11-20 10:00 UTC),
        datetime!(2026-11-20 10:00 UTC),
    );
    let edge = datetime!(2026-11-20 23:59:50 UTC);
    file(&b, "b", edge, datetime!(2026-11-21 00:04 UTC));
    file(
        &b,
        "c",
        datetime!(2026-11-21 00:02 UTC),
        datetime!(2026-11-21 00:04 UTC),
    );

    // In the grace window after midnight only the 20th is pushing; the 21st waits.
    let run = r.run(datetime!(2026-11-21 00:10 UTC)).await.unwrap();
    let got: Vec<(String, &str, u64)> = run
        .days
        .iter()
        .map(|d| (d.day.to_string(), d.state, d.records))
        .collect();
    assert_eq!(got, [("2026-11-20".into(), "pushing", 2)]);
    assert!(b.object("reports/t1/2026-11-21/summary.json").is_none());
    assert_serial(&b, datetime!(2026-11-21 00:10 UTC));

    // After the grace: the 20th complete, then the 21st pushing, in that order.
    let run = r.run(datetime!(2026-11-21 00:31 UTC)).await.unwrap();
    let got: Vec<(String, &str, u64)> = run
        .days
        .iter()
        .map(|d| (d.day.to_string(), d.state, d.records))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-20".into(), "complete", 2),
            ("2026-11-21".into(), "pushing", 1)
        ]
    );
    let journal = b.journal();
    let pos = |k: &str| journal.iter().position(|j| j == k).unwrap();
    assert!(
        pos("reports/t1/2026-11-20/manifest.json") < pos("reports/t1/2026-11-21/summary.json"),
        "the 21st's first write follows the 20th's manifest"
    );

    // Days behind: completed one after another within the run, the last one pushing.
    let run = r.run(datetime!(2026-11-24 00:20 UTC)).await.unwrap();
    let got: Vec<(String, &str)> = run
        .days
        .iter()
        .map(|d| (d.day.to_string(), d.state))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-21".into(), "complete"),
            ("2026-11-22".into(), "complete"),
            ("2026-11-23".into(), "pushing"),
        ]
    );
    assert_serial(&b, datetime!(2026-11-24 00:20 UTC));
}

#[tokio::test]
async fn a_leading_day_without_records_holds_back_the_next_until_it_is_complete() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    // The first partition (00:00 on the 21st) can hold records of the 20th until 00:30.
    file(
        &b,
        "a",
        datetime!(2026-11-21 00:05 UTC),
        datetime!(2026-11-21 00:05 UTC),
    );
    let run = r.run(datetime!(2026-11-21 00:10 UTC)).await.unwrap();
    assert!(run.days.is_empty());
    let why = run.nothing_to_do.unwrap();
    assert!(
        why.contains("2026-11-20")
            && why.contains("2026-11-21T00:30:00.000Z")
            && why.contains("wait"),
        "{why}"
    );
    // A record of the 20th filed within its grace goes to the 20th, never to a second day.
    file(
        &b,
        "b",
        datetime!(2026-11-20 23:59 UTC),
        datetime!(2026-11-21 00:12 UTC),
    );
    let run = r.run(datetime!(2026-11-21 00:31 UTC)).await.unwrap();
    let got: Vec<(String, &str, u64)> = run
        .days
        .iter()
        .map(|d| (d.day.to_string(), d.state, d.records))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-11-20".into(), "complete", 1),
            ("2026-11-21".into(), "pushing", 1)
        ]
    );
}

#[tokio::test]
async fn a_day_with_a_daylight_saving_change_is_23_or_25_hours() {
    let b = MemoryBucket::default();
    let s = settings("America/New_York");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    // A record every hour at :17 from 2026-10-31 00:00 to 2026-11-04 00:00 UTC.
    let start = datetime!(2026-10-31 00:17 UTC);
    for h in 0..96 {
        let at = start + Duration::hours(h);
        file(&b, &format!("r{h:03}"), at, at + Duration::minutes(1));
    }
    r.run(datetime!(2026-11-05 00:00 UTC)).await.unwrap();
    let nov1 = json(&b, "reports/t1/2026-11-01/manifest.json");
    assert_eq!(nov1["time_zone"], "America/New_York");
    assert_eq!(
        nov1["utc_offset"], "-04:00",
        "the offset at the day's start"
    );
    assert_eq!(nov1["window"]["start"], "2026-11-01T04:00:00.000Z");
    assert_eq!(nov1["window"]["end"], "2026-11-02T05:00:00.000Z");
    assert_eq!(nov1["records"], 25, "25 hours, one record each");
    assert!(nov1["zone_changed_from"].is_null());
    let nov2 = json(&b, "reports/t1/2026-11-02/manifest.json");
    assert_eq!(
        (nov2["utc_offset"].as_str(), nov2["records"].as_u64()),
        (Some("-05:00"), Some(24))
    );

    // And the 23-hour day in March.
    let b = MemoryBucket::default();
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    let start = datetime!(2026-03-07 00:17 UTC);
    for h in 0..72 {
        let at = start + Duration::hours(h);
        file(&b, &format!("r{h:03}"), at, at + Duration::minutes(1));
    }
    r.run(datetime!(2026-03-11 00:00 UTC)).await.unwrap();
    let mar8 = json(&b, "reports/t1/2026-03-08/manifest.json");
    assert_eq!(mar8["records"], 23);
    assert_eq!(mar8["utc_offset"], "-05:00");
}

/// Records every hour from 2026-10-29 to 2026-11-04 (UTC), a few of them filed hours late, and a
/// report run every hour at :45 (records filed only when their time has come), in `old` until
/// two hours after the 31st ends there, then in `new`. Every record is counted exactly once in a
/// complete day's `attempts_list` or `late_list`; at no time are two days pushing.
async fn every_record_once_across_a_change(old: &str, new: &str) {
    let b = MemoryBucket::default();
    let before = settings(old);
    let after = settings(new);
    let first = datetime!(2026-10-29 00:17 UTC);
    let hours = 6 * 24;
    // (key, processed, filed)
    let records: Vec<(String, OffsetDateTime, OffsetDateTime)> = (0..hours)
        .map(|h| {
            let at = first + Duration::hours(h);
            // Every seventh record is filed three hours late: after its day completed, when it
            // is in the last hours of a day.
            let delay = if h % 7 == 0 { 180 } else { 5 };
            (format!("r{h:03}"), at, at + Duration::minutes(delay))
        })
        .collect();
    let change_at = Zone::parse(old)
        .unwrap()
        .window(time::macros::date!(2026 - 10 - 31))
        .1
        + Duration::hours(2);
    let mut filed = vec![false; records.len()];
    let mut now = datetime!(2026-10-29 00:45 UTC);
    let end = datetime!(2026-11-08 00:45 UTC);
    let mut changed_days = Vec::new();
    while now <= end {
        for ((key, at, when), done) in records.iter().zip(filed.iter_mut()) {
            if !*done && *when <= now {
                file(&b, key, *at, *when);
                *done = true;
            }
        }
        let s = if now < change_at { &before } else { &after };
        let run = Reporter {
            settings: s,
            results: &b,
            store: &b,
        }
        .run(now)
        .await
        .unwrap_or_else(|e| panic!("{old} -> {new} as of {now}: {e}"));
        assert_serial(&b, now);
        for d in &run.days {
            let summary = json(&b, &format!("reports/t1/{}/summary.json", d.day));
            if !summary["zone_changed_from"].is_null() {
                changed_days.push((d.day.to_string(), summary["zone_changed_from"].clone()));
            }
        }
        now += Duration::hours(1);
    }
    assert!(filed.iter().all(|f| *f));
    changed_days.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(
        changed_days,
        [(
            "2026-11-01".to_owned(),
            Value::from(Zone::parse(old).unwrap().name())
        )],
        "{old} -> {new}"
    );

    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut late = 0;
    let mut last_end: Option<String> = None;
    for (day, (summary, manifest)) in days(&b) {
        let Some(m) = manifest else {
            // Today, long after the last record.
            assert_eq!(
                (
                    summary["records"].as_u64(),
                    summary["late_records"].as_u64()
                ),
                (Some(0), Some(0)),
                "{day}"
            );
            assert!(
                day.as_str() > "2026-11-06",
                "{old} -> {new}: {day} is not complete"
            );
            continue;
        };
        assert_eq!(summary["state"], "complete");
        let zone = if day.as_str() <= "2026-10-31" {
            old
        } else {
            new
        };
        assert_eq!(m["time_zone"], Zone::parse(zone).unwrap().name(), "{day}");
        // Windows follow one another without gap or overlap.
        if let Some(prev) = &last_end {
            assert_eq!(
                m["window"]["start"].as_str(),
                Some(prev.as_str()),
                "{old} -> {new}: {day}"
            );
        }
        last_end = m["window"]["end"].as_str().map(str::to_owned);
        let dir = format!("reports/t1/{day}");
        for k in keys_in(&b, &dir, "attempts_list") {
            seen.entry(k).or_default().push(day.clone());
        }
        for k in keys_in(&b, &dir, "late_list") {
            late += 1;
            seen.entry(k).or_default().push(format!("{day} late"));
        }
    }
    for (key, _, _) in &records {
        let found = seen.get(key).map(Vec::len).unwrap_or(0);
        assert_eq!(found, 1, "{old} -> {new}: {key} in {:?}", seen.get(key));
    }
    assert_eq!(seen.len(), records.len(), "{old} -> {new}: no other keys");
    assert!(late > 0, "{old} -> {new}: some records were late");
}

#[tokio::test]
async fn a_change_east_counts_every_record_once() {
    every_record_once_across_a_change("+00:00", "+08:00").await;
}

#[tokio::test]
async fn a_change_into_a_daylight_saving_zone_on_its_change_counts_every_record_once() {
    // New York leaves daylight saving on 2026-11-01, the first day in the new zone.
    every_record_once_across_a_change("+00:00", "America/New_York").await;
    every_record_once_across_a_change("Asia/Shanghai", "America/New_York").await;
}

#[tokio::test]
async fn changes_across_the_date_line_count_every_record_once() {
    // West to east by 26 hours: the first day in the new zone is empty, the next one short.
    every_record_once_across_a_change("-12:00", "+14:00").await;
    every_record_once_across_a_change("+14:00", "-12:00").await;
    every_record_once_across_a_change("America/New_York", "+00:00").await;
}

/// Rewrites a manifest as a report of another build or format would have left it, with its
/// checksum (a manifest whose checksum does not match is not taken for the report's own).
fn rewrite_manifest(b: &MemoryBucket, key: &str, m: &Value) {
    use md5::{Digest, Md5};
    let body = serde_json::to_vec_pretty(m).unwrap();
    let checksum = hex::encode(Md5::digest(&body));
    b.insert(&key.replace("manifest.json", "manifest.checksum"), checksum);
    b.insert(key, body);
}

#[tokio::test]
async fn a_manifest_naming_an_unknown_zone_stops_the_run_with_what_to_do() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    file(&b, "a", t, t);
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    let key = "reports/t1/2026-11-20/manifest.json";
    let mut m = json(&b, key);
    m["time_zone"] = "Mars/Olympus".into();
    rewrite_manifest(&b, key, &m);
    let e = r.run(datetime!(2026-11-22 01:00 UTC)).await.unwrap_err();
    assert!(matches!(e, ReportError::Zone(_)), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("Mars/Olympus") && e.contains("REPORT_TIME_ZONE"),
        "{e}"
    );
}

/// Answers every look with the state set last, or the error.
struct FakeWatch(std::sync::Mutex<Result<Sighting, String>>);

impl FakeWatch {
    fn set(&self, state: &str, changed_at: Option<OffsetDateTime>) {
        *self.0.lock().unwrap() = Ok(Sighting {
            at: OffsetDateTime::UNIX_EPOCH,
            state: state.into(),
            changed_at,
            waiting: Some(40),
        });
    }
}

impl PauseWatch for FakeWatch {
    async fn look(&self, at: OffsetDateTime) -> Result<Sighting, String> {
        let mut s = self.0.lock().unwrap().clone()?;
        s.at = at;
        Ok(s)
    }
}

#[tokio::test]
async fn a_paused_day_is_told_from_an_empty_one() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let r = Reporter {
        settings: &s,
        results: &b,
        store: &b,
    };
    let watch = FakeWatch(std::sync::Mutex::new(Err("not yet".into())));
    let t = datetime!(2026-11-20 02:00 UTC);
    file(&b, "a", t, t);
    // A look that fails does not stop the run.
    let t3 = datetime!(2026-11-20 03:00 UTC);
    let run = r.run_watching(t3, t3, &watch).await.unwrap();
    assert_eq!(run.days.len(), 1);
    assert!(b.object("reports/t1/paused.json").is_none());
    watch.set("Enabled", Some(datetime!(2026-11-01 00:00 UTC)));
    let t4 = datetime!(2026-11-20 04:00 UTC);
    r.run_watching(t4, t4, &watch).await.unwrap();
    assert!(
        b.object("reports/t1/paused.json").is_none(),
        "nothing to note"
    );

    // `ctl pause` at 09:20; seen at 10:00; still paused when the 20th completes; resumed at
    // 03:10 on the 21st, seen at 04:00.
    let off = datetime!(2026-11-20 09:20 UTC);
    let on = datetime!(2026-11-21 03:10 UTC);
    let mut now = datetime!(2026-11-20 10:00 UTC);
    while now <= datetime!(2026-11-23 01:00 UTC) {
        if now >= datetime!(2026-11-21 04:00 UTC) {
            watch.set("Enabled", Some(on));
        } else {
            watch.set("Disabled", Some(off));
        }
        if now == datetime!(2026-11-21 06:00 UTC) {
            file(&b, "b", now, now);
        }
        r.run_watching(now, now, &watch).await.unwrap();
        now += Duration::hours(1);
    }
    let periods =
        |day: &str| json(&b, &format!("reports/t1/{day}/manifest.json"))["paused_periods"].clone();
    let p20 = periods("2026-11-20");
    assert_eq!(p20.as_array().unwrap().len(), 1);
    assert_eq!(p20[0]["from"], "2026-11-20T09:20:00.000Z");
    assert!(
        p20[0]["to"].is_null(),
        "still paused when the 20th completed"
    );
    assert!(
        p20[0]["reason"].as_str().unwrap().contains("Disabled"),
        "{p20}"
    );
    let p21 = periods("2026-11-21");
    assert_eq!(p21[0]["to"], "2026-11-21T03:10:00.000Z");
    // The 22nd: no records and not paused, an empty day.
    let m22 = json(&b, "reports/t1/2026-11-22/manifest.json");
    assert_eq!(m22["records"], 0);
    assert_eq!(m22["paused_periods"], serde_json::json!([]));
    let journal = json(&b, "reports/t1/paused.json");
    assert_eq!(journal["periods"].as_array().unwrap().len(), 1);
    // A plain run (no watch) shows the periods noted so far.
    let b2 = MemoryBucket::default();
    b2.insert(
        "reports/t1/paused.json",
        b.object("reports/t1/paused.json").unwrap(),
    );
    file(
        &b2,
        "c",
        datetime!(2026-11-21 01:00 UTC),
        datetime!(2026-11-21 01:00 UTC),
    );
    Reporter {
        settings: &s,
        results: &b2,
        store: &b2,
    }
    .run(datetime!(2026-11-21 05:00 UTC))
    .await
    .unwrap();
    let shown = json(&b2, "reports/t1/2026-11-21/summary.json")["paused_periods"].clone();
    assert_eq!(shown[0]["to"], "2026-11-21T03:10:00.000Z", "{shown}");
}

#[tokio::test]
async fn a_change_after_a_format_4_manifest_starts_where_its_offset_says_the_day_ended() {
    let b = MemoryBucket::default();
    let utc = settings("+00:00");
    let t = datetime!(2026-11-20 20:00 UTC);
    file(&b, "a", t, t);
    Reporter {
        settings: &utc,
        results: &b,
        store: &b,
    }
    .run(datetime!(2026-11-21 00:40 UTC))
    .await
    .unwrap();
    // As a format 4 report left it: only `utc_offset`.
    let key = "reports/t1/2026-11-20/manifest.json";
    let mut m = json(&b, key);
    for field in ["time_zone", "window", "zone_changed_from", "paused_periods"] {
        m.as_object_mut().unwrap().remove(field);
    }
    m["format_version"] = 4.into();
    rewrite_manifest(&b, key, &m);
    // Records at 20:30 on the 20th (filed late) and at 02:00 on the 21st, UTC.
    file(
        &b,
        "late",
        datetime!(2026-11-20 20:30 UTC),
        datetime!(2026-11-21 01:00 UTC),
    );
    file(
        &b,
        "b",
        datetime!(2026-11-21 02:00 UTC),
        datetime!(2026-11-21 02:00 UTC),
    );
    let shanghai = settings("Asia/Shanghai");
    let run = Reporter {
        settings: &shanghai,
        results: &b,
        store: &b,
    }
    .run(datetime!(2026-11-21 17:00 UTC))
    .await
    .unwrap();
    assert_eq!(run.days[0].day.to_string(), "2026-11-21");
    let m21 = json(&b, "reports/t1/2026-11-21/manifest.json");
    assert_eq!(m21["zone_changed_from"], "+00:00");
    assert_eq!(m21["time_zone"], "Asia/Shanghai");
    assert_eq!(m21["window"]["start"], "2026-11-21T00:00:00.000Z");
    assert_eq!(m21["window"]["end"], "2026-11-21T16:00:00.000Z");
    assert_eq!(
        (m21["records"].as_u64(), m21["late_records"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(keys_in(&b, "reports/t1/2026-11-21", "late_list"), ["late"]);
}

/// The lease, in memory, with S3's conditional writes.
#[derive(Default)]
struct LeaseObject(std::sync::Mutex<Option<(Bytes, String)>>);

impl LeaseStore for LeaseObject {
    async fn read_lease(&self, _key: &str) -> Result<Option<(Bytes, String)>, ReportError> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn put_lease(
        &self,
        _key: &str,
        body: Bytes,
        condition: &Condition,
    ) -> Result<Option<String>, ReportError> {
        let mut lease = self.0.lock().unwrap();
        let ok = match (condition, lease.as_ref()) {
            (Condition::Absent, None) => true,
            (Condition::Unchanged(e), Some((_, etag))) => e == etag,
            _ => false,
        };
        if !ok {
            return Ok(None);
        }
        let etag = format!("\"{}\"", md5_hex(&body));
        *lease = Some((body, etag.clone()));
        Ok(Some(etag))
    }
    async fn delete_lease(&self, _key: &str) -> Result<(), ReportError> {
        *self.0.lock().unwrap() = None;
        Ok(())
    }
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

/// A clock set by the test: the real clock of the run.
struct SetClock(std::sync::Mutex<OffsetDateTime>);

impl Clock for SetClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn paused_periods_are_dated_by_the_real_clock_never_by_the_runs_as_of_instant() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let leases = LeaseObject::default();
    let lease = LeaseSettings {
        key: lease_key("results", "t1"),
        duration: Duration::minutes(30),
        margin: Duration::minutes(5),
    };
    let clock = SetClock(std::sync::Mutex::new(datetime!(2026-11-20 10:00 UTC)));
    let watch = FakeWatch(std::sync::Mutex::new(Err("not yet".into())));
    // Local runs "as of" a day long before, and one long after, the real clock.
    let run = |as_of: OffsetDateTime| {
        let holder = LeaseHolder {
            store: &leases,
            settings: &lease,
            clock: &clock,
            holder: new_holder(),
            deadline: None,
        };
        let (s, b, watch) = (&s, &b, &watch);
        async move {
            match holder.run_watching(s, b, b, as_of, Some(watch)).await {
                Ok(LeasedRun::Ran(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    };
    let journal = || json(&b, "reports/t1/paused.json")["periods"].clone();
    let at = |v: &Value| OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap();

    // Paused at 09:20 (the mapping's LastModified), seen at 10:00 by a run as of 1 November: the
    // period begins at 09:20, not on 1 November.
    let off = datetime!(2026-11-20 09:20 UTC);
    watch.set("Disabled", Some(off));
    run(datetime!(2026-11-01 00:00 UTC)).await;
    let p = journal();
    assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    assert_eq!(at(&p[0]["from"]), off, "{p}");
    assert!(p[0]["to"].is_null(), "{p}");
    // Resumed (the mapping does not say when), seen at 04:00 the next day by a run as of 1
    // November again: the period ends at the sighting on the real clock, after it began.
    *clock.0.lock().unwrap() = datetime!(2026-11-21 04:00 UTC);
    watch.set("Enabled", None);
    run(datetime!(2026-11-01 00:00 UTC)).await;
    let p = journal();
    assert_eq!(at(&p[0]["to"]), datetime!(2026-11-21 04:00 UTC), "{p}");

    // Paused again (the mapping does not say when), seen at 06:00 by a run as of next year,
    // then resumed at 07:30 (LastModified), seen at 08:00 by a run as of 1 November.
    *clock.0.lock().unwrap() = datetime!(2026-11-21 06:00 UTC);
    watch.set("Disabled", None);
    run(datetime!(2027-06-01 00:00 UTC)).await;
    *clock.0.lock().unwrap() = datetime!(2026-11-21 08:00 UTC);
    watch.set("Enabled", Some(datetime!(2026-11-21 07:30 UTC)));
    run(datetime!(2026-11-01 00:00 UTC)).await;
    let p = journal();
    assert_eq!(p.as_array().unwrap().len(), 2, "{p}");
    assert_eq!(at(&p[1]["from"]), datetime!(2026-11-21 06:00 UTC), "{p}");
    assert_eq!(at(&p[1]["to"]), datetime!(2026-11-21 07:30 UTC), "{p}");
    for period in p.as_array().unwrap() {
        assert!(at(&period["to"]) >= at(&period["from"]), "{period}");
    }
}
