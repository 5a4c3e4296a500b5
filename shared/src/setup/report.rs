//! The report function's wiring: its stores built from the configuration ([`report_parts`], once
//! per process), the report run under its lease followed by the sweep of stale multipart uploads
//! ([`run_report`]), the scheduled verification ([`run_verify`]), and what they fail with
//! ([`ReportRunError`]).

use super::{oss_credentials, s3_client, with_credential_refresh, FailureKind, SetupError};
use crate::aws::s3_results::S3ResultsStore;
use crate::config::ConfigError;
use crate::errors::error_chain;
use crate::oss::destination::OssDestination;
use crate::oss::{OssClient, OssConfig};
use crate::sweep::{
    self, OssUploads, SweepError, SweepLimits, SweepOptions, SweepRule, SweepSummary,
};
use crate::telemetry::LineSink;

/// What a report run (or `ctl`, reading reports) works with: the results store in S3, the OSS
/// destination the reports are in, the report settings, and the S3 client.
pub struct ReportParts {
    /// The results store.
    pub records: S3ResultsStore,
    /// The OSS bucket holding the reports.
    pub oss: OssDestination,
    /// The report settings.
    pub settings: crate::report::build::ReportSettings,
    /// The S3 client (for the optional report copy).
    pub s3: aws_sdk_s3::Client,
}

/// Builds the report's stores and settings from its configuration.
pub async fn report_parts(
    config: &crate::config::ReportConfig,
    sdk: &aws_config::SdkConfig,
) -> Result<ReportParts, ReportRunError> {
    let s3 = s3_client(sdk, config.s3_path_style);
    let credentials = oss_credentials(sdk, &config.oss.credentials).await?;
    let client = with_credential_refresh(
        OssClient::new(OssConfig::new(
            config.oss.endpoint.clone(),
            &config.oss.region,
            credentials,
        ))?,
        sdk,
        &config.oss.credentials,
    );
    let settings = crate::report::build::ReportSettings {
        task: config.task_id.clone(),
        results_prefix: config.results_prefix.clone(),
        report_prefix: config.report_prefix.clone(),
        zone: config.zone.clone(),
        grace: time::Duration::minutes(config.grace_minutes as i64),
        part_bytes: config.part_bytes,
        sort_budget: config.sort_budget,
        parallel_reads: config.parallel_reads,
    };
    Ok(ReportParts {
        records: S3ResultsStore::new(s3.clone(), config.results_bucket.clone()),
        oss: OssDestination::new(client, config.dest_bucket.clone()),
        settings,
        s3,
    })
}

/// What a report run did: the days reported, and the sweep of stale multipart uploads that
/// followed.
#[derive(Debug)]
pub struct ReportRun {
    /// The days reported, folders ignored, and why none was reported, if none was; or who
    /// holds the lease, when another run does (this run then wrote nothing and swept nothing).
    pub report: crate::report::lease::LeasedRun,
    /// The sweep; its failure never fails the run. `None` when another run holds the lease.
    pub sweep: Option<Result<SweepSummary, SweepError>>,
}

