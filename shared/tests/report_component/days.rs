//! Report days in order: days pushed oldest first then completed, a crash midway, a fixed
//! offset, awkward keys in the CSV, and an empty day after the last complete one.

use super::settings;
use s3_oss_sync::outcome::{Outcome, OutcomeKind};
use s3_oss_sync::testing::memory::MemoryBucket;
use s3_oss_sync::testing::report::{
    check_manifest, counted_states, file, json, record, records, reporter, states,
};
use time::macros::datetime;
use time::Duration;

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
    let r = reporter(&s, &b);
    let runs = r.run(datetime!(2026-11-22 12:00 UTC)).await.unwrap().days;
    let states = counted_states(&runs);
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
    let records = records(200, t, OutcomeKind::Copied);
    file(&b, &records, t, "i1");
    let s = settings("Z");
    let r = reporter(&s, &b);
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
    let r = reporter(&s, &b);
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
    reporter(&s, &b)
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
    let r = reporter(&s, &b);
    r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    check_manifest(&b, "reports/t1/2026-11-20");
    let d22 = datetime!(2026-11-22 10:00 UTC);
    file(&b, &[record("b", d22, OutcomeKind::Copied)], d22, "i2");
    let runs = r.run(datetime!(2026-11-23 01:00 UTC)).await.unwrap().days;
    let days = states(&runs);
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
