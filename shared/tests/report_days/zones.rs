//! A change of zone between runs: every record counted once across it, a manifest naming an
//! unknown zone, and a change after a format 4 manifest.

use super::{assert_serial, file, settings};
use s3_oss_sync::report::build::ReportError;
use s3_oss_sync::report::day::Zone;
use s3_oss_sync::testing::memory::MemoryBucket;
use s3_oss_sync::testing::report::{days, json, keys_in, reporter};
use serde_json::Value;
use std::collections::BTreeMap;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

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
        let run = reporter(s, &b)
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
    let body = serde_json::to_vec_pretty(m).unwrap();
    let checksum = s3_oss_sync::checksum::md5_hex(&body);
    b.insert(&key.replace("manifest.json", "manifest.checksum"), checksum);
    b.insert(key, body);
}

#[tokio::test]
async fn a_manifest_naming_an_unknown_zone_stops_the_run_with_what_to_do() {
    let b = MemoryBucket::default();
    let t = datetime!(2026-11-20 10:00 UTC);
    file(&b, "a", t, t);
    let s = settings("Z");
    let r = reporter(&s, &b);
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

#[tokio::test]
async fn a_change_after_a_format_4_manifest_starts_where_its_offset_says_the_day_ended() {
    let b = MemoryBucket::default();
    let utc = settings("+00:00");
    let t = datetime!(2026-11-20 20:00 UTC);
    file(&b, "a", t, t);
    reporter(&utc, &b)
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
    let run = reporter(&shanghai, &b)
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
