//! Serial days: the next day pushes only once the day before is complete, a leading day
//! without records, and days of 23 or 25 hours.

use super::{assert_serial, file, settings};
use s3_oss_sync::testing::memory::MemoryBucket;
use s3_oss_sync::testing::report::{counted_states, json, reporter, states};
use time::macros::datetime;
use time::Duration;

#[tokio::test]
async fn the_next_day_pushes_only_once_the_day_before_is_complete() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let r = reporter(&s, &b);
    let t = datetime!(2026-11-20 10:00 UTC);
    file(&b, "a", t, t);
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
    let got = counted_states(&run.days);
    assert_eq!(got, [("2026-11-20".into(), "pushing", 2)]);
    assert!(b.object("reports/t1/2026-11-21/summary.json").is_none());
    assert_serial(&b, datetime!(2026-11-21 00:10 UTC));

    // After the grace: the 20th complete, then the 21st pushing, in that order.
    let run = r.run(datetime!(2026-11-21 00:31 UTC)).await.unwrap();
    let got = counted_states(&run.days);
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
    let got = states(&run.days);
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
    let r = reporter(&s, &b);
    // The first partition (00:00 on the 21st) can hold records of the 20th until 00:30.
    let t = datetime!(2026-11-21 00:05 UTC);
    file(&b, "a", t, t);
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
    let got = counted_states(&run.days);
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
    let r = reporter(&s, &b);
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
    let r = reporter(&s, &b);
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
