//! The sync function's configuration: one validated struct read from the environment, with an
//! error that names the variable and the form it expects. Secrets are masked in `Debug`.

use crate::oss::client::{DEFAULT_MEMORY_BUDGET, DEFAULT_PARTS_IN_FLIGHT, DEFAULT_PART_SIZE};
use crate::oss::signing::Credentials;
use crate::oss::{Addressing, Endpoint, Network};
use crate::task::TaskBinding;
use std::time::Duration;

/// A configuration error: which variable, and what is wrong with it; with the other variables
/// found wrong in the same reading, so every one is reported at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong and what is expected.
    pub problem: String,
    /// The other variables found wrong, in the order they were read.
    pub also: Vec<ConfigError>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)?;
        for e in &self.also {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// This error and the others, one per variable.
    pub fn all(&self) -> Vec<&ConfigError> {
        std::iter::once(self).chain(&self.also).collect()
    }

    fn into_all(mut self) -> Vec<ConfigError> {
        let also = std::mem::take(&mut self.also);
        std::iter::once(self).chain(also).collect()
    }
}

pub(crate) fn problem(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
        also: Vec::new(),
    }
}

/// The errors of one reading of the settings, kept so every one is reported.
#[derive(Debug, Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    /// The value read, or `None` with its error kept.
    fn check<T>(&mut self, read: Result<T, ConfigError>) -> Option<T> {
        match read {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.extend(e.into_all());
                None
            }
        }
    }

    /// The value read, or its type's default with its error kept (the default is never used:
    /// [`Self::finish`] then returns the error).
    fn or_default<T: Default>(&mut self, read: Result<T, ConfigError>) -> T {
        self.check(read).unwrap_or_default()
    }

    /// `Ok` when nothing was wrong; else the first error, with the others in `also`.
    fn finish(self) -> Result<(), ConfigError> {
        let mut all = self.0.into_iter();
        match all.next() {
            None => Ok(()),
            Some(mut first) => {
                first.also = all.collect();
                Err(first)
            }
        }
    }
}

/// Where the OSS key pair comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given directly (`OSS_ACCESS_KEY_ID`, `OSS_ACCESS_KEY_SECRET`, `OSS_SECURITY_TOKEN`).
    Static(Credentials),
    /// An AWS Secrets Manager secret (`OSS_CREDENTIALS_SECRET_ID`) holding JSON with
    /// `accessKeyId`, `accessKeySecret` and optionally `securityToken`.
    SecretsManager(String),
}

/// The sync function's settings.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Task id (`TASK_ID`): names the task in records, reports and the results store.
    pub task_id: String,
    /// Path-style S3 requests ([`s3_path_style`]).
    pub s3_path_style: bool,
    /// Which events belong to the task and where they land.
    pub binding: TaskBinding,
    /// OSS endpoint (`OSS_ENDPOINT`, or the public endpoint of `OSS_REGION`).
    pub oss_endpoint: Endpoint,
    /// OSS region id (`OSS_REGION`).
    pub oss_region: String,
    /// OSS credentials.
    pub oss_credentials: CredentialSource,
    /// Results store bucket (`RESULTS_BUCKET`, an S3 bucket).
    pub results_bucket: String,
    /// Results store prefix (`RESULTS_PREFIX`, default `results`).
    pub results_prefix: String,
    /// Whether deletes are synced (`SYNC_DELETES`, default off).
    pub sync_deletes: bool,
    /// Whether object tags are copied (`SYNC_TAGS`, default off; one more S3 request per copy).
    pub sync_tags: bool,
    /// S3 storage class → OSS storage class (`STORAGE_CLASS_MAP`, e.g.
    /// `STANDARD=Standard,STANDARD_IA=IA,GLACIER=Archive`); unmapped classes get the bucket's
    /// default.
    pub storage_classes: Vec<(String, String)>,
    /// Jobs run at once in one invocation (`SYNC_CONCURRENCY`, default [`DEFAULT_CONCURRENCY`]):
    /// by default every job of a batch of up to that many keys is in flight at once; the memory
    /// budget, not this number, bounds the body buffers.
    pub concurrency: usize,
    /// Multipart part size in bytes (`OSS_PART_SIZE_MIB`, default 8).
    pub part_size: u64,
    /// Parts uploaded at once per object (`OSS_PARTS_IN_FLIGHT`, default 4).
    pub parts_in_flight: usize,
    /// Copy rounds when the source keeps changing during a copy (`MAX_COPY_ROUNDS`, default 3).
    pub max_copy_rounds: u32,
    /// Attempts per OSS request, the first included (`OSS_MAX_ATTEMPTS`, default 6).
    pub oss_max_attempts: u32,
    /// The task queue's `maxReceiveCount` (`SQS_MAX_RECEIVE_COUNT`, 1-1000; the template sets it
    /// from the same parameter as the redrive policy; `sync poll` reads it from the queue when
    /// unset): a failure on the last delivery is recorded as final.
    pub max_receive_count: Option<u32>,
    /// Bytes of upload buffers all jobs of the process may hold at once (part buffers in
    /// flight, PutObject bodies buffered for their MD5). `SYNC_MEMORY_BUDGET_MIB` if set;
    /// otherwise, in Lambda, the function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`) less
    /// [`FIXED_OVERHEAD_MIB`]; otherwise 256 MiB. At least one part.
    pub memory_budget: u64,
    /// The sync function's timeout (`SYNC_FUNCTION_TIMEOUT_SECONDS`, 1-900, default 900; the
    /// template sets it): with the batching window, how long a delivery may still be running.
    pub function_timeout: Duration,
    /// The event source mapping's batching window (`SYNC_BATCH_WINDOW_SECONDS`, 0-300, default 0).
    pub batching_window: Duration,
    /// The task queue's URL for rechecks (`SYNC_QUEUE_URL`; found from each message's
    /// `eventSourceARN` when unset).
    pub queue_url: Option<String>,
    /// Objects larger than this are copied by range jobs on several function instances
    /// (`FANOUT_THRESHOLD_MIB`, default 8192 = 8 GiB; 0 turns fan-out off).
    pub fan_out_threshold: Option<u64>,
    /// Bytes per range job (`FANOUT_RANGE_MIB`, default 1024, at least one part).
    pub fan_out_range: u64,
}

/// Memory the sync process needs besides its upload buffers, MiB: the runtime, the AWS SDK and
/// OSS clients, connections and their buffers, the jobs' state.
///
/// Measured as the process's peak resident set (`VmHWM`) with no large body in memory: the sync
/// binary (release) after start-up and through two small events peaked at 16.2 MiB (the
/// cold-start benchmark, BENCHMARKS.md §4); a handler process through 10,000 events of 4 KiB,
/// every job of each batch of 10 at once, at 39.8 MiB (§3); the 1 GiB copy's memory beyond its part buffers was
/// 21.0 MiB for one job (§2); a batch of ten 100 MiB objects, all ten jobs at once, peaked
/// 24.8 to 40.3 MiB beyond the buffers the budget allowed (§7); and eight jobs of 40 MiB objects
/// against a slow OSS had peaked about 40 MiB beyond their 256 MiB of part buffers. 48 MiB
/// covers the last with room for the allocator; §7 checks each budget against the memory.
pub const FIXED_OVERHEAD_MIB: u64 = 48;

