//! `ctl retry-failed`: a day's failed list read from the report ([`read_failed_list`]), summed
//! up, and (unless `--dry-run`) each key sent back to the task queue once, in batches of 10, with
//! a bar counting them.

use super::failure::Failure;
use super::settings::Settings;
use super::terminal::Terminal;
use crate::aws::sqs::SqsQueue;
use crate::config::{ControlConfig, ReportConfig};
use crate::control::retry::{read_failed_list, retry_bodies};
use crate::report::build::{RecordSource, ReportStore, Reporter};
use crate::report::day::format_day;
use crate::setup;
use crate::store::queue::{EventQueue, MAX_BATCH};
use serde_json::{json, Value};
use time::{Date, OffsetDateTime};

/// Runs `ctl retry-failed` for `day`: the reports read with the report function's settings, the
/// keys sent to the task queue.
pub async fn retry_failed(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    settings: &Settings,
    day: Date,
    dry_run: bool,
    terminal: &dyn Terminal,
) -> Result<Value, Failure> {
    let report = ReportConfig::from_lookup(|n| settings.get(n)).map_err(Failure::config)?;
    let parts = setup::report_parts(&report, sdk)
        .await
        .map_err(Failure::config)?;
    let reporter = Reporter {
        settings: &parts.settings,
        results: &parts.records,
        store: &parts.oss,
    };
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
    retry_failed_with(
        &reporter,
        &config.source_bucket,
        day,
        dry_run,
        &queue,
        terminal,
    )
    .await
}