/// Time kept free before the invocation's deadline when the sweep is bounded.
const SWEEP_MARGIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The sweep that follows every report run: uploads under `DEST_PREFIX` older than
/// `UPLOAD_SWEEP_AGE_HOURS` are aborted, except those of copies in progress (named by a
/// checkpoint in `RESULTS_BUCKET` written within that age; see [`sweep::sweep_task`]), within the
/// default limits and ending before `deadline` (the invocation's). The checkpoints are read with
/// `s3`, the report's own S3 client. The outcome is logged and one metric line goes to `sink`.
pub async fn sweep_after_report(
    config: &crate::config::ReportConfig,
    client: OssClient,
    s3: aws_sdk_s3::Client,
    now: time::OffsetDateTime,
    deadline: Option<std::time::SystemTime>,
    sink: &LineSink,
) -> Result<SweepSummary, SweepError> {
    let defaults = SweepLimits::default();
    let limits = SweepLimits {
        time_budget: sweep::time_left(
            defaults.time_budget,
            deadline,
            std::time::SystemTime::now(),
            SWEEP_MARGIN,
        ),
        ..defaults
    };
    let options = SweepOptions {
        rule: SweepRule::new(
            config.dest_prefix.clone(),
            std::time::Duration::from_secs(config.upload_sweep_age_hours * 3600),
            now,
        ),
        dry_run: false,
        limits,
        hold: None,
    };
    let store = OssUploads::new(client, config.dest_bucket.clone());
    let checkpoints = S3ResultsStore::new(s3, config.results_bucket.clone());
    let prefix = crate::sweep::copies::task_prefix(&config.results_prefix, &config.task_id);
    let read = crate::sweep::copies::READ_LIMITS;
    let outcome = sweep::sweep_task(&store, &checkpoints, &prefix, &options, read).await;
    match &outcome {
        Ok(s) => tracing::info!(
            listed = s.listed,
            aborted = s.aborted,
            resuming = s.resuming,
            live_copies = s.live_copies,
            failed = s.failed.len(),
            held = ?s.held,
            oldest_age_secs = ?s.oldest_age_secs,
            stopped = ?s.stopped,
            "swept stale multipart uploads"
        ),
        Err(e) => tracing::warn!(
            error = %error_chain(e),
            "the sweep of stale multipart uploads failed; the next report run tries again"
        ),
    }
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    sink(&sweep::metrics_line(&config.task_id, &outcome, now_ms));
    outcome
}

/// The report run as deployed: under the report lease ([`crate::report::lease`], kept in the
/// results bucket), results from S3, reports to OSS (and an optional S3 copy), as of `now`;
/// then, whatever the report's outcome, the sweep of stale multipart uploads
/// ([`sweep_after_report`], on the real clock), ending before `deadline`. When another run
/// holds the lease, this one writes nothing, sweeps nothing, and says who holds it. `parts` are
/// the report's stores ([`report_parts`], built once per process); `sdk` gives the clients that
/// watch the task's delivery.
pub async fn run_report(
    config: &crate::config::ReportConfig,
    sdk: &aws_config::SdkConfig,
    parts: &ReportParts,
    now: time::OffsetDateTime,
    deadline: Option<std::time::SystemTime>,
    sink: &LineSink,
) -> Result<ReportRun, ReportRunError> {
    use crate::report::lease::{
        lease_key, new_holder, LeaseHolder, LeaseSettings, LeasedRun, SystemClock, LEASE_MARGIN,
    };
    use crate::report::stores::WithCopy;
    let ReportParts {
        records,
        oss,
        settings,
        s3,
    } = parts;
    let client = oss.client().clone();
    let lease_settings = LeaseSettings {
        key: lease_key(&config.results_prefix, &config.task_id),
        duration: time::Duration::minutes(config.lease_minutes as i64),
        margin: LEASE_MARGIN,
    };
    let holder = LeaseHolder {
        store: records,
        settings: &lease_settings,
        clock: &SystemClock,
        holder: new_holder(),
        deadline: deadline.map(time::OffsetDateTime::from),
    };
    let watch =
        config
            .event_source_mapping
            .as_ref()
            .map(|mapping| crate::report::watch::MappingWatch {
                lambda: aws_sdk_lambda::Client::new(sdk),
                sqs: aws_sdk_sqs::Client::new(sdk),
                mapping: mapping.clone(),
                queue_url: config.task_queue_url.clone(),
            });
    let sweep_s3 = s3.clone();
    let report = match &config.report_s3_bucket {
        None => {
            holder
                .run_watching(settings, records, oss, now, watch.as_ref())
                .await
        }
        Some(bucket) => {
            let store = WithCopy {
                primary: oss.clone(),
                copy: s3.clone(),
                copy_bucket: bucket.clone(),
            };
            holder
                .run_watching(settings, records, &store, now, watch.as_ref())
                .await
        }
    };
    if let Ok(LeasedRun::Busy(busy)) = report {
        return Ok(ReportRun {
            report: LeasedRun::Busy(busy),
            sweep: None,
        });
    }
    // Ages are measured on the real clock, never the report's "as of" instant: a run as of a
    // later day must not make live uploads look stale.
    let sweep = sweep_after_report(
        config,
        client,
        sweep_s3,
        time::OffsetDateTime::now_utc(),
        deadline,
        sink,
    )
    .await;
    Ok(ReportRun {
        report: report?,
        sweep: Some(sweep),
    })
}

