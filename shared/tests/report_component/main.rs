//! Component tests: the report run over outcome records spread across several days, against an
//! in-memory bucket that keeps the order of its writes.

use s3_oss_sync::report::build::ReportSettings;

mod days;
mod objects;
mod records;

/// Task `t1`'s settings in `offset`, with parts of 1 KiB so that lists have several.
fn settings(offset: &str) -> ReportSettings {
    s3_oss_sync::testing::report::settings(offset, 1024)
}
