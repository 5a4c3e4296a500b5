//! Retry of failed keys: a day's `failed_list` from the report (the files whose state for the day
//! is failed), turned back into events for the task queue, one per key, so the same sync
//! function converges each key again.

use super::events::{event_body, SentEvent, RETRY_DELETE_EVENT, RETRY_EVENT};
use super::ControlError;
use crate::event::{kind_of, EventKind};
use crate::report::build::{part_key, RecordSource, ReportError, ReportStore, Reporter};
use crate::report::day::format_day;
use crate::report::rows::cell_value;
use serde_json::Value;
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime};

/// A key to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryKey {
    /// The source key.
    pub key: String,
    /// Whether the failure was of a delete event (retried as a delete, which copies the object
    /// instead if it exists again).
    pub delete: bool,
}

/// What a day's failed list holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailedList {
    /// Keys to retry, in key order, each once.
    pub keys: Vec<RetryKey>,
    /// Failed files read (`failed`, or `deferred` on the last delivery).
    pub failed_files: u64,
    /// `invalid` files: messages that could not be understood. They are not retried from here:
    /// their messages are in the DLQ (fix the sender, then `ctl redrive`).
    pub invalid_files: u64,
    /// Failed files for another bucket or without a key (none are expected).
    pub unusable_files: u64,
}

/// Reads `failed_list` CSV parts (RFC 4180, header row in each part) into the keys to retry,
/// each once. Columns are found by name, so every format's parts read. A part of format 2 on
/// has a row per file with its `state`; a part of format 1 (a day reported before) has a row per
/// failed record with its `outcome`, and a key that failed several times is retried as its
/// newest failure's kind (rows are in key order, then time). From format 4 a cell may carry the
/// leading `'` that keeps a spreadsheet from evaluating it; it is dropped ([`cell_value`]).
pub fn parse_failed_parts(parts: &[Vec<u8>], bucket: &str) -> Result<FailedList, ControlError> {
    let mut out = FailedList::default();
    let mut keys: BTreeMap<String, bool> = BTreeMap::new();
    for (n, part) in parts.iter().enumerate() {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(part.as_slice());
        let header = reader
            .headers()
            .map_err(|e| ControlError::Input(format!("failed_list part {}: {e}", n + 1)))?
            .clone();
        let col = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                ControlError::Input(format!("failed_list part {} has no {name:?} column", n + 1))
            })
        };
        let (c_key, c_bucket, c_event, c_state) = (
            col("source_key")?,
            col("bucket")?,
            col("event_name")?,
            col("state").or_else(|_| col("outcome"))?,
        );
        for row in reader.records() {
            let row =
                row.map_err(|e| ControlError::Input(format!("failed_list part {}: {e}", n + 1)))?;
            let field = |i: usize| cell_value(row.get(i).unwrap_or_default());
            match field(c_state) {
                "failed" | "deferred" => {}
                "invalid" => {
                    out.invalid_files += 1;
                    continue;
                }
                _ => continue,
            }
            let key = crate::event::decode_form_key(field(c_key)).unwrap_or_default();
            if key.is_empty() || field(c_bucket) != bucket {
                out.unusable_files += 1;
                continue;
            }
            if !keys.contains_key(&key) {
                out.failed_files += 1;
            }
            let name = field(c_event);
            let delete = kind_of(name) == EventKind::Removed || name == "Object Deleted";
            keys.insert(key, delete);
        }
    }
    out.keys = keys
        .into_iter()
        .map(|(key, delete)| RetryKey { key, delete })
        .collect();
    Ok(out)
}

