//! Report days across time zones and runs: serial days (one day pushing at a time), days of 23
//! and 25 hours in a zone with daylight saving, a change of zone between runs, with every record
//! counted exactly once across the days' `attempts_list` and `late_list`, and paused periods.

use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::report::build::ReportSettings;
use s3_oss_sync::testing::memory::MemoryBucket;
use s3_oss_sync::testing::report::{days, record};
use time::OffsetDateTime;

mod pauses;
mod serial;
mod zones;

/// Task `t1`'s settings in `zone`, with parts of 4 KiB.
fn settings(zone: &str) -> ReportSettings {
    s3_oss_sync::testing::report::settings(zone, 4096)
}

/// One record of `key`, copied at `at`, filed in its own results object at `filed`.
fn file(bucket: &MemoryBucket, key: &str, at: OffsetDateTime, filed: OffsetDateTime) {
    let copied = record(key, at, OutcomeKind::Copied);
    s3_oss_sync::testing::report::file(bucket, &[copied], filed, key);
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