/// How long before its deadline a scheduled verification stops listing, to write its report.
pub const VERIFY_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

/// The scheduled verification (the report function invoked with `{"verify": true}`, or `report
/// verify` locally): the task's source and destination compared ([`crate::verify`]) with the
/// report function's clients, the report written to the report area, and one EMF line of its
/// result to `sink`. `SOURCE_BUCKET`, `SOURCE_PREFIX` and `STRIP_SOURCE_PREFIX` come through
/// `get`. Stops listing [`VERIFY_MARGIN`] before `deadline` and writes what it found, marked
/// incomplete. `parts` are the report function's stores ([`report_parts`], built once per
/// process).
pub async fn run_verify(
    config: &crate::config::ReportConfig,
    parts: &ReportParts,
    get: impl Fn(&str) -> Option<String>,
    deadline: Option<std::time::SystemTime>,
    sink: &LineSink,
) -> Result<crate::verify::report::Written, ReportRunError> {
    use crate::verify::report::{verify_and_report, Subject};
    use crate::verify::run::{Mapping, Progress, VerifyOptions};
    use crate::verify::stores::{CloudSides, SourceListing};
    let source_bucket = crate::config::source_bucket(&get)?;
    let binding = crate::config::task_binding(
        &get,
        &config.task_id,
        source_bucket.clone(),
        config.dest_bucket.clone(),
    )?;
    let mapping = Mapping::new(binding.clone(), &binding.source_prefix);
    let sides = CloudSides {
        s3: parts.s3.clone(),
        source_bucket,
        listing: SourceListing::List,
        oss: parts.oss.client().clone(),
        dest_bucket: config.dest_bucket.clone(),
    };
    let subject = Subject {
        task: config.task_id.clone(),
        source: "list".into(),
        report_prefix: config.report_prefix.clone(),
        part_bytes: config.part_bytes,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timer = deadline.map(|d| {
        let stop = stop.clone();
        let left = d
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
            .saturating_sub(VERIFY_MARGIN);
        tokio::spawn(async move {
            tokio::time::sleep(left).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        })
    });
    let written = verify_and_report(
        &sides,
        &mapping,
        &VerifyOptions::default(),
        &parts.oss,
        &subject,
        &stop,
        &Progress::default(),
    )
    .await;
    if let Some(t) = timer {
        t.abort();
    }
    let written = written?;
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    sink(&crate::verify::metrics::verify_metrics_line(
        &config.task_id,
        &written.summary,
        now_ms,
    ));
    Ok(written)
}

/// Why a report run failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportRunError {
    /// Start-up failed.
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The run failed; the next run converges (no manifest is written over an incomplete day).
    #[error(transparent)]
    Report(#[from] crate::report::build::ReportError),
    /// A verification failed.
    #[error("verification: {0}")]
    Verify(#[from] crate::verify::run::VerifyError),
}

impl From<ReportRunError> for super::Failure {
    fn from(e: ReportRunError) -> Self {
        Self {
            kind: e.kind(),
            message: crate::errors::error_chain(&e),
        }
    }
}

impl ReportRunError {
    /// What kind of failure this is.
    pub fn kind(&self) -> FailureKind {
        use crate::retry::Transient;
        let transient = match self {
            Self::Setup(e) => return e.kind(),
            Self::Report(e) => e.is_transient(),
            Self::Verify(e) => e.is_transient(),
        };
        if transient {
            FailureKind::Transient
        } else {
            FailureKind::Failed
        }
    }
}

impl From<ConfigError> for ReportRunError {
    fn from(e: ConfigError) -> Self {
        Self::Setup(SetupError::Config(e))
    }
}

impl From<crate::oss::Error> for ReportRunError {
    fn from(e: crate::oss::Error) -> Self {
        Self::Setup(SetupError::Oss(e))
    }
}