/// Jobs at once per invocation by default: all of a batch's, up to this many. A cap, not a
/// pace: the memory budget bounds what the jobs buffer, and 256 jobs with a connection or two
/// each stay well inside Lambda's 1,024 file descriptors.
pub const DEFAULT_CONCURRENCY: usize = 256;

/// The upload buffer budget, bytes: `SYNC_MEMORY_BUDGET_MIB`, else the Lambda function's memory
/// less [`FIXED_OVERHEAD_MIB`], else [`DEFAULT_MEMORY_BUDGET`]; refused if smaller than one part.
fn memory_budget(
    get: &impl Fn(&str) -> Option<String>,
    part_size: u64,
) -> Result<u64, ConfigError> {
    const MIB: u64 = 1024 * 1024;
    let set = |name: &'static str| {
        get(name)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    let (variable, budget) = if let Some((name, v)) = set("SYNC_MEMORY_BUDGET_MIB") {
        (name, parse_range(name, v.trim(), 1, 1024 * 1024)? * MIB)
    } else if let Some((name, v)) = set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
        let memory = parse_range(name, v.trim(), 1, 1024 * 1024)?;
        (name, memory.saturating_sub(FIXED_OVERHEAD_MIB) * MIB)
    } else {
        return Ok(DEFAULT_MEMORY_BUDGET.max(part_size));
    };
    if budget < part_size {
        return Err(problem(
            variable,
            format!(
                "leaves {} MiB for upload buffers ({FIXED_OVERHEAD_MIB} MiB of the function's \
                 memory are the process's own), less than one part of {} MiB \
                 (OSS_PART_SIZE_MIB); raise the memory or lower the part size",
                budget / MIB,
                part_size / MIB
            ),
        ));
    }
    Ok(budget)
}

const OSS_STORAGE_CLASSES: [&str; 5] = [
    "Standard",
    "IA",
    "Archive",
    "ColdArchive",
    "DeepColdArchive",
];

fn parse_bool(variable: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(problem(
            variable,
            format!("{v:?} is not a boolean (true or false)"),
        )),
    }
}

/// Whether S3 requests are path-style (`S3_PATH_STYLE`, a boolean). Unset, they are when
/// `AWS_ENDPOINT_URL` points at an IP address or `localhost` (a local S3-compatible server), and
/// virtual-hosted otherwise, as AWS expects.
pub fn s3_path_style(get: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    match get("S3_PATH_STYLE").filter(|v| !v.trim().is_empty()) {
        Some(v) => parse_bool("S3_PATH_STYLE", v.trim()),
        None => Ok(get("AWS_ENDPOINT_URL")
            .and_then(|u| Endpoint::custom(&u, Addressing::PathStyle, true).ok())
            .is_some_and(|e| e.is_ip_or_localhost())),
    }
}

fn parse_range(variable: &'static str, v: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            problem(
                variable,
                format!("{v:?} is not a whole number from {min} to {max}"),
            )
        })
}

/// Checks a task id: 1–64 of letters, digits, `.`, `_` and `-` (it appears in keys and paths).
pub fn check_task_id(variable: &'static str, v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && v != "."
        && v != "..";
    if ok {
        Ok(v.to_owned())
    } else {
        Err(problem(
            variable,
            format!("{v:?} must be 1-64 letters, digits, '.', '_' or '-'"),
        ))
    }
}

/// Checks a key prefix: kept as given (it may end in `/` or be part of a name), but never starting
/// with `/` or a backslash, which OSS keys cannot.
fn prefix(variable: &'static str, v: Option<String>) -> Result<String, ConfigError> {
    let v = v.unwrap_or_default();
    if v.starts_with('/') || v.starts_with('\\') {
        return Err(problem(
            variable,
            format!("{v:?} must not start with '/' or '\\'"),
        ));
    }
    Ok(v)
}

/// The report area of the destination bucket: `<REPORT_PREFIX>/`, or `<task>/` with an empty
/// `REPORT_PREFIX` (the report writes only under `<REPORT_PREFIX>/<task>/`).
pub fn report_area(report_prefix: &str, task: &str) -> String {
    let root = report_prefix.trim_matches('/');
    if root.is_empty() {
        format!("{task}/")
    } else {
        format!("{root}/")
    }
}

/// Refuses a non-empty `DEST_PREFIX` that overlaps the report area (one a prefix of the other):
/// synced objects would land among the report's files (a synced `manifest.json` would stop the
/// reports; the report's clean-up would meet user objects). An empty `DEST_PREFIX` shares the
/// bucket root with the reports: then the sync function filters the keys in the area
/// ([`TaskBinding::report_area`]).
pub fn check_report_area(
    dest_prefix: &str,
    report_prefix: &str,
    task: &str,
) -> Result<(), ConfigError> {
    let area = report_area(report_prefix, task);
    if !dest_prefix.is_empty()
        && (area.starts_with(dest_prefix) || dest_prefix.starts_with(area.as_str()))
    {
        return Err(problem(
            "REPORT_PREFIX",
            format!(
                "the report area {area:?} overlaps DEST_PREFIX {dest_prefix:?}: synced objects \
                 would land among the report's files; choose a REPORT_PREFIX outside \
                 DEST_PREFIX (and DEST_PREFIX outside it)"
            ),
        ));
    }
    Ok(())
}

/// `REPORT_PREFIX` without surrounding `/`, default `reports`.
fn report_prefix(get: &impl Fn(&str) -> Option<String>) -> String {
    get("REPORT_PREFIX")
        .unwrap_or_else(|| "reports".into())
        .trim_matches('/')
        .to_owned()
}

/// Reads the S3 bucket naming rules loosely: 3–63 of lower-case letters, digits, `.` and `-`.
fn bucket(variable: &'static str, v: &str) -> Result<String, ConfigError> {
    let ok = (3..=63).contains(&v.len())
        && v.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    if ok {
        Ok(v.to_owned())
    } else {
        Err(problem(
            variable,
            format!("{v:?} is not a bucket name (3-63 of a-z, 0-9, '.', '-')"),
        ))
    }
}

/// A required, non-empty variable.
fn required(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    what: &str,
) -> Result<String, ConfigError> {
    get(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| problem(name, format!("is required ({what})")))
}

/// A whole number within bounds, or its default.
fn number(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    get(name)
        .map(|v| parse_range(name, &v, min, max))
        .transpose()
        .map(|n| n.unwrap_or(default))
}

/// The OSS endpoint and credentials shared by the sync and report functions.
#[derive(Debug, Clone)]
pub struct OssSettings {
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Region id.
    pub region: String,
    /// Credentials.
    pub credentials: CredentialSource,
}

