//! Start-up: the real clients built once from the validated configuration (AWS SDK for S3, SQS and
//! Secrets Manager from the standard `AWS_*` variables; the OSS client from `OSS_*`).

use crate::aws::s3_results::S3ResultsStore;
use crate::aws::s3_source::S3Source;
use crate::aws::sqs_rechecks::SqsRechecks;
use crate::budget::MemoryBudget;
use crate::config::{ConfigError, CredentialSource, SyncConfig};
use crate::errors::error_chain;
use crate::oss::destination::OssDestination;
use crate::oss::signing::Credentials;
use crate::oss::{CredentialRefresh, OssClient, OssConfig, RefreshError};
use crate::sweep::{
    self, OssUploads, SweepError, SweepLimits, SweepOptions, SweepRule, SweepSummary,
};
use crate::sync::copy::CopyOptions;
use crate::sync::handler::SyncService;
use crate::sync::recheck;
use crate::telemetry::LineSink;

/// The sync service as deployed: S3 source, OSS destination, S3 results store.
pub type LiveSyncService = SyncService<S3Source, OssDestination, S3ResultsStore, SqsRechecks>;

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is wrong.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The OSS credentials secret could not be read or understood.
    #[error("OSS credentials secret {secret_id}: {detail}")]
    Secret {
        /// The secret's id or ARN.
        secret_id: String,
        /// What went wrong (never the secret's value).
        detail: String,
    },
    /// The OSS client could not be built.
    #[error("OSS client: {0}")]
    Oss(#[from] crate::oss::Error),
}

/// Loads the AWS SDK configuration from the standard variables and files (`AWS_REGION`,
/// `AWS_ENDPOINT_URL`, credentials, ...).
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}

/// An S3 client, path-style when `path_style` is set (`S3_PATH_STYLE`, read by
/// [`crate::config::s3_path_style`]).
pub fn s3_client(sdk: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The JSON a credentials secret holds.
#[derive(serde::Deserialize)]
struct SecretCredentials {
    #[serde(alias = "AccessKeyId", alias = "access_key_id")]
    #[serde(rename = "accessKeyId")]
    access_key_id: String,
    #[serde(alias = "AccessKeySecret", alias = "access_key_secret")]
    #[serde(rename = "accessKeySecret")]
    access_key_secret: String,
    #[serde(alias = "SecurityToken", alias = "security_token", default)]
    #[serde(rename = "securityToken")]
    security_token: Option<String>,
}

/// Parses a credentials secret's JSON. Errors never quote the value.
pub fn parse_secret(secret_id: &str, json: &str) -> Result<Credentials, SetupError> {
    let s: SecretCredentials = serde_json::from_str(json).map_err(|e| SetupError::Secret {
        secret_id: secret_id.to_owned(),
        detail: format!(
            "expected JSON {{\"accessKeyId\": ..., \"accessKeySecret\": ..., \"securityToken\"?: ...}} \
             (error at line {}, column {})",
            e.line(),
            e.column()
        ),
    })?;
    Ok(Credentials::new(
        s.access_key_id,
        s.access_key_secret,
        s.security_token,
    ))
}

/// Resolves the OSS credentials at start-up: as given, or read from Secrets Manager.
pub async fn oss_credentials(
    sdk: &aws_config::SdkConfig,
    source: &CredentialSource,
) -> Result<Credentials, SetupError> {
    match source {
        CredentialSource::Static(c) => Ok(c.clone()),
        CredentialSource::SecretsManager(id) => {
            read_secret(&aws_sdk_secretsmanager::Client::new(sdk), id).await
        }
    }
}

/// Reads and parses a credentials secret (`GetSecretValue`). Errors never quote the value.
async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Credentials, SetupError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| SetupError::Secret {
            secret_id: secret_id.to_owned(),
            detail: error_chain(&e),
        })?;
    let json = out.secret_string().ok_or_else(|| SetupError::Secret {
        secret_id: secret_id.to_owned(),
        detail: "the secret has no string value".into(),
    })?;
    parse_secret(secret_id, json)
}

/// How the OSS client re-reads its credentials when OSS refuses them (a rotated key, an expired
/// STS token): from the secret they came from, at most once a minute. Static credentials have
/// none: a running function's environment cannot change, so reading it again could only give
/// the key OSS just refused; rotating them takes a redeploy.
pub fn credential_refresh(
    sdk: &aws_config::SdkConfig,
    source: &CredentialSource,
) -> Option<CredentialRefresh> {
    match source {
        CredentialSource::Static(_) => None,
        CredentialSource::SecretsManager(id) => {
            let client = aws_sdk_secretsmanager::Client::new(sdk);
            let id = id.clone();
            Some(CredentialRefresh::new(move || {
                let (client, id) = (client.clone(), id.clone());
                async move {
                    read_secret(&client, &id)
                        .await
                        .map_err(|e| RefreshError(Box::new(e)))
                }
            }))
        }
    }
}

/// `client`, given the [`credential_refresh`] of `source` if it has one.
pub fn with_credential_refresh(
    client: OssClient,
    sdk: &aws_config::SdkConfig,
    source: &CredentialSource,
) -> OssClient {
    match credential_refresh(sdk, source) {
        Some(refresh) => client.with_credential_refresh(refresh),
        None => client,
    }
}

