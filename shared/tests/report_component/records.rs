//! How records are counted and listed: a wrong secret then the right one, records filed late,
//! unreadable times, a stray folder under the results prefix, and a run with nothing to report.

use super::settings;
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::testing::memory::MemoryBucket;
use s3_oss_sync::testing::report::{
    check_manifest, file, json, list_rows, record, reporter, states,
};
use time::macros::datetime;
use time::Duration;

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
    let r = reporter(&s, &b);
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
    let r = reporter(&s, &b);
    // The 20th: a record, and one processed just before midnight and filed just after.
    let d20 = datetime!(2026-11-20 10:00 UTC);
    file(&b, &[record("a", d20, OutcomeKind::Copied)], d20, "i1");
    let edge = datetime!(2026-11-20 23:59:58 UTC);
    let filed = edge + Duration::seconds(5);
    file(&b, &[record("b", edge, OutcomeKind::Copied)], filed, "i2");
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
    reporter(&s, &b)
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
    let r = reporter(&s, &b);
    let run = r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    let days = states(&run.days);
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
    let r = reporter(&s, &b);
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
    let early = reporter(&s, &empty);
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