impl OssSettings {
    /// Reads `OSS_ENDPOINT`, `OSS_REGION`, `OSS_NETWORK`, `OSS_PATH_STYLE`, `OSS_ALLOW_HTTP` and
    /// the credential variables.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let endpoint = p.check(Self::endpoint(get));
        let credentials = p.check(Self::credentials(get));
        p.finish()?;
        let (Some((endpoint, region)), Some(credentials)) = (endpoint, credentials) else {
            unreachable!("every setting read without a problem")
        };
        Ok(Self {
            endpoint,
            region,
            credentials,
        })
    }

    /// The endpoint and the region id.
    fn endpoint(get: &impl Fn(&str) -> Option<String>) -> Result<(Endpoint, String), ConfigError> {
        let region = get("OSS_REGION")
            .filter(|v| !v.is_empty())
            .ok_or_else(|| problem("OSS_REGION", "is required (a region id like cn-hangzhou)"))?;
        // The endpoint's host name spells a region `oss-cn-hangzhou`; the signature's scope needs
        // the id, `cn-hangzhou`. Either is taken, and the id kept for both.
        let region = match region.strip_prefix("oss-") {
            Some(id) => id.to_owned(),
            None => region,
        };
        let allow_http = get("OSS_ALLOW_HTTP")
            .map(|v| parse_bool("OSS_ALLOW_HTTP", &v))
            .transpose()?
            .unwrap_or(false);
        let endpoint = match get("OSS_ENDPOINT").filter(|v| !v.is_empty()) {
            Some(url) => {
                let path_style = get("OSS_PATH_STYLE")
                    .map(|v| parse_bool("OSS_PATH_STYLE", &v))
                    .transpose()?;
                let probe = Endpoint::custom(&url, Addressing::VirtualHosted, allow_http)
                    .map_err(|e| problem("OSS_ENDPOINT", e.to_string()))?;
                let path_style = path_style.unwrap_or_else(|| probe.is_ip_or_localhost());
                let addressing = if path_style {
                    Addressing::PathStyle
                } else {
                    Addressing::VirtualHosted
                };
                Endpoint::custom(&url, addressing, allow_http)
                    .map_err(|e| problem("OSS_ENDPOINT", e.to_string()))?
            }
            None => {
                let network = match get("OSS_NETWORK").as_deref().unwrap_or("public") {
                    "public" => Network::Public,
                    "internal" => Network::Internal,
                    "accelerate" => Network::Accelerate,
                    "dualstack" => Network::DualStack,
                    other => {
                        return Err(problem(
                            "OSS_NETWORK",
                            format!("{other:?} is not public, internal, accelerate or dualstack"),
                        ))
                    }
                };
                Endpoint::for_region(&region, network)
                    .map_err(|e| problem("OSS_REGION", e.to_string()))?
            }
        };
        Ok((endpoint, region))
    }

    /// Where the key pair comes from.
    fn credentials(get: &impl Fn(&str) -> Option<String>) -> Result<CredentialSource, ConfigError> {
        let id = get("OSS_ACCESS_KEY_ID").filter(|v| !v.is_empty());
        let secret = get("OSS_ACCESS_KEY_SECRET").filter(|v| !v.is_empty());
        let token = get("OSS_SECURITY_TOKEN").filter(|v| !v.is_empty());
        let secret_id = get("OSS_CREDENTIALS_SECRET_ID").filter(|v| !v.is_empty());
        let credentials = match (id, secret, secret_id) {
            (Some(_), Some(_), Some(_)) => {
                return Err(problem(
                    "OSS_CREDENTIALS_SECRET_ID",
                    "set either it or OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET, not both",
                ))
            }
            (Some(id), Some(secret), None) => {
                CredentialSource::Static(Credentials::new(id, secret, token))
            }
            (None, None, Some(s)) => CredentialSource::SecretsManager(s),
            (Some(_), None, _) => {
                return Err(problem(
                    "OSS_ACCESS_KEY_SECRET",
                    "is required with OSS_ACCESS_KEY_ID",
                ))
            }
            (None, Some(_), _) => {
                return Err(problem(
                    "OSS_ACCESS_KEY_ID",
                    "is required with OSS_ACCESS_KEY_SECRET",
                ))
            }
            (None, None, None) => {
                return Err(problem(
                    "OSS_CREDENTIALS_SECRET_ID",
                    "OSS credentials are required: a Secrets Manager secret id, or \
                     OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET",
                ))
            }
        };
        Ok(credentials)
    }
}

/// The source bucket (`SOURCE_BUCKET`), required and checked: what a scheduled verification
/// lists.
pub fn source_bucket(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    bucket(
        "SOURCE_BUCKET",
        &required(get, "SOURCE_BUCKET", "an S3 bucket name")?,
    )
}

/// The task's binding from `SOURCE_PREFIX`, `DEST_PREFIX`, `REPORT_PREFIX` and
/// `STRIP_SOURCE_PREFIX` (the buckets given): how the sync function maps keys, and how a
/// verification maps them the same way.
pub fn task_binding(
    get: &impl Fn(&str) -> Option<String>,
    task_id: &str,
    source_bucket: String,
    dest_bucket: String,
) -> Result<TaskBinding, ConfigError> {
    let source_prefix = prefix("SOURCE_PREFIX", get("SOURCE_PREFIX"))?;
    let dest_prefix = prefix("DEST_PREFIX", get("DEST_PREFIX"))?;
    let report_prefix = report_prefix(get);
    check_report_area(&dest_prefix, &report_prefix, task_id)?;
    let strip = get("STRIP_SOURCE_PREFIX")
        .map(|v| parse_bool("STRIP_SOURCE_PREFIX", &v))
        .transpose()?
        .unwrap_or(false);
    Ok(TaskBinding {
        source_bucket,
        source_prefix,
        dest_bucket,
        report_area: Some(report_area(&report_prefix, task_id)),
        dest_prefix,
        strip_source_prefix: strip,
    })
}