/// The OSS client the sync function uses: its endpoint, part size, parts in flight, retries, and
/// the one memory budget every job's upload buffers come from.
pub fn sync_oss_client(
    config: &SyncConfig,
    credentials: Credentials,
) -> Result<OssClient, crate::oss::Error> {
    let mut oss = OssConfig::new(config.oss_endpoint.clone(), &config.oss_region, credentials);
    oss.part_size = config.part_size;
    oss.multipart_threshold = config.part_size;
    oss.parts_in_flight = config.parts_in_flight;
    oss.memory_budget = MemoryBudget::new(config.memory_budget);
    oss.retry.max_attempts = config.oss_max_attempts;
    OssClient::new(oss)
}

/// Builds the sync service from its configuration.
pub async fn sync_service(
    config: &SyncConfig,
    sdk: &aws_config::SdkConfig,
    sink: LineSink,
) -> Result<LiveSyncService, SetupError> {
    let s3 = s3_client(sdk, config.s3_path_style);
    let credentials = oss_credentials(sdk, &config.oss_credentials).await?;
    let client = with_credential_refresh(
        sync_oss_client(config, credentials)?,
        sdk,
        &config.oss_credentials,
    );
    Ok(SyncService {
        task_id: config.task_id.clone(),
        binding: config.binding.clone(),
        options: CopyOptions {
            sync_deletes: config.sync_deletes,
            sync_tags: config.sync_tags,
            storage_classes: config.storage_classes.clone(),
            max_rounds: config.max_copy_rounds,
            fan_out_threshold: config.fan_out_threshold,
            fan_out_range: config.fan_out_range,
        },
        concurrency: config.concurrency,
        results_prefix: config.results_prefix.clone(),
        max_receive_count: config.max_receive_count,
        throughput: Default::default(),
        source: S3Source::new(s3.clone(), config.binding.source_bucket.clone()),
        dest: OssDestination::new(client, config.binding.dest_bucket.clone()),
        results: S3ResultsStore::new(s3.clone(), config.results_bucket.clone()),
        rechecks: SqsRechecks::new(aws_sdk_sqs::Client::new(sdk), config.queue_url.clone()),
        recheck_after: recheck::lifetime(config.function_timeout, config.batching_window),
        sink,
        checkpoints: Some(Box::new(S3ResultsStore::new(
            s3,
            config.results_bucket.clone(),
        ))),
        recent_writes: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::Endpoint;

    #[test]
    fn secrets_parse_and_errors_never_quote_them() {
        let c = parse_secret("s", r#"{"accessKeyId":"AK","accessKeySecret":"SK-value"}"#).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.access_key_secret()),
            ("AK", "SK-value")
        );
        let c = parse_secret(
            "s",
            r#"{"AccessKeyId":"AK","AccessKeySecret":"S","SecurityToken":"T"}"#,
        )
        .unwrap();
        assert_eq!(c.security_token.as_deref(), Some("T"));
        let e = parse_secret("s", r#"{"accessKeyId":"AK","secret":"SK-value"}"#).unwrap_err();
        assert!(!e.to_string().contains("SK-value"), "{e}");
        let e = parse_secret("s", "SK-value-not-json").unwrap_err();
        assert!(!e.to_string().contains("SK-value"), "{e}");
    }

    #[tokio::test]
    async fn only_a_secret_is_re_read_and_a_failed_read_names_it() {
        // Nothing listens on port 1: the read fails at once, without leaving this machine.
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let fixed = CredentialSource::Static(Credentials::new("AK", "SK-value", None));
        assert!(credential_refresh(&sdk, &fixed).is_none());
        let secret = CredentialSource::SecretsManager("oss/creds".into());
        let refresh = credential_refresh(&sdk, &secret).expect("a secret is re-read");
        let client = OssClient::new(OssConfig::new(
            Endpoint::custom(
                "http://127.0.0.1:1",
                crate::oss::Addressing::PathStyle,
                true,
            )
            .unwrap(),
            "cn-hangzhou",
            Credentials::new("AK", "SK-value", None),
        ))
        .unwrap()
        .with_credential_refresh(refresh.clone());
        assert!(!format!("{client:?} {refresh:?}").contains("SK-value"));
        let e = refresh.read().await.unwrap_err().to_string();
        assert!(e.contains("oss/creds") && !e.contains("SK-value"), "{e}");
    }
}

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
/// holds the lease, this one writes nothing, sweeps nothing, and says who holds it.
pub async fn run_report(
    config: &crate::config::ReportConfig,
    sdk: &aws_config::SdkConfig,
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
    } = report_parts(config, sdk).await?;
    let client = oss.client().clone();
    let lease_settings = LeaseSettings {
        key: lease_key(&config.results_prefix, &config.task_id),
        duration: time::Duration::minutes(config.lease_minutes as i64),
        margin: LEASE_MARGIN,
    };
    let holder = LeaseHolder {
        store: &records,
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
                .run_watching(&settings, &records, &oss, now, watch.as_ref())
                .await
        }
        Some(bucket) => {
            let store = WithCopy {
                primary: oss,
                copy: s3,
                copy_bucket: bucket.clone(),
            };
            holder
                .run_watching(&settings, &records, &store, now, watch.as_ref())
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
/// incomplete.
pub async fn run_verify(
    config: &crate::config::ReportConfig,
    sdk: &aws_config::SdkConfig,
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
    let parts = report_parts(config, sdk).await?;
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
