//! `ctl sweep-uploads`: the sweep of stale multipart uploads ([`crate::sweep`]) run by hand,
//! under the task's destination prefix, with larger bounds than the report function's. Like the
//! report function's, it first reads the task's checkpoints in the results bucket and keeps the
//! uploads of the copies still in progress.

use super::ControlError;
use crate::aws::s3_results::S3ResultsStore;
use crate::config::{ControlConfig, OssSettings};
use crate::oss::{OssClient, OssConfig};
use crate::setup;
use crate::sweep::copies::{results_location, task_prefix, READ_LIMITS};
use crate::sweep::{sweep_task, OssUploads, SweepLimits, SweepOptions, SweepRule, SweepSummary};
use std::time::Duration;

/// What `ctl sweep-uploads` was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepRequest {
    /// Age in hours (`--older-than`); the task's `UPLOAD_SWEEP_AGE_HOURS` if not given.
    pub older_than_hours: Option<u64>,
    /// List what would be aborted, abort nothing (`--dry-run`).
    pub dry_run: bool,
}

/// The bounds of a sweep run by hand: 10,000 requests, 15 minutes.
pub const CTL_LIMITS: SweepLimits = SweepLimits {
    max_requests: 10_000,
    time_budget: Duration::from_secs(15 * 60),
    page_size: crate::oss::multipart_list::MAX_UPLOADS_PER_PAGE,
};

/// The sweep options for a request against the task's settings, as of `now`. Pure.
pub fn sweep_options(
    config: &ControlConfig,
    request: SweepRequest,
    now: time::OffsetDateTime,
) -> SweepOptions {
    let hours = request
        .older_than_hours
        .unwrap_or(config.upload_sweep_age_hours);
    SweepOptions {
        rule: SweepRule::new(
            config.dest_prefix.clone(),
            Duration::from_secs(hours * 3600),
            now,
        ),
        dry_run: request.dry_run,
        limits: CTL_LIMITS,
        hold: None,
    }
}

/// Sweeps the task's destination prefix: reads `DEST_BUCKET`, `RESULTS_BUCKET` (where the task's
/// checkpoints are), `RESULTS_PREFIX` and the `OSS_*` variables through `get`, builds the OSS
/// client (credentials from Secrets Manager if so configured), and runs the sweep
/// ([`sweep_task`]). A failed listing of the uploads is [`ControlError::Oss`]; failed aborts are
/// in the summary, and so is a sweep held because the checkpoints could not be read.
pub async fn sweep_task_uploads(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    get: impl Fn(&str) -> Option<String>,
    request: SweepRequest,
) -> Result<SweepSummary, ControlError> {
    let bucket = config.dest_bucket.clone().ok_or_else(|| {
        ControlError::Input("DEST_BUCKET is not set (the task's OSS bucket)".into())
    })?;
    let (results_bucket, results_prefix) = results_location(&get).ok_or_else(|| {
        ControlError::Input(
            "RESULTS_BUCKET is not set (the results bucket, where the checkpoints of the copies \
             in progress are: their uploads must not be aborted)"
                .into(),
        )
    })?;
    let s3 = setup::s3_client(sdk, config.s3_path_style);
    let oss = OssSettings::from_lookup(&get).map_err(|e| ControlError::Input(e.to_string()))?;
    let credentials = setup::oss_credentials(sdk, &oss.credentials)
        .await
        .map_err(ControlError::oss)?;
    let client = OssClient::new(OssConfig::new(oss.endpoint, &oss.region, credentials))
        .map_err(|e| ControlError::Input(e.to_string()))?;
    let options = sweep_options(config, request, time::OffsetDateTime::now_utc());
    sweep_task(
        &OssUploads::new(client, bucket),
        &S3ResultsStore::new(s3, results_bucket),
        &task_prefix(&results_prefix, &config.task_id),
        &options,
        READ_LIMITS,
    )
    .await
    .map_err(ControlError::oss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn options_take_the_task_prefix_and_default_age() {
        let config = ControlConfig::from_lookup(|k| {
            [
                ("TASK_ID", "t1"),
                ("SOURCE_BUCKET", "src"),
                ("TASK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/t1"),
                ("DEST_PREFIX", "mirror/"),
                ("UPLOAD_SWEEP_AGE_HOURS", "48"),
            ]
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
        })
        .unwrap();
        let now = datetime!(2026-11-30 12:00 UTC);
        let o = sweep_options(
            &config,
            SweepRequest {
                older_than_hours: None,
                dry_run: true,
            },
            now,
        );
        assert_eq!(o.rule.prefix, "mirror/");
        assert_eq!(o.rule.older_than, Duration::from_secs(48 * 3600));
        assert!(o.dry_run);
        assert_eq!(o.limits, CTL_LIMITS);
        let o = sweep_options(
            &config,
            SweepRequest {
                older_than_hours: Some(2),
                dry_run: false,
            },
            now,
        );
        assert_eq!(o.rule.older_than, Duration::from_secs(2 * 3600));
        assert!(!o.dry_run);
    }
}