impl SyncConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through a lookup function (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let task_id = p.or_default(
            required(&get, "TASK_ID", "the task's id").and_then(|v| check_task_id("TASK_ID", &v)),
        );
        let source_bucket = p.or_default(
            required(&get, "SOURCE_BUCKET", "an S3 bucket name")
                .and_then(|v| bucket("SOURCE_BUCKET", &v)),
        );
        let dest_bucket = p.or_default(
            required(&get, "DEST_BUCKET", "an OSS bucket name")
                .and_then(|v| bucket("DEST_BUCKET", &v)),
        );
        // Read with stand-ins where those were wrong, so the prefixes' own problems show too.
        let binding = p.check(task_binding(
            &get,
            if task_id.is_empty() { "task" } else { &task_id },
            source_bucket,
            dest_bucket,
        ));
        let oss = p.check(OssSettings::from_lookup(&get));
        let results_bucket = p.or_default(
            required(&get, "RESULTS_BUCKET", "an S3 bucket name")
                .and_then(|v| bucket("RESULTS_BUCKET", &v)),
        );
        let results_prefix = get("RESULTS_PREFIX").unwrap_or_else(|| "results".into());
        let results_prefix = results_prefix.trim_matches('/').to_owned();
        let flag = |name: &'static str| {
            get(name)
                .map(|v| parse_bool(name, &v))
                .transpose()
                .map(|b| b.unwrap_or(false))
        };
        let storage_classes =
            p.or_default(match get("STORAGE_CLASS_MAP").filter(|v| !v.is_empty()) {
                None => Ok(Vec::new()),
                Some(v) => parse_storage_classes(&v),
            });
        let part_size = p.or_default(
            number(
                &get,
                "OSS_PART_SIZE_MIB",
                DEFAULT_PART_SIZE >> 20,
                1,
                5 * 1024,
            )
            .map(|n| n << 20),
        );
        let memory_budget = p.or_default(memory_budget(
            &get,
            // A part size that could not be read is reported; the budget is read against the
            // default meanwhile.
            if part_size == 0 {
                DEFAULT_PART_SIZE
            } else {
                part_size
            },
        ));
        let sync_deletes = p.or_default(flag("SYNC_DELETES"));
        let sync_tags = p.or_default(flag("SYNC_TAGS"));
        let concurrency = p.or_default(number(
            &get,
            "SYNC_CONCURRENCY",
            DEFAULT_CONCURRENCY as u64,
            1,
            256,
        ));
        let parts_in_flight = p.or_default(number(
            &get,
            "OSS_PARTS_IN_FLIGHT",
            DEFAULT_PARTS_IN_FLIGHT as u64,
            1,
            64,
        ));
        let max_copy_rounds = p.or_default(number(&get, "MAX_COPY_ROUNDS", 3, 1, 10));
        let max_receive_count = p.or_default(
            get("SQS_MAX_RECEIVE_COUNT")
                .filter(|v| !v.is_empty())
                .map(|v| parse_range("SQS_MAX_RECEIVE_COUNT", &v, 1, 1000).map(|n| n as u32))
                .transpose(),
        );
        let oss_max_attempts = p.or_default(number(&get, "OSS_MAX_ATTEMPTS", 6, 1, 20));
        let function_timeout =
            p.or_default(number(&get, "SYNC_FUNCTION_TIMEOUT_SECONDS", 900, 1, 900));
        let batching_window = p.or_default(number(&get, "SYNC_BATCH_WINDOW_SECONDS", 0, 0, 300));
        let fan_out_threshold =
            p.or_default(number(&get, "FANOUT_THRESHOLD_MIB", 8192, 0, 50 << 20));
        let fan_out_range = p.or_default(number(&get, "FANOUT_RANGE_MIB", 1024, 1, 1 << 20));
        let s3_path_style = p.or_default(s3_path_style(&get));
        p.finish()?;
        let (Some(binding), Some(oss)) = (binding, oss) else {
            unreachable!("every setting read without a problem")
        };
        Ok(Self {
            task_id,
            s3_path_style,
            binding,
            oss_endpoint: oss.endpoint,
            oss_region: oss.region,
            oss_credentials: oss.credentials,
            results_bucket,
            results_prefix,
            sync_deletes,
            sync_tags,
            storage_classes,
            concurrency: concurrency as usize,
            part_size,
            parts_in_flight: parts_in_flight as usize,
            max_copy_rounds: max_copy_rounds as u32,
            max_receive_count,
            oss_max_attempts: oss_max_attempts as u32,
            memory_budget,
            function_timeout: Duration::from_secs(function_timeout),
            batching_window: Duration::from_secs(batching_window),
            queue_url: get("SYNC_QUEUE_URL").filter(|v| !v.trim().is_empty()),
            fan_out_threshold: Some(fan_out_threshold << 20).filter(|&t| t > 0),
            fan_out_range: fan_out_range << 20,
        })
    }
}

