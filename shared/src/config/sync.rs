//! The sync function's settings ([`SyncConfig`]): the task, the OSS destination, the results
//! store, and how copies run (concurrency, part size, the memory budget, fan-out).

use super::env::Env;
use super::{problem, ConfigError, CredentialSource, OssSettings, Problems};
use crate::oss::client::{DEFAULT_MEMORY_BUDGET, DEFAULT_PARTS_IN_FLIGHT, DEFAULT_PART_SIZE};
use crate::oss::Endpoint;
use crate::task::TaskBinding;
use std::time::Duration;

/// The sync function's settings.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Task id (`TASK_ID`): names the task in records, reports and the results store.
    pub task_id: String,
    /// Path-style S3 requests ([`s3_path_style`](super::s3_path_style)).
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

/// The OSS storage classes a `STORAGE_CLASS_MAP` may name.
const OSS_STORAGE_CLASSES: [&str; 5] = [
    "Standard",
    "IA",
    "Archive",
    "ColdArchive",
    "DeepColdArchive",
];

impl SyncConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through a lookup function (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&get);
        let mut p = Problems::default();
        let task_id = p.or_default(env.task_id());
        let source_bucket = p.or_default(env.source_bucket());
        let dest_bucket =
            p.or_default(env.var("DEST_BUCKET").required_bucket("an OSS bucket name"));
        // Read with stand-ins where those were wrong, so the prefixes' own problems show too.
        let binding = p.check(env.task_binding(
            if task_id.is_empty() { "task" } else { &task_id },
            source_bucket,
            dest_bucket,
        ));
        let oss = p.check(OssSettings::read(env));
        let results_bucket = p.or_default(env.results_bucket());
        let results_prefix = env.results_prefix();
        let storage_classes = p.or_default(
            env.var("STORAGE_CLASS_MAP")
                .non_empty()
                .parse(|_, v| parse_storage_classes(v))
                .map(Option::unwrap_or_default),
        );
        let part_size = p.or_default(env.var("OSS_PART_SIZE_MIB").mib(
            DEFAULT_PART_SIZE >> 20,
            1,
            5 * 1024,
        ));
        let memory_budget = p.or_default(memory_budget(
            env,
            // A part size that could not be read is reported; the budget is read against the
            // default meanwhile.
            if part_size == 0 {
                DEFAULT_PART_SIZE
            } else {
                part_size
            },
        ));
        let sync_deletes = p.or_default(env.var("SYNC_DELETES").flag());
        let sync_tags = p.or_default(env.var("SYNC_TAGS").flag());
        let concurrency = p.or_default(env.var("SYNC_CONCURRENCY").number_or(
            DEFAULT_CONCURRENCY as u64,
            1,
            256,
        ));
        let parts_in_flight = p.or_default(env.var("OSS_PARTS_IN_FLIGHT").number_or(
            DEFAULT_PARTS_IN_FLIGHT as u64,
            1,
            64,
        ));
        let max_copy_rounds = p.or_default(env.var("MAX_COPY_ROUNDS").number_or(3, 1, 10));
        let max_receive_count = p.or_default(
            env.var("SQS_MAX_RECEIVE_COUNT")
                .non_empty()
                .number(1, 1000)
                .map(|n| n.map(|n| n as u32)),
        );
        let oss_max_attempts = p.or_default(env.var("OSS_MAX_ATTEMPTS").number_or(6, 1, 20));
        let function_timeout = p.or_default(
            env.var("SYNC_FUNCTION_TIMEOUT_SECONDS")
                .seconds(900, 1, 900),
        );
        let batching_window = p.or_default(env.var("SYNC_BATCH_WINDOW_SECONDS").seconds(0, 0, 300));
        let fan_out_threshold =
            p.or_default(env.var("FANOUT_THRESHOLD_MIB").mib(8192, 0, 50 << 20));
        let fan_out_range = p.or_default(env.var("FANOUT_RANGE_MIB").mib(1024, 1, 1 << 20));
        let s3_path_style = p.or_default(env.s3_path_style());
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
            function_timeout,
            batching_window,
            queue_url: env.var("SYNC_QUEUE_URL").non_blank().value(),
            fan_out_threshold: Some(fan_out_threshold).filter(|&t| t > 0),
            fan_out_range,
        })
    }
}

/// The upload buffer budget, bytes: `SYNC_MEMORY_BUDGET_MIB`, else the Lambda function's memory
/// less [`FIXED_OVERHEAD_MIB`], else [`DEFAULT_MEMORY_BUDGET`]; refused if smaller than one part.
fn memory_budget(env: Env, part_size: u64) -> Result<u64, ConfigError> {
    const MIB: u64 = 1024 * 1024;
    // Empty or blank is unset; a value is read trimmed.
    let mib = |name: &'static str| env.var(name).non_blank().trimmed().number(1, 1024 * 1024);
    let (variable, budget) = if let Some(budget) = mib("SYNC_MEMORY_BUDGET_MIB")? {
        ("SYNC_MEMORY_BUDGET_MIB", budget * MIB)
    } else if let Some(memory) = mib("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")? {
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            memory.saturating_sub(FIXED_OVERHEAD_MIB) * MIB,
        )
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

/// `STORAGE_CLASS_MAP`: comma-separated `S3CLASS=OssClass` pairs, each OSS class one of
/// [`OSS_STORAGE_CLASSES`].
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