/// The keys of a day's `failed_list` parts as the report lists them: from the day's
/// `manifest.json` `files` when the day is complete (a manifest the report wrote,
/// [`Reporter::own_manifest`]), else from `summary.json`'s `lists.failed_list.keys`, or, in a
/// summary written before that field, `part-NNNNN.csv` up to its `lists.failed_list.parts`. Only
/// keys directly in the day's `failed_list/` folder are taken. Nothing else in the folder is read:
/// not a part an earlier, longer report left there, nor an object synced into it. A day without
/// a report is an error that says so.
pub async fn failed_part_keys<R: RecordSource, S: ReportStore>(
    reporter: &Reporter<'_, R, S>,
    day: Date,
) -> Result<Vec<String>, ControlError> {
    let map = |e: ReportError| ControlError::oss(e);
    let dir = reporter.day_dir(day);
    let folder = format!("{dir}/failed_list/");
    // Keys directly in the folder, in the order listed.
    let in_folder = |keys: &mut dyn Iterator<Item = &str>| -> Vec<String> {
        keys.filter(|k| {
            k.strip_prefix(&folder)
                .is_some_and(|name| !name.is_empty() && !name.contains('/'))
        })
        .map(str::to_owned)
        .collect()
    };
    let store = reporter.store;
    if let Some(manifest) = reporter.own_manifest(day).await.map_err(map)? {
        let files = manifest["files"].as_array().into_iter().flatten();
        return Ok(in_folder(&mut files.filter_map(|f| f["key"].as_str())));
    }
    let key = format!("{dir}/summary.json");
    if !store.exists(&key).await.map_err(map)? {
        return Err(ControlError::Input(format!(
            "no report at {dir}/ (the report function has not reported that day yet)"
        )));
    }
    let summary: Value =
        serde_json::from_slice(&store.get(&key).await.map_err(map)?).map_err(|e| {
            ControlError::Input(format!(
                "{key} is not JSON ({e}); the next report run rewrites it, then try again"
            ))
        })?;
    let task = &reporter.settings.task;
    if summary["task"].as_str() != Some(task) || summary["day"].as_str() != Some(&format_day(day)) {
        return Err(ControlError::Input(format!(
            "{key} is not a summary the report wrote for task {task} and {} (its task {}, day {}); the next report run rewrites it, then try again",
            format_day(day),
            summary["task"],
            summary["day"]
        )));
    }
    let list = &summary["lists"]["failed_list"];
    if let Some(keys) = list["keys"].as_array() {
        return Ok(in_folder(&mut keys.iter().filter_map(Value::as_str)));
    }
    match list["parts"].as_u64() {
        Some(n) => Ok((1..=n)
            .filter_map(|n| u32::try_from(n).ok())
            .map(|n| part_key(folder.trim_end_matches('/'), n))
            .collect()),
        None => Err(ControlError::Input(format!(
            "{key} has no lists.failed_list (neither keys nor parts); the next report run rewrites it, then try again"
        ))),
    }
}

/// Reads a day's `failed_list` parts, the ones the report lists ([`failed_part_keys`]), into
/// the keys to retry. A listed part that is missing is an error: the report is being rewritten
/// (try again after the run), or something deleted it.
pub async fn read_failed_list<R: RecordSource, S: ReportStore>(
    reporter: &Reporter<'_, R, S>,
    day: Date,
    bucket: &str,
) -> Result<FailedList, ControlError> {
    let keys = failed_part_keys(reporter, day).await?;
    let mut parts = Vec::with_capacity(keys.len());
    for k in &keys {
        let exists = reporter.store.exists(k).await.map_err(ControlError::oss)?;
        if !exists {
            return Err(ControlError::Input(format!(
                "{k} is listed in the day's report but missing; if a report run is writing the day, try again after it"
            )));
        }
        let body = reporter.store.get(k).await;
        parts.push(body.map_err(ControlError::oss)?.to_vec());
    }
    parse_failed_parts(&parts, bucket)
}

