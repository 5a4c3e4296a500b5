//! The report's objects beside others: the lists' schema and formula neutralising, objects the
//! report did not write, foreign manifests, an unreadable journal, and days a newer build completed.

use super::settings;
use s3_oss_sync::checksum::md5_hex;
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::report::build::Reporter;
use s3_oss_sync::testing::memory::MemoryBucket;
use s3_oss_sync::testing::report::{check_manifest, file, json, record, records, reporter, states};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

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
    reporter(&s, &b)
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

/// Task `t1`'s bucket after 60 files failed at 10:00 on the 20th, reported at 12:00: its
/// failed_list has several parts. Returns when they failed.
async fn sixty_failed(r: &Reporter<'_, MemoryBucket, MemoryBucket>) -> OffsetDateTime {
    let t = datetime!(2026-11-20 10:00 UTC);
    file(r.store, &records(60, t, OutcomeKind::Failed), t, "i1");
    r.run(datetime!(2026-11-20 12:00 UTC)).await.unwrap();
    t
}

/// Objects that are not the report's, in its area (synced there before the sync function kept
/// out of it, or put there by hand): a run deletes none of them, a foreign `manifest.json` on a
/// later day does not stop the reports, and parts an earlier run wrote beyond this run's last
/// are still cleaned up.
#[tokio::test]
async fn objects_the_report_did_not_write_survive_and_a_foreign_manifest_stops_nothing() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let r = reporter(&s, &b);
    let t = sixty_failed(&r).await;
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
    let copied = records(60, later, OutcomeKind::Copied);
    file(&b, &copied, later, "i2");
    let runs = r.run(datetime!(2026-11-21 01:00 UTC)).await.unwrap();
    assert_eq!(
        states(&runs.days),
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
    let s = settings("Z");
    let r = reporter(&s, &b);
    let t = sixty_failed(&r).await;
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
    let copied = records(60, later, OutcomeKind::Copied);
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
    let r = reporter(&s, &b);
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
    let r = reporter(&s, &b);
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
