//! Writes a complete sample day's report into a folder: a busy day of outcome records (about 650
//! files over 24 hours: copies from kilobytes to tens of megabytes, skips, deletes, failures
//! with several reasons, retries that end copied, an afternoon backlog with lags of minutes),
//! reported by the real report run from in-memory stores. The browser test renders its
//! `report.html` (`tests/python/test_report_html.py`), and so was the README's screenshot made.
//!
//! `cargo run -p s3-oss-sync-shared --example report_page -- OUT_DIR`

use s3_oss_sync::outcome::{format_time, Outcome, OutcomeKind};
use s3_oss_sync::report::build::{ReportSettings, Reporter};
use s3_oss_sync::store::results::{results_key, to_json_lines};
use s3_oss_sync::testing::memory::MemoryBucket;
use std::path::PathBuf;
use std::process::ExitCode;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// A small deterministic generator (xorshift), so every run writes the same day.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Files created per hour: quiet at night, busy by day.
const LOAD: [u64; 24] = [
    8, 6, 5, 4, 4, 6, 12, 22, 38, 46, 50, 48, 44, 52, 58, 54, 46, 40, 30, 24, 18, 14, 12, 10,
];

struct Day {
    dice: Dice,
    records: Vec<Outcome>,
    n: u64,
}

impl Day {
    /// A record of `key` processed at `at`, `lag_ms` after its event.
    fn record(
        &mut self,
        key: &str,
        at: OffsetDateTime,
        lag_ms: i64,
        kind: OutcomeKind,
        size: u64,
    ) -> Outcome {
        self.n += 1;
        let moved = if kind == OutcomeKind::Copied { size } else { 0 };
        let event = if kind == OutcomeKind::Deleted {
            "ObjectRemoved:Delete"
        } else {
            "ObjectCreated:Put"
        };
        serde_json::from_value(serde_json::json!({
            "task": "media-to-oss", "processed_at": format_time(at),
            "event_time": format_time(at - Duration::milliseconds(lag_ms)),
            "event_name": event, "bucket": "media-prod", "source_key": key, "dest_key": key,
            "size": size, "bytes_moved": moved, "outcome": kind, "attempts": 1,
            "duration_ms": 40 + size / 50_000, "message_id": format!("msg-{:06}", self.n),
            "receive_count": 1,
        }))
        .unwrap_or_else(|e| panic!("a sample record is a record: {e}"))
    }

    /// A failed record with its error.
    fn failure(&mut self, key: &str, at: OffsetDateTime, code: &str, message: &str, last: bool) {
        let mut o = self.record(key, at, 2_000, OutcomeKind::Failed, 0);
        o.error_code = Some(code.into());
        o.error_message = Some(message.into());
        o.is_final = last;
        self.records.push(o);
    }