/// The message bodies that retry the keys.
pub fn retry_bodies(keys: &[RetryKey], bucket: &str, now: OffsetDateTime) -> Vec<String> {
    keys.iter()
        .map(|k| {
            event_body(
                &SentEvent {
                    name: if k.delete {
                        RETRY_DELETE_EVENT
                    } else {
                        RETRY_EVENT
                    },
                    bucket,
                    key: &k.key,
                    size: None,
                    etag: None,
                },
                now,
            )
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::rows::{csv_row, FILE_HEADER};

    /// A row of `header` with the given columns set.
    fn row(header: &[&str], set: &[(&str, &str)]) -> Vec<u8> {
        let mut f: Vec<String> = vec![String::new(); header.len()];
        for (name, v) in set {
            f[header.iter().position(|h| h == name).unwrap()] = (*v).into();
        }
        f[header.iter().position(|h| *h == "error_message").unwrap()] =
            "a message, with \"quotes\"\nand a line break".into();
        csv_row(&f)
    }

    fn file(key: &str, bucket: &str, event: &str, state: &str) -> Vec<u8> {
        let key = crate::report::rows::encode_key(key);
        row(
            &FILE_HEADER,
            &[
                ("source_key", &key),
                ("bucket", bucket),
                ("event_name", event),
                ("state", state),
            ],
        )
    }

    #[test]
    fn failed_files_become_one_retry_per_key() {
        let mut p1 = csv_row(&FILE_HEADER);
        p1.extend(file("a b+c/ü", "src", "ObjectCreated:Put", "failed"));
        p1.extend(file("", "src", "", "invalid"));
        let mut p2 = csv_row(&FILE_HEADER);
        p2.extend(file("gone", "src", "ObjectRemoved:Delete", "failed"));
        p2.extend(file("late", "src", "ObjectCreated:Put", "deferred"));
        p2.extend(file("other", "elsewhere", "ObjectCreated:Put", "failed"));
        let list = parse_failed_parts(&[p1, p2], "src").unwrap();
        let want = |key: &str, delete| RetryKey {
            key: key.into(),
            delete,
        };
        assert_eq!(
            list.keys,
            vec![
                want("a b+c/ü", false),
                want("gone", true),
                want("late", false)
            ]
        );
        assert_eq!(
            (list.failed_files, list.invalid_files, list.unusable_files),
            (3, 1, 1)
        );
        let bodies = retry_bodies(&list.keys, "src", OffsetDateTime::UNIX_EPOCH);
        let crate::event::Message::Events(e) = crate::event::parse_message(&bodies[0]).unwrap()
        else {
            panic!()
        };
        assert_eq!(e[0].as_ref().unwrap().key, "a b+c/ü");
        assert!(bodies[1].contains(RETRY_DELETE_EVENT));
    }

    #[test]
    fn a_day_reported_in_format_1_still_retries_each_failed_key_once() {
        // Format 1: a row per failed record, with `outcome`.
        let header = [
            "source_key",
            "dest_key",
            "bucket",
            "event_name",
            "outcome",
            "error_message",
        ];
        let rec = |key: &str, event: &str, outcome: &str| {
            row(
                &header,
                &[
                    ("source_key", key),
                    ("bucket", "src"),
                    ("event_name", event),
                    ("outcome", outcome),
                ],
            )
        };
        let mut p = csv_row(&header);
        p.extend(rec("k", "ObjectCreated:Put", "failed"));
        p.extend(rec("k", "ObjectRemoved:Delete", "failed"));
        p.extend(rec("", "", "invalid"));
        let list = parse_failed_parts(&[p], "src").unwrap();
        assert_eq!(
            list.keys,
            vec![RetryKey {
                key: "k".into(),
                delete: true
            }]
        );
        assert_eq!((list.failed_files, list.invalid_files), (1, 1));
    }

    #[test]
    fn rows_as_the_report_writes_them_read_back_with_their_marks_dropped() {
        use crate::report::files::{file_id, FileFolder};
        use crate::report::rows::file_fields;
        let mut part = csv_row(&FILE_HEADER);
        let mut folder = FileFolder::default();
        let mut days = Vec::new();
        for (key, event) in [
            ("-dash", "ObjectCreated:Put"),
            ("=1+2", "ObjectRemoved:Delete"),
            ("@at 'q'", "ObjectCreated:Put"),
        ] {
            let o: crate::outcome::Outcome = serde_json::from_value(serde_json::json!({
                "task": "t", "processed_at": "2026-11-25T10:00:00.000Z", "source_key": key,
                "dest_key": format!("m/{key}"), "bucket": "src", "event_name": event,
                "outcome": "failed", "bytes_moved": 0, "attempts": 1, "duration_ms": 1,
                "message_id": "m", "error_code": "-Odd", "error_message": "=HYPERLINK(\"x\")",
                "crc64": 7,
            }))
            .unwrap();
            days.extend(folder.push(&file_id(&o), o));
        }
        days.extend(folder.finish());
        for d in &days {
            part.extend(csv_row(&file_fields(d)));
        }
        assert!(String::from_utf8_lossy(&part).contains("'=HYPERLINK"));
        let list = parse_failed_parts(&[part], "src").unwrap();
        let keys: Vec<(&str, bool)> = list
            .keys
            .iter()
            .map(|k| (k.key.as_str(), k.delete))
            .collect();
        assert_eq!(keys, [("-dash", false), ("=1+2", true), ("@at 'q'", false)]);
    }

    #[test]
    fn a_day_reported_in_format_3_still_reads() {
        // Format 3: the first 19 columns of today's file lists, no marks.
        let header = &FILE_HEADER[..19];
        let mut p = csv_row(header);
        p.extend(row(
            header,
            &[
                ("source_key", "a%20b"),
                ("bucket", "src"),
                ("event_name", "ObjectCreated:Put"),
                ("state", "failed"),
                ("dest_crc64", "18446744073709551614"),
            ],
        ));
        let list = parse_failed_parts(&[p], "src").unwrap();
        assert_eq!(
            list.keys,
            vec![RetryKey {
                key: "a b".into(),
                delete: false
            }]
        );
    }

    /// A day reported with `failed` keys `k000`..`k029` (several `failed_list` parts), as of
    /// `now`, then a part beyond the report's last and foreign objects put in the folder.
    async fn reported_day(
        b: &crate::testing::memory::MemoryBucket,
        settings: &crate::report::build::ReportSettings,
        now: OffsetDateTime,
    ) -> Vec<String> {
        let t = time::macros::datetime!(2026-11-20 10:00 UTC);
        let failed: Vec<crate::outcome::Outcome> = (0..30)
            .map(|i| {
                serde_json::from_value(serde_json::json!({
                    "task": "t1", "processed_at": "2026-11-20T10:00:00.000Z",
                    "source_key": format!("k{i:03}"), "dest_key": format!("k{i:03}"),
                    "bucket": "src", "event_name": "ObjectCreated:Put", "outcome": "failed",
                    "bytes_moved": 0, "attempts": 1, "duration_ms": 1, "message_id": "m",
                }))
                .unwrap()
            })
            .collect();
        b.insert(
            &crate::store::results::results_key("results", "t1", t, "i1"),
            crate::store::results::to_json_lines(&failed),
        );
        let r = crate::testing::report::reporter(settings, b);
        r.run(now).await.unwrap();
        let dir = "reports/t1/2026-11-20/failed_list";
        let parts = b
            .snapshot()
            .into_keys()
            .filter(|k| k.starts_with(dir))
            .count() as u32;
        assert!(parts >= 3, "{parts}");
        let mut stale = csv_row(&FILE_HEADER);
        stale.extend(file("stale", "src", "ObjectRemoved:Delete", "failed"));
        b.insert(&part_key(dir, parts + 1), stale);
        b.insert(&format!("{dir}/notes.txt"), "not a list");
        b.insert(&format!("{dir}/sub/part-00001.csv"), "not a list");
        (0..30).map(|i| format!("k{i:03}")).collect()
    }

    /// The report settings of task `t1` the retry tests report with.
    pub(crate) fn settings() -> crate::report::build::ReportSettings {
        crate::testing::report::settings("Z", 1024)
    }

    fn keys_of(list: &FailedList) -> Vec<String> {
        assert!(list.keys.iter().all(|k| !k.delete));
        list.keys.iter().map(|k| k.key.clone()).collect()
    }

    #[tokio::test]
    async fn only_the_parts_a_pushing_days_summary_lists_are_read() {
        let b = crate::testing::memory::MemoryBucket::default();
        let s = settings();
        let now = time::macros::datetime!(2026-11-20 12:00 UTC);
        let want = reported_day(&b, &s, now).await;
        let r = crate::testing::report::reporter(&s, &b);
        let day = time::macros::date!(2026 - 11 - 20);
        assert!(!r.has_manifest(day).await.unwrap());
        let list = read_failed_list(&r, day, "src").await.unwrap();
        assert_eq!(keys_of(&list), want);

        // A summary written before `keys`: its part count is read.
        let key = "reports/t1/2026-11-20/summary.json";
        let mut summary: Value = serde_json::from_slice(&b.object(key).unwrap()).unwrap();
        summary["lists"]["failed_list"]
            .as_object_mut()
            .unwrap()
            .remove("keys");
        b.insert(key, serde_json::to_vec(&summary).unwrap());
        let list = read_failed_list(&r, day, "src").await.unwrap();
        assert_eq!(keys_of(&list), want);

        // A summary of another task is not read.
        summary["task"] = "t2".into();
        b.insert(key, serde_json::to_vec(&summary).unwrap());
        let e = read_failed_list(&r, day, "src").await.unwrap_err();
        assert!(
            e.to_string().contains("not a summary the report wrote"),
            "{e}"
        );
        // Nor a day without a report.
        let e = read_failed_list(&r, time::macros::date!(2026 - 11 - 19), "src")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no report at"), "{e}");
    }

    #[tokio::test]
    async fn only_the_parts_a_complete_days_manifest_lists_are_read() {
        let b = crate::testing::memory::MemoryBucket::default();
        let s = settings();
        let now = time::macros::datetime!(2026-11-21 01:00 UTC);
        let want = reported_day(&b, &s, now).await;
        let r = crate::testing::report::reporter(&s, &b);
        let day = time::macros::date!(2026 - 11 - 20);
        assert!(r.has_manifest(day).await.unwrap());
        // The manifest is read, not the summary.
        b.insert("reports/t1/2026-11-20/summary.json", "torn");
        let list = read_failed_list(&r, day, "src").await.unwrap();
        assert_eq!(keys_of(&list), want);
    }

    #[test]
    fn a_part_without_the_columns_is_refused() {
        let e = parse_failed_parts(&[b"a,b\n1,2\n".to_vec()], "src").unwrap_err();
        assert!(e.to_string().contains("source_key"), "{e}");
    }
}