fn parse_storage_classes(v: &str) -> Result<Vec<(String, String)>, ConfigError> {
    v.split(',')
        .map(|pair| {
            let (s3, oss) = pair.split_once('=').ok_or_else(|| {
                problem(
                    "STORAGE_CLASS_MAP",
                    format!("{pair:?} is not S3CLASS=OssClass"),
                )
            })?;
            let (s3, oss) = (s3.trim(), oss.trim());
            if !OSS_STORAGE_CLASSES.contains(&oss) {
                return Err(problem(
                    "STORAGE_CLASS_MAP",
                    format!(
                        "{oss:?} is not an OSS storage class ({})",
                        OSS_STORAGE_CLASSES.join(", ")
                    ),
                ));
            }
            Ok((s3.to_owned(), oss.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, String> {
        [
            ("TASK_ID", "t1"),
            ("SOURCE_BUCKET", "src"),
            ("DEST_BUCKET", "dst"),
            ("OSS_REGION", "cn-hangzhou"),
            ("OSS_ACCESS_KEY_ID", "AK"),
            ("OSS_ACCESS_KEY_SECRET", "very-secret-value"),
            ("RESULTS_BUCKET", "results-bucket"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect()
    }

    fn load(env: &HashMap<&'static str, String>) -> Result<SyncConfig, ConfigError> {
        SyncConfig::from_lookup(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = load(&base()).unwrap();
        assert_eq!(
            c.oss_endpoint.base(),
            "https://oss-cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(c.oss_endpoint.addressing(), Addressing::VirtualHosted);
        assert!(!c.sync_deletes && !c.sync_tags);
        assert_eq!(
            (c.concurrency, c.part_size, c.parts_in_flight),
            (DEFAULT_CONCURRENCY, 8 << 20, 4)
        );
        assert_eq!(c.results_prefix, "results");
        assert!(!format!("{c:?}").contains("very-secret-value"));
    }

    #[test]
    fn every_wrong_variable_is_reported_at_once() {
        let mut env = base();
        env.insert("TASK_ID", "no spaces allowed".into());
        env.insert("SYNC_CONCURRENCY", "0".into());
        env.insert("STORAGE_CLASS_MAP", "STANDARD".into());
        env.remove("OSS_REGION");
        env.remove("OSS_ACCESS_KEY_SECRET");
        let e = load(&env).unwrap_err();
        let variables: Vec<&str> = e.all().iter().map(|e| e.variable).collect();
        assert_eq!(
            variables,
            [
                "TASK_ID",
                "OSS_REGION",
                "OSS_ACCESS_KEY_SECRET",
                "STORAGE_CLASS_MAP",
                "SYNC_CONCURRENCY"
            ]
        );
        let text = e.to_string();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.lines().all(|l| l.contains(": ")), "{text}");
        // The report function's reading too.
        let mut env: HashMap<&str, String> = base();
        env.insert("REPORT_GRACE", "forever".into());
        env.insert("TASK_QUEUE_URL", "queue".into());
        let e = ReportConfig::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        let variables: Vec<&str> = e.all().iter().map(|e| e.variable).collect();
        assert_eq!(variables, ["REPORT_GRACE", "TASK_QUEUE_URL"]);
    }

    #[test]
    fn a_region_spelt_as_in_the_host_name_is_signed_with_its_id() {
        let mut env = base();
        env.insert("OSS_REGION", "oss-cn-hangzhou".into());
        let c = load(&env).unwrap();
        assert_eq!(c.oss_region, "cn-hangzhou");
        assert_eq!(
            c.oss_endpoint.base(),
            "https://oss-cn-hangzhou.aliyuncs.com"
        );
    }

    #[test]
    fn the_sync_function_keeps_out_of_the_report_area() {
        let c = load(&base()).unwrap();
        assert_eq!(c.binding.report_area.as_deref(), Some("reports/"));
        let mut env = base();
        env.insert("REPORT_PREFIX", "audit/".into());
        let c = load(&env).unwrap();
        assert_eq!(c.binding.report_area.as_deref(), Some("audit/"));
        env.insert("DEST_PREFIX", "audit/mirror/".into());
        let e = load(&env).unwrap_err();
        assert_eq!(e.variable, "REPORT_PREFIX");
        assert!(e.problem.contains("overlaps DEST_PREFIX"), "{e}");
        env.insert("DEST_PREFIX", "mirror/".into());
        assert!(load(&env).is_ok());
    }

    #[test]
    fn memory_budget_from_the_setting_the_function_memory_or_the_default() {
        const MIB: u64 = 1024 * 1024;
        let mut env = base();
        assert_eq!(load(&env).unwrap().memory_budget, 256 * MIB);
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into());
        assert_eq!(
            load(&env).unwrap().memory_budget,
            (128 - FIXED_OVERHEAD_MIB) * MIB
        );
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024".into());
        assert_eq!(
            load(&env).unwrap().memory_budget,
            (1024 - FIXED_OVERHEAD_MIB) * MIB
        );
        env.insert("SYNC_MEMORY_BUDGET_MIB", "100".into());
        assert_eq!(load(&env).unwrap().memory_budget, 100 * MIB);
        env.insert("SYNC_MEMORY_BUDGET_MIB", "".into());
        assert_eq!(
            load(&env).unwrap().memory_budget,
            (1024 - FIXED_OVERHEAD_MIB) * MIB,
            "empty means unset"
        );
        // Smaller than one part: refused, naming the variable that decided it.
        env.insert("SYNC_MEMORY_BUDGET_MIB", "4".into());
        let e = load(&env).unwrap_err();
        assert_eq!(e.variable, "SYNC_MEMORY_BUDGET_MIB");
        assert!(e.problem.contains("less than one part of 8 MiB"), "{e}");
        env.remove("SYNC_MEMORY_BUDGET_MIB");
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into());
        env.insert("OSS_PART_SIZE_MIB", "100".into());
        let e = load(&env).unwrap_err();
        assert_eq!(e.variable, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "{e}");
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "40".into());
        env.remove("OSS_PART_SIZE_MIB");
        assert_eq!(
            load(&env).unwrap_err().variable,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
        );
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots".into());
        assert_eq!(
            load(&env).unwrap_err().variable,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
        );
    }

    #[test]
    fn local_endpoints_are_path_style_and_http_must_be_allowed() {
        let mut env = base();
        env.insert("OSS_ENDPOINT", "http://127.0.0.1:9000".into());
        assert_eq!(load(&env).unwrap_err().variable, "OSS_ENDPOINT");
        env.insert("OSS_ALLOW_HTTP", "true".into());
        assert_eq!(
            load(&env).unwrap().oss_endpoint.addressing(),
            Addressing::PathStyle
        );
        env.insert("OSS_PATH_STYLE", "off".into());
        assert_eq!(
            load(&env).unwrap().oss_endpoint.addressing(),
            Addressing::VirtualHosted
        );
    }

    #[test]
    fn s3_path_style_is_read_with_the_other_settings() {
        let mut env = base();
        assert!(!load(&env).unwrap().s3_path_style);
        // A local S3-compatible server is reached path-style unless told otherwise.
        env.insert("AWS_ENDPOINT_URL", "http://127.0.0.1:5000".into());
        assert!(load(&env).unwrap().s3_path_style);
        env.insert("S3_PATH_STYLE", "false".into());
        assert!(!load(&env).unwrap().s3_path_style);
        env.insert("AWS_ENDPOINT_URL", "https://s3.example.com".into());
        env.insert("S3_PATH_STYLE", "Yes".into());
        assert!(load(&env).unwrap().s3_path_style);
        // A wrong value is one of the problems reported together, by all three readers.
        env.insert("S3_PATH_STYLE", "sometimes".into());
        env.insert("SYNC_CONCURRENCY", "0".into());
        let e = load(&env).unwrap_err();
        let variables: Vec<&str> = e.all().iter().map(|e| e.variable).collect();
        assert_eq!(variables, ["SYNC_CONCURRENCY", "S3_PATH_STYLE"]);
        assert!(
            e.to_string().contains("\"sometimes\" is not a boolean"),
            "{e}"
        );
        let e = ReportConfig::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert_eq!(e.variable, "S3_PATH_STYLE");
        let mut control: HashMap<&str, String> = HashMap::from([
            ("TASK_ID", "t1".into()),
            ("SOURCE_BUCKET", "src".into()),
            (
                "TASK_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/t1".into(),
            ),
            ("S3_PATH_STYLE", "1".into()),
        ]);
        assert!(
            ControlConfig::from_lookup(|k| control.get(k).cloned())
                .unwrap()
                .s3_path_style
        );
        control.insert("S3_PATH_STYLE", "maybe".into());
        let e = ControlConfig::from_lookup(|k| control.get(k).cloned()).unwrap_err();
        assert_eq!(e.variable, "S3_PATH_STYLE");
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: [(&str, Option<&str>, &str); 9] = [
            ("TASK_ID", None, "TASK_ID"),
            ("TASK_ID", Some("a/b"), "TASK_ID"),
            ("SOURCE_BUCKET", Some("Bad_Bucket"), "SOURCE_BUCKET"),
            ("SOURCE_PREFIX", Some("/x"), "SOURCE_PREFIX"),
            ("SYNC_DELETES", Some("maybe"), "SYNC_DELETES"),
            ("SYNC_CONCURRENCY", Some("0"), "SYNC_CONCURRENCY"),
            ("OSS_ACCESS_KEY_SECRET", None, "OSS_ACCESS_KEY_SECRET"),
            (
                "STORAGE_CLASS_MAP",
                Some("GLACIER=Frozen"),
                "STORAGE_CLASS_MAP",
            ),
            ("OSS_REGION", Some("Hangzhou!"), "OSS_REGION"),
        ];
        for (var, value, named) in cases {
            let mut env = base();
            match value {
                Some(v) => env.insert(var, v.into()),
                None => env.remove(var),
            };
            let e = load(&env).unwrap_err();
            assert_eq!(e.variable, named, "{var}={value:?}: {e}");
            assert!(!e.to_string().contains("very-secret-value"));
        }
    }

    #[test]
    fn credentials_from_secrets_manager_exclusive_of_a_key_pair() {
        let mut env = base();
        env.insert("OSS_CREDENTIALS_SECRET_ID", "arn:secret".into());
        assert_eq!(
            load(&env).unwrap_err().variable,
            "OSS_CREDENTIALS_SECRET_ID"
        );
        env.remove("OSS_ACCESS_KEY_ID");
        env.remove("OSS_ACCESS_KEY_SECRET");
        assert_eq!(
            load(&env).unwrap().oss_credentials,
            CredentialSource::SecretsManager("arn:secret".into())
        );
    }

    #[test]
    fn storage_class_map() {
        let mut env = base();
        env.insert(
            "STORAGE_CLASS_MAP",
            "STANDARD=Standard, GLACIER=Archive".into(),
        );
        let c = load(&env).unwrap();
        assert_eq!(c.storage_classes[1], ("GLACIER".into(), "Archive".into()));
    }
}

/// Minutes from `30m`, `2h` or a bare number of minutes.
fn parse_minutes(v: &str) -> Option<u64> {
    let v = v.trim();
    if let Some(h) = v.strip_suffix('h') {
        h.parse::<u64>().ok()?.checked_mul(60)
    } else {
        v.strip_suffix('m').unwrap_or(v).parse().ok()
    }
}

/// The report function's settings.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// Task id (`TASK_ID`).
    pub task_id: String,
    /// Path-style S3 requests ([`s3_path_style`]).
    pub s3_path_style: bool,
    /// Results store bucket (`RESULTS_BUCKET`) and prefix (`RESULTS_PREFIX`, default `results`).
    pub results_bucket: String,
    /// Results store prefix.
    pub results_prefix: String,
    /// The OSS bucket reports are written to (`DEST_BUCKET`).
    pub dest_bucket: String,
    /// OSS endpoint and credentials, as for the sync function.
    pub oss: OssSettings,
    /// Report prefix (`REPORT_PREFIX`, default `reports`); with a non-empty `DEST_PREFIX`,
    /// neither may lie inside the other ([`check_report_area`]).
    pub report_prefix: String,
    /// How long a run's lease lasts, minutes (`REPORT_LEASE_MINUTES`, 20 to 1440, default 30):
    /// longer than the report function's timeout (15 minutes); a local run stops writing
    /// [`crate::report::lease::LEASE_MARGIN`] before it ends.
    pub lease_minutes: u64,
    /// The zone days are counted in (`REPORT_TIME_ZONE`: an IANA name such as `Asia/Shanghai`,
    /// or an offset; the older `REPORT_UTC_OFFSET` takes an offset; default `+00:00`).
    pub zone: crate::report::day::Zone,
    /// Minutes after a day's end before it is complete (`REPORT_GRACE`: `30m`, `1h` or minutes;
    /// default 30 minutes); must
    /// be longer than the sync function's timeout.
    pub grace_minutes: u64,
    /// Largest CSV part (`REPORT_PART_MIB`, default 32).
    pub part_bytes: usize,
    /// Memory for sorting before spilling to disk (`REPORT_SORT_MEMORY_MIB`, default 128).
    pub sort_budget: usize,
    /// Results objects read at once (`REPORT_PARALLEL_READS`, default 32).
    pub parallel_reads: usize,
    /// An S3 bucket that receives a second copy of every report file (`REPORT_S3_BUCKET`).
    pub report_s3_bucket: Option<String>,
    /// The task's destination prefix (`DEST_PREFIX`, may be empty): where the upload sweep that
    /// follows every report run looks.
    pub dest_prefix: String,
    /// Hours after which a multipart upload under the destination prefix is stale and aborted by
    /// that sweep (`UPLOAD_SWEEP_AGE_HOURS`, 1 to 720, default 24).
    pub upload_sweep_age_hours: u64,
    /// The id of the sync function's event source mapping on the task queue, which each run
    /// looks at to note paused periods (`SYNC_EVENT_SOURCE_MAPPING`; unset: none noted).
    pub event_source_mapping: Option<String>,
    /// The task queue (`TASK_QUEUE_URL`, optional): its depth goes into a paused period's reason.
    pub task_queue_url: Option<String>,
}

/// `UPLOAD_SWEEP_AGE_HOURS`: whole hours from [`crate::sweep::MIN_AGE_HOURS`] (above the longest
/// sync invocation) to [`crate::sweep::MAX_AGE_HOURS`], default
/// [`crate::sweep::DEFAULT_AGE_HOURS`].
fn upload_sweep_age_hours(get: &impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
    use crate::sweep::{DEFAULT_AGE_HOURS, MAX_AGE_HOURS, MIN_AGE_HOURS};
    number(
        get,
        "UPLOAD_SWEEP_AGE_HOURS",
        DEFAULT_AGE_HOURS,
        MIN_AGE_HOURS,
        MAX_AGE_HOURS,
    )
}

/// The report's zone from `REPORT_TIME_ZONE` (a name or an offset) and `REPORT_UTC_OFFSET` (an
/// offset, kept for existing deployments); empty values are unset (the template passes both).
/// Both set to different zones is an error: which one is meant cannot be guessed.
fn report_zone(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<crate::report::day::Zone, ConfigError> {
    use crate::report::day::{parse_offset, Zone};
    let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
    let named = set("REPORT_TIME_ZONE")
        .map(|v| Zone::parse(&v).map_err(|e| problem("REPORT_TIME_ZONE", e)))
        .transpose()?;
    let offset = set("REPORT_UTC_OFFSET")
        .map(|v| {
            parse_offset(&v)
                .map(Zone::fixed)
                .map_err(|e| problem("REPORT_UTC_OFFSET", e))
        })
        .transpose()?;
    match (named, offset) {
        (Some(z), Some(o)) if z != o => Err(problem(
            "REPORT_TIME_ZONE",
            format!(
                "{z} differs from REPORT_UTC_OFFSET {o}: set only REPORT_TIME_ZONE (REPORT_UTC_OFFSET is the older name for an offset)"
            ),
        )),
        (Some(z), _) | (None, Some(z)) => Ok(z),
        (None, None) => Ok(Zone::default()),
    }
}

impl ReportConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through a lookup function.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let zone = p.check(report_zone(&get));
        let task_id = p.or_default(
            required(&get, "TASK_ID", "the task's id").and_then(|v| check_task_id("TASK_ID", &v)),
        );
        let dest_prefix = p.or_default(prefix("DEST_PREFIX", get("DEST_PREFIX")));
        let report_prefix = report_prefix(&get);
        p.check(check_report_area(
            &dest_prefix,
            &report_prefix,
            if task_id.is_empty() { "task" } else { &task_id },
        ));
        let results_bucket = p.or_default(
            required(&get, "RESULTS_BUCKET", "an S3 bucket name")
                .and_then(|v| bucket("RESULTS_BUCKET", &v)),
        );
        let dest_bucket = p.or_default(
            required(&get, "DEST_BUCKET", "an OSS bucket name")
                .and_then(|v| bucket("DEST_BUCKET", &v)),
        );
        let oss = p.check(OssSettings::from_lookup(&get));
        let lease_minutes = p.or_default(number(&get, "REPORT_LEASE_MINUTES", 30, 20, 24 * 60));
        let grace_minutes = p.or_default(match get("REPORT_GRACE") {
            None => Ok(30),
            Some(v) => parse_minutes(&v)
                .filter(|m| (1..=24 * 60).contains(m))
                .ok_or_else(|| {
                    problem(
                        "REPORT_GRACE",
                        format!("{v:?} is not 1m to 24h (like 30m, 1h, 45)"),
                    )
                }),
        });
        let part_mib = p.or_default(number(&get, "REPORT_PART_MIB", 32, 1, 1024));
        let sort_mib = p.or_default(number(&get, "REPORT_SORT_MEMORY_MIB", 128, 8, 8192));
        let parallel_reads = p.or_default(number(&get, "REPORT_PARALLEL_READS", 32, 1, 256));
        let report_s3_bucket = p.or_default(
            get("REPORT_S3_BUCKET")
                .filter(|v| !v.is_empty())
                .map(|v| bucket("REPORT_S3_BUCKET", &v))
                .transpose(),
        );
        let upload_sweep_age_hours = p.or_default(upload_sweep_age_hours(&get));
        let task_queue_url = p.or_default(match get("TASK_QUEUE_URL").filter(|v| !v.trim().is_empty()) {
            Some(q) if !(q.starts_with("https://") || q.starts_with("http://")) => Err(problem(
                "TASK_QUEUE_URL",
                format!("{q:?} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"),
            )),
            q => Ok(q),
        });
        let s3_path_style = p.or_default(s3_path_style(&get));
        p.finish()?;
        let (Some(zone), Some(oss)) = (zone, oss) else {
            unreachable!("every setting read without a problem")
        };
        Ok(Self {
            task_id,
            s3_path_style,
            results_bucket,
            results_prefix: get("RESULTS_PREFIX")
                .unwrap_or_else(|| "results".into())
                .trim_matches('/')
                .to_owned(),
            dest_bucket,
            oss,
            report_prefix,
            lease_minutes,
            zone,
            grace_minutes,
            part_bytes: part_mib as usize * (1 << 20),
            sort_budget: sort_mib as usize * (1 << 20),
            parallel_reads: parallel_reads as usize,
            report_s3_bucket,
            dest_prefix,
            upload_sweep_age_hours,
            event_source_mapping: get("SYNC_EVENT_SOURCE_MAPPING")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty()),
            task_queue_url,
        })
    }
}

/// The task control command's settings: the task's own variables, read the same way as the
/// functions read them, so one environment file serves all three.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Task id (`TASK_ID`).
    pub task_id: String,
    /// The source bucket (`SOURCE_BUCKET`).
    pub source_bucket: String,
    /// The task's source prefix (`SOURCE_PREFIX`, may be empty).
    pub source_prefix: String,
    /// The task queue (`TASK_QUEUE_URL`).
    pub queue_url: String,
    /// The sync function (`SYNC_FUNCTION_NAME`): name or ARN; needed by pause, resume and the
    /// delivery line of status.
    pub function_name: Option<String>,
    /// The OSS bucket (`DEST_BUCKET`); needed by sweep-uploads (with the `OSS_*` variables).
    pub dest_bucket: Option<String>,
    /// The task's destination prefix (`DEST_PREFIX`, may be empty): what sweep-uploads sweeps.
    pub dest_prefix: String,
    /// sweep-uploads' default age in hours (`UPLOAD_SWEEP_AGE_HOURS`, 1 to 720, default 24).
    pub upload_sweep_age_hours: u64,
    /// Path-style S3 requests ([`s3_path_style`]).
    pub s3_path_style: bool,
}

