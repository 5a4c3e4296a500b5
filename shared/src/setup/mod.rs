//! Start-up: the real clients built once from the validated configuration (AWS SDK for S3, SQS and
//! Secrets Manager from the standard `AWS_*` variables; the OSS client from `OSS_*`, its
//! credentials read by [`crate::aws::secrets`] when they are kept in a secret), wired into the
//! sync service, the report run and the scheduled verification.

use crate::aws::s3_results::S3ResultsStore;
use crate::aws::s3_source::S3Source;
use crate::aws::secrets::{read_credentials, SecretError};
use crate::aws::sqs_rechecks::SqsRechecks;
use crate::budget::MemoryBudget;
use crate::config::{ConfigError, CredentialSource, SyncConfig};
use crate::oss::destination::OssDestination;
use crate::oss::signing::Credentials;
use crate::oss::{CredentialRefresh, OssClient, OssConfig, RefreshError};
use crate::sync::copy::CopyOptions;
use crate::sync::handler::SyncService;
use crate::sync::recheck;
use crate::telemetry::LineSink;
use std::sync::Arc;

mod report;

pub use report::{
    report_parts, run_report, run_verify, sweep_after_report, ReportParts, ReportRun,
    ReportRunError, VERIFY_MARGIN,
};

/// The sync service as deployed: S3 source, OSS destination, S3 results store.
pub type LiveSyncService = SyncService<S3Source, OssDestination, S3ResultsStore, SqsRechecks>;

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A setting is wrong.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The OSS credentials secret could not be read or understood.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The OSS client could not be built.
    #[error("OSS client: {0}")]
    Oss(#[from] crate::oss::Error),
}

/// The AWS SDK configuration the clients are built from (the `aws_config` crate).
pub use aws_config::SdkConfig;

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

/// Resolves the OSS credentials at start-up: as given, or read from Secrets Manager.
pub async fn oss_credentials(
    sdk: &aws_config::SdkConfig,
    source: &CredentialSource,
) -> Result<Credentials, SetupError> {
    match source {
        CredentialSource::Static(c) => Ok(c.clone()),
        CredentialSource::SecretsManager(id) => {
            Ok(read_credentials(&aws_sdk_secretsmanager::Client::new(sdk), id).await?)
        }
    }
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
                    read_credentials(&client, &id)
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

/// What kind of failure a function's error is, as it tells Lambda (its `errorType`), so its logs
/// and retries can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A setting is wrong, or the credentials secret does not hold credentials (or cannot be
    /// read for want of a permission): trying again will not help until it is fixed.
    Configuration,
    /// A call failed in a way that may pass (a timeout, throttling, a server error), or the
    /// report lease ran out: the next run continues.
    Transient,
    /// Anything else (a local disk, a report the run cannot read): trying again is unlikely to
    /// help.
    Failed,
}

impl FailureKind {
    /// The name Lambda is given (`errorType`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Configuration => "ConfigurationError",
            Self::Transient => "TransientError",
            Self::Failed => "RunError",
        }
    }
}

/// Why an invocation failed, as Lambda is told (`errorType`: the [`FailureKind`]'s name;
/// `errorMessage`: the error with its causes) and as the log says.
#[derive(Debug)]
pub struct Failure {
    /// What kind of failure it is.
    pub kind: FailureKind,
    /// The error with its causes.
    pub message: String,
}

impl From<SetupError> for Failure {
    fn from(e: SetupError) -> Self {
        Self {
            kind: e.kind(),
            message: crate::errors::error_chain(&e),
        }
    }
}

impl From<Failure> for lambda_runtime::Diagnostic {
    fn from(f: Failure) -> Self {
        Self {
            error_type: f.kind.name().to_owned(),
            error_message: f.message,
        }
    }
}

impl SetupError {
    /// What kind of failure this is: a secret that could not be read for a reason that may pass
    /// is transient; anything else is the configuration's.
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Secret(e) if e.transient => FailureKind::Transient,
            Self::Config(_) | Self::Secret(_) | Self::Oss(_) => FailureKind::Configuration,
        }
    }
}

/// What a Lambda function builds once, at its cold start (its clients, its credentials read from
/// their secret), shared by its invocations. A build that failed is the next invocation's error,
/// and the invocation after builds again: only a build that succeeded is kept, so a secret fixed
/// in place, or a service answering again, is taken up without a new cold start.
pub struct ColdStart<T, E> {
    state: tokio::sync::Mutex<Built<T, E>>,
}

enum Built<T, E> {
    Ready(Arc<T>),
    /// The failure not yet reported, if any.
    Failed(Option<E>),
}

impl<T, E> ColdStart<T, E> {
    /// What the cold start built, or why it failed.
    pub fn new(first: Result<T, E>) -> Self {
        let state = match first {
            Ok(t) => Built::Ready(Arc::new(t)),
            Err(e) => Built::Failed(Some(e)),
        };
        Self {
            state: tokio::sync::Mutex::new(state),
        }
    }

    /// What was built; or the cold start's failure, the first time it is asked for; or else
    /// `build` tried again (kept if it succeeds).
    pub async fn get<F, Fut>(&self, build: F) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut state = self.state.lock().await;
        match &mut *state {
            Built::Ready(t) => return Ok(t.clone()),
            Built::Failed(first) => {
                if let Some(e) = first.take() {
                    return Err(e);
                }
            }
        }
        let built = Arc::new(build().await?);
        *state = Built::Ready(built.clone());
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::Endpoint;

    #[tokio::test]
    async fn a_failed_cold_start_is_reported_once_then_built_again_and_kept() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let built = &AtomicU32::new(0);
        let build = move || async move {
            built.fetch_add(1, Ordering::SeqCst);
            Ok::<_, &str>(7)
        };
        let start = ColdStart::new(Err("the secret cannot be read"));
        assert_eq!(
            start.get(build).await.unwrap_err(),
            "the secret cannot be read"
        );
        assert!(start.get(|| async { Err("still not") }).await.is_err());
        assert_eq!(built.load(Ordering::SeqCst), 0);
        assert_eq!(*start.get(build).await.unwrap(), 7);
        assert_eq!(*start.get(build).await.unwrap(), 7);
        assert_eq!(built.load(Ordering::SeqCst), 1);
        let ready = ColdStart::<u32, &str>::new(Ok(1));
        assert_eq!(*ready.get(build).await.unwrap(), 1);
        assert_eq!(built.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_secret_out_of_reach_is_transient_and_a_bad_one_is_the_configuration() {
        use aws_sdk_s3::config::{Credentials as AwsCredentials, SharedCredentialsProvider};
        // Nothing listens on port 1: the read fails at once, without leaving this machine.
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .credentials_provider(SharedCredentialsProvider::new(AwsCredentials::new(
                "AKID", "SECRET", None, None, "test",
            )))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build();
        let secret = CredentialSource::SecretsManager("oss/creds".into());
        let e = oss_credentials(&sdk, &secret).await.unwrap_err();
        assert_eq!(e.kind(), FailureKind::Transient, "{e:?}");
        let text = crate::errors::error_chain(&e);
        assert!(
            text.starts_with("OSS credentials secret oss/creds: "),
            "{text}"
        );
        assert!(std::error::Error::source(&e).is_some());
        let bad = crate::aws::secrets::parse_secret("oss/creds", "not JSON").unwrap_err();
        assert_eq!(SetupError::from(bad).kind(), FailureKind::Configuration);
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