    /// One file created at `at`, and what became of it.
    fn file(&mut self, i: u64, hour: usize, at: OffsetDateTime) {
        let folder = ["photos/2026/11", "video/raw", "docs/contracts", "thumbs"][i as usize % 4];
        let key = format!("{folder}/item-{i:05}.bin");
        // Lag: a second or two, minutes in the afternoon backlog, a long tail everywhere.
        let backlog = (14..16).contains(&hour);
        let mut lag = 400 + self.dice.below(2_500) as i64;
        if backlog {
            lag += 60_000 + self.dice.below(420_000) as i64;
        } else if self.dice.below(40) == 0 {
            lag += self.dice.below(90_000) as i64;
        }
        let size = match i % 4 {
            1 => (8 << 20) + self.dice.below(56 << 20),
            3 => 8_000 + self.dice.below(40_000),
            _ => 200_000 + self.dice.below(4 << 20),
        };
        let at = at + Duration::milliseconds(lag);
        let roll = self.dice.below(1000);
        let o = match roll {
            0..=759 => self.record(&key, at, lag, OutcomeKind::Copied, size),
            760..=849 => self.record(&key, at, lag, OutcomeKind::Skipped, size),
            850..=889 => self.record(&key, at, lag, OutcomeKind::Deleted, 0),
            890..=909 => self.record(&key, at, lag, OutcomeKind::Superseded, size),
            910..=939 => {
                // Throttled, then copied on the next delivery.
                self.failure(
                    &key,
                    at,
                    "SlowDown",
                    "Please reduce your request rate.",
                    false,
                );
                let later = at + Duration::seconds(35);
                self.record(&key, later, lag + 35_000, OutcomeKind::Copied, size)
            }
            940..=964 => {
                let msg = "The bucket policy does not allow oss:PutObject on this prefix.";
                self.failure(&key, at, "AccessDenied", msg, true);
                return;
            }
            965..=979 => {
                let msg = "The object is over the task's MAX_OBJECT_GIB limit.";
                self.failure(&key, at, "EntityTooLarge", msg, true);
                return;
            }
            980..=989 => {
                let key = format!("docs/<draft> & \"notes\" {i}.txt");
                let msg = "The key is not a valid OSS object name.";
                self.failure(&key, at, "InvalidObjectName", msg, true);
                return;
            }
            990..=995 => {
                let mut o = self.record(&key, at, lag, OutcomeKind::Deferred, size);
                o.receive_count = 5;
                o
            }
            _ => {
                // A transient failure SQS delivers again: pending.
                self.failure(
                    &key,
                    at,
                    "InternalError",
                    "We encountered an internal error.",
                    false,
                );
                return;
            }
        };
        self.records.push(o);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: report_page OUT_DIR (the folder the sample day's report is written to)");
        return ExitCode::from(2);
    };
    let start = datetime!(2026-11-24 00:00 UTC);
    let mut day = Day {
        dice: Dice(0x9e37_79b9_7f4a_7c15),
        records: Vec::new(),
        n: 0,
    };
    let mut i = 0;
    for (hour, files) in LOAD.iter().enumerate() {
        for f in 0..*files {
            let at =
                start + Duration::hours(hour as i64) + Duration::seconds((f * 3600 / files) as i64);
            day.file(i, hour, at);
            i += 1;
        }
    }
    // Filed as the sync function files them: one results object per invocation (here one per
    // processed minute), under its hour.
    let bucket = MemoryBucket::default();
    let mut by_minute: std::collections::BTreeMap<String, Vec<Outcome>> = Default::default();
    for o in day.records {
        by_minute
            .entry(o.processed_at[..16].to_owned())
            .or_default()
            .push(o);
    }
    for (minute, records) in by_minute {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let at = OffsetDateTime::parse(&format!("{minute}:59Z"), rfc3339)
            .unwrap_or_else(|e| panic!("{minute}: {e}"));
        bucket.insert(
            &results_key("results", "media-to-oss", at, &format!("inv-{minute}")),
            to_json_lines(&records),
        );
    }
    let settings = ReportSettings {
        task: "media-to-oss".into(),
        results_prefix: "results".into(),
        report_prefix: "reports".into(),
        zone: Default::default(),
        grace: Duration::minutes(30),
        part_bytes: 64 * 1024,
        sort_budget: 8 << 20,
        parallel_reads: 8,
    };
    let reporter = Reporter {
        settings: &settings,
        results: &bucket,
        store: &bucket,
    };
    if let Err(e) = reporter.run(datetime!(2026-11-25 01:00 UTC)).await {
        eprintln!("the sample day's report run failed: {e}");
        return ExitCode::FAILURE;
    }
    let dir = format!("{}/", reporter.day_dir(start.date()));
    for (key, body) in bucket.snapshot() {
        let Some(rest) = key.strip_prefix(&dir) else {
            continue;
        };
        let path = out.join(rest);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &body));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("{}", out.join("report.html").display());
    ExitCode::SUCCESS
}