impl ControlConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through a lookup function.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let queue_url = required(&get, "TASK_QUEUE_URL", "the task queue's URL")?;
        if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
            return Err(problem(
                "TASK_QUEUE_URL",
                format!("{queue_url:?} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"),
            ));
        }
        Ok(Self {
            task_id: check_task_id("TASK_ID", &required(&get, "TASK_ID", "the task's id")?)?,
            source_bucket: bucket(
                "SOURCE_BUCKET",
                &required(&get, "SOURCE_BUCKET", "an S3 bucket name")?,
            )?,
            source_prefix: prefix("SOURCE_PREFIX", get("SOURCE_PREFIX"))?,
            queue_url,
            function_name: get("SYNC_FUNCTION_NAME").filter(|v| !v.is_empty()),
            dest_bucket: get("DEST_BUCKET")
                .filter(|v| !v.is_empty())
                .map(|v| bucket("DEST_BUCKET", &v))
                .transpose()?,
            dest_prefix: prefix("DEST_PREFIX", get("DEST_PREFIX"))?,
            upload_sweep_age_hours: upload_sweep_age_hours(&get)?,
            s3_path_style: s3_path_style(&get)?,
        })
    }

    /// The prefix a backfill lists: the task's prefix, narrowed by `--prefix`. A `--prefix`
    /// outside the task's prefix is an error: the sync function would refuse every event.
    pub fn backfill_prefix(&self, narrower: Option<&str>) -> Result<String, ConfigError> {
        let Some(p) = narrower.filter(|p| !p.is_empty()) else {
            return Ok(self.source_prefix.clone());
        };
        if p.starts_with(&self.source_prefix) {
            Ok(p.to_owned())
        } else if self.source_prefix.starts_with(p) {
            Ok(self.source_prefix.clone())
        } else {
            Err(problem(
                "--prefix",
                format!(
                    "{p:?} is outside the task's SOURCE_PREFIX {:?}",
                    self.source_prefix
                ),
            ))
        }
    }
}