/// The retry behind [`retry_failed`], over any reports and queue: the keys of `bucket` the day's
/// report lists as failed.
pub async fn retry_failed_with<R: RecordSource, S: ReportStore, Q: EventQueue>(
    reporter: &Reporter<'_, R, S>,
    bucket: &str,
    day: Date,
    dry_run: bool,
    queue: &Q,
    terminal: &dyn Terminal,
) -> Result<Value, Failure> {
    let list = read_failed_list(reporter, day, bucket).await?;
    let mut summary = json!({
        "day": format_day(day),
        "keys": list.keys.len(),
        "deletes": list.keys.iter().filter(|k| k.delete).count(),
        "failed_files": list.failed_files,
        "invalid_files": list.invalid_files,
        "unusable_files": list.unusable_files,
    });
    if dry_run {
        summary["dry_run"] = json!(true);
        summary["key_list"] = json!(list.keys.iter().map(|k| &k.key).collect::<Vec<_>>());
        return Ok(summary);
    }
    let bar = terminal.counter(list.keys.len() as u64);
    let mut sent = 0;
    let bodies = retry_bodies(&list.keys, bucket, OffsetDateTime::now_utc());
    for chunk in bodies.chunks(MAX_BATCH) {
        if let Err(e) = queue.send_batch(chunk.to_vec()).await {
            bar.abandon();
            return Err(Failure::call(format!(
                "{} (after {sent} of {} keys were sent)",
                crate::errors::error_chain(&e),
                list.keys.len()
            )));
        }
        sent += chunk.len();
        bar.set_position(sent as u64);
    }
    bar.finish();
    summary["sent"] = json!(sent);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::commands::recorded::{Queue, Recorded};
    use crate::control::events::{RETRY_DELETE_EVENT, RETRY_EVENT};
    use crate::control::retry::tests::settings;
    use crate::report::rows::{csv_row, encode_key, FILE_HEADER};
    use crate::testing::memory::MemoryBucket;
    use time::macros::date;

    const DAY: Date = date!(2026 - 11 - 20);

    fn file_row(key: &str, event: &str, state: &str) -> Vec<u8> {
        let mut f = vec![String::new(); FILE_HEADER.len()];
        let encoded = encode_key(key);
        for (name, v) in [
            ("source_key", encoded.as_str()),
            ("bucket", "src"),
            ("event_name", event),
            ("state", state),
        ] {
            f[FILE_HEADER.iter().position(|h| *h == name).unwrap()] = v.into();
        }
        csv_row(&f)
    }

    /// A pushing day's report whose failed list holds `n` keys, every fifth a delete, and one
    /// invalid file.
    fn reported(n: usize) -> MemoryBucket {
        let b = MemoryBucket::default();
        let part = "reports/t1/2026-11-20/failed_list/part-00001.csv";
        let mut body = csv_row(&FILE_HEADER);
        for i in 0..n {
            let event = if i % 5 == 0 {
                "ObjectRemoved:Delete"
            } else {
                "ObjectCreated:Put"
            };
            body.extend(file_row(&format!("k{i:03}"), event, "failed"));
        }
        body.extend(file_row("", "", "invalid"));
        b.insert(part, body);
        b.insert(
            "reports/t1/2026-11-20/summary.json",
            serde_json::to_vec(&json!({
                "task": "t1", "day": "2026-11-20",
                "lists": {"failed_list": {"keys": [part]}},
            }))
            .unwrap(),
        );
        b
    }

    /// [`retry_failed_with`] for `bucket`'s reports (it is both the results and the report
    /// store) under the retry tests' report settings, for the source bucket `src`.
    async fn retry(
        bucket: &MemoryBucket,
        day: Date,
        dry_run: bool,
        q: &Queue,
        t: &Recorded,
    ) -> Result<Value, Failure> {
        let s = settings();
        let r = Reporter {
            settings: &s,
            results: bucket,
            store: bucket,
        };
        retry_failed_with(&r, "src", day, dry_run, q, t).await
    }

    #[tokio::test]
    async fn a_dry_run_lists_the_keys_and_sends_nothing() {
        let (b, q, t) = (reported(3), Queue::default(), Recorded::default());
        let out = retry(&b, DAY, true, &q, &t).await.unwrap();
        assert_eq!(
            out,
            json!({
                "day": "2026-11-20", "keys": 3, "deletes": 1, "failed_files": 3,
                "invalid_files": 1, "unusable_files": 0, "dry_run": true,
                "key_list": ["k000", "k001", "k002"],
            })
        );
        assert!(q.events().is_empty());
        assert!(t.activities.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn each_failed_key_is_sent_once_in_batches_of_ten() {
        let (b, q, t) = (reported(25), Queue::default(), Recorded::default());
        let out = retry(&b, DAY, false, &q, &t).await.unwrap();
        assert_eq!(
            (out["keys"].clone(), out["sent"].clone()),
            (json!(25), json!(25))
        );
        assert_eq!(out["deletes"], 5);
        assert!(out.get("key_list").is_none());
        let events = q.events();
        assert_eq!(events.len(), 25);
        assert_eq!(
            events[0],
            ("k000".to_owned(), RETRY_DELETE_EVENT.to_owned())
        );
        assert_eq!(events[1], ("k001".to_owned(), RETRY_EVENT.to_owned()));
        assert_eq!(q.batches.load(std::sync::atomic::Ordering::Relaxed), 3);
        let bar = t.activity(0);
        assert_eq!(*bar.position.lock().unwrap(), 25);
        assert_eq!(*bar.ended.lock().unwrap(), "finish");
    }

    #[tokio::test]
    async fn a_failed_batch_says_how_many_were_sent_and_a_missing_day_is_bad_input() {
        let (b, t) = (reported(25), Recorded::default());
        let q = Queue {
            fail_at: Some(1),
            ..Queue::default()
        };
        let f = retry(&b, DAY, false, &q, &t).await.unwrap_err();
        assert_eq!(f.code(), 1);
        assert_eq!(
            f.message,
            "SQS SendMessageBatch: injected (after 10 of 25 keys were sent)"
        );
        assert_eq!(*t.activity(0).ended.lock().unwrap(), "abandon");
        assert_eq!(*t.activity(0).position.lock().unwrap(), 10);

        let f = retry(&b, date!(2001 - 01 - 01), false, &q, &t)
            .await
            .unwrap_err();
        assert_eq!(f.code(), 2);
        assert!(f.message.starts_with("no report at"), "{f}");
    }
}