#[cfg(test)]
mod control_tests {
    use super::*;

    #[test]
    fn control_settings_and_prefixes() {
        let env = |extra: &[(&str, &str)]| {
            let mut m: std::collections::HashMap<String, String> = [
                ("TASK_ID", "t1"),
                ("SOURCE_BUCKET", "src"),
                ("TASK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/t1"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                m.insert(k.to_string(), v.to_string());
            }
            ControlConfig::from_lookup(move |k| m.get(k).cloned())
        };
        let c = env(&[]).unwrap();
        assert_eq!(
            (c.source_prefix.as_str(), c.function_name.as_deref()),
            ("", None)
        );
        assert_eq!(c.backfill_prefix(Some("a/b")).unwrap(), "a/b");
        let c = env(&[("SOURCE_PREFIX", "logs/"), ("SYNC_FUNCTION_NAME", "f")]).unwrap();
        assert_eq!(c.function_name.as_deref(), Some("f"));
        assert_eq!(c.backfill_prefix(None).unwrap(), "logs/");
        assert_eq!(c.backfill_prefix(Some("logs/2026/")).unwrap(), "logs/2026/");
        assert_eq!(c.backfill_prefix(Some("lo")).unwrap(), "logs/");
        assert_eq!(
            c.backfill_prefix(Some("other/")).unwrap_err().variable,
            "--prefix"
        );
        assert_eq!(
            env(&[("TASK_QUEUE_URL", "t1")]).unwrap_err().variable,
            "TASK_QUEUE_URL"
        );
        assert_eq!(env(&[("TASK_ID", "")]).unwrap_err().variable, "TASK_ID");
    }

    #[test]
    fn control_sweep_settings() {
        let env = |extra: &[(&str, &str)]| {
            let mut m: std::collections::HashMap<String, String> = [
                ("TASK_ID", "t1"),
                ("SOURCE_BUCKET", "src"),
                ("TASK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/t1"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                m.insert(k.to_string(), v.to_string());
            }
            ControlConfig::from_lookup(move |k| m.get(k).cloned())
        };
        let c = env(&[]).unwrap();
        assert_eq!(
            (
                c.dest_bucket.as_deref(),
                c.dest_prefix.as_str(),
                c.upload_sweep_age_hours
            ),
            (None, "", 24)
        );
        let c = env(&[
            ("DEST_BUCKET", "dst"),
            ("DEST_PREFIX", "mirror/"),
            ("UPLOAD_SWEEP_AGE_HOURS", "720"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.dest_bucket.as_deref(),
                c.dest_prefix.as_str(),
                c.upload_sweep_age_hours
            ),
            (Some("dst"), "mirror/", 720)
        );
        for (var, value) in [
            ("DEST_BUCKET", "Bad_Bucket"),
            ("DEST_PREFIX", "/x"),
            ("UPLOAD_SWEEP_AGE_HOURS", "721"),
        ] {
            assert_eq!(env(&[(var, value)]).unwrap_err().variable, var);
        }
    }
}

#[cfg(test)]
mod report_tests {
    use super::*;

    /// A report configuration from the required settings and `extra`.
    fn env(extra: &[(&str, &str)]) -> Result<ReportConfig, ConfigError> {
        let mut m: std::collections::HashMap<String, String> = [
            ("TASK_ID", "t1"),
            ("RESULTS_BUCKET", "results-bucket"),
            ("DEST_BUCKET", "dst"),
            ("OSS_REGION", "cn-hangzhou"),
            ("OSS_ACCESS_KEY_ID", "AK"),
            ("OSS_ACCESS_KEY_SECRET", "SK"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        ReportConfig::from_lookup(move |k| m.get(k).cloned())
    }

    #[test]
    fn report_settings_and_errors() {
        let c = env(&[]).unwrap();
        assert_eq!((c.report_prefix.as_str(), c.grace_minutes), ("reports", 30));
        assert_eq!(env(&[("REPORT_GRACE", "1h")]).unwrap().grace_minutes, 60);
        assert_eq!(env(&[("REPORT_GRACE", "45m")]).unwrap().grace_minutes, 45);
        assert_eq!(
            env(&[("REPORT_GRACE", "soon")]).unwrap_err().variable,
            "REPORT_GRACE"
        );
        assert_eq!(c.zone.name(), "+00:00");
        let c = env(&[("REPORT_UTC_OFFSET", "+08:00")]).unwrap();
        assert_eq!(c.zone.name(), "+08:00");
        let c = env(&[
            ("REPORT_TIME_ZONE", "Asia/Shanghai"),
            ("REPORT_UTC_OFFSET", ""),
        ])
        .unwrap();
        assert_eq!(c.zone.name(), "Asia/Shanghai");
        let c = env(&[("REPORT_TIME_ZONE", "-05:00")]).unwrap();
        assert_eq!(c.zone.name(), "-05:00");
        let c = env(&[
            ("REPORT_TIME_ZONE", "+08:00"),
            ("REPORT_UTC_OFFSET", "+0800"),
        ])
        .unwrap();
        assert_eq!(c.zone.name(), "+08:00", "both, the same zone");
        let e = env(&[
            ("REPORT_TIME_ZONE", "Asia/Shanghai"),
            ("REPORT_UTC_OFFSET", "+08:00"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "REPORT_TIME_ZONE");
        assert!(e.to_string().contains("REPORT_UTC_OFFSET"), "{e}");
        assert_eq!(
            env(&[("REPORT_TIME_ZONE", "Mars/Olympus")])
                .unwrap_err()
                .variable,
            "REPORT_TIME_ZONE"
        );
        assert_eq!((c.event_source_mapping, c.task_queue_url), (None, None));
        let q = "https://sqs.us-east-1.amazonaws.com/1/t1";
        let c = env(&[("SYNC_EVENT_SOURCE_MAPPING", "a1b2"), ("TASK_QUEUE_URL", q)]).unwrap();
        assert_eq!(c.event_source_mapping.as_deref(), Some("a1b2"));
        assert_eq!(c.task_queue_url.as_deref(), Some(q));
        assert_eq!(
            env(&[("TASK_QUEUE_URL", "t1")]).unwrap_err().variable,
            "TASK_QUEUE_URL"
        );
        assert_eq!(
            env(&[("REPORT_UTC_OFFSET", "8")]).unwrap_err().variable,
            "REPORT_UTC_OFFSET"
        );
        assert_eq!(
            env(&[("REPORT_GRACE", "0")]).unwrap_err().variable,
            "REPORT_GRACE"
        );
    }

    #[test]
    fn report_sweep_settings() {
        let c = env(&[]).unwrap();
        assert_eq!((c.dest_prefix.as_str(), c.upload_sweep_age_hours), ("", 24));
        let c = env(&[("DEST_PREFIX", "mirror/"), ("UPLOAD_SWEEP_AGE_HOURS", "1")]).unwrap();
        assert_eq!(
            (c.dest_prefix.as_str(), c.upload_sweep_age_hours),
            ("mirror/", 1)
        );
        for bad in ["0", "721", "24h", ""] {
            assert_eq!(
                env(&[("UPLOAD_SWEEP_AGE_HOURS", bad)])
                    .unwrap_err()
                    .variable,
                "UPLOAD_SWEEP_AGE_HOURS",
                "{bad:?}"
            );
        }
        assert_eq!(
            env(&[("DEST_PREFIX", "\\x")]).unwrap_err().variable,
            "DEST_PREFIX"
        );
    }

    #[test]
    fn a_report_area_overlapping_dest_prefix_is_refused() {
        assert_eq!(env(&[]).unwrap().lease_minutes, 30);
        for (dest, report) in [
            ("reports/", "reports"),
            ("reports/t1/", "reports"),
            ("rep", "reports"),
            ("reports", "reports"),
            ("mirror/", "mirror/reports"),
            ("t1/", ""),
        ] {
            let e = env(&[("DEST_PREFIX", dest), ("REPORT_PREFIX", report)]).unwrap_err();
            assert_eq!(e.variable, "REPORT_PREFIX", "{dest:?} {report:?}");
            assert!(e.problem.contains("overlaps DEST_PREFIX"), "{e}");
        }
        for (dest, report) in [
            ("", "reports"),
            ("mirror/", "reports"),
            ("reports2/", "reports"),
            ("data/", ""),
        ] {
            assert!(
                env(&[("DEST_PREFIX", dest), ("REPORT_PREFIX", report)]).is_ok(),
                "{dest:?} {report:?}"
            );
        }
        assert_eq!(report_area("", "t1"), "t1/");
        assert_eq!(report_area("/reports/", "t1"), "reports/");
    }
}
