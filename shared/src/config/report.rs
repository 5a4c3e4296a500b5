//! The report function's settings ([`ReportConfig`]), with the readers only it uses: the zone
//! days are counted in, and the grace before a day is complete.

use super::env::Env;
use super::{check_queue_url, problem, ConfigError, OssSettings, Problems};
use crate::report::day::Zone;

/// The report function's settings.
#[derive(Debug, Clone)]
pub struct ReportConfig {
    /// Task id (`TASK_ID`).
    pub task_id: String,
    /// Path-style S3 requests ([`s3_path_style`](super::s3_path_style)).
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
    /// neither may lie inside the other ([`check_report_area`](super::check_report_area)).
    pub report_prefix: String,
    /// How long a run's lease lasts, minutes (`REPORT_LEASE_MINUTES`, 20 to 1440, default 30):
    /// longer than the report function's timeout (15 minutes); a local run stops writing
    /// [`crate::report::lease::LEASE_MARGIN`] before it ends.
    pub lease_minutes: u64,
    /// The zone days are counted in (`REPORT_TIME_ZONE`: an IANA name such as `Asia/Shanghai`,
    /// or an offset; the older `REPORT_UTC_OFFSET` takes an offset; default `+00:00`).
    pub zone: Zone,
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

impl ReportConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through a lookup function.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&get);
        let mut p = Problems::default();
        let zone = p.check(report_zone(env));
        let task_id = p.or_default(env.task_id());
        let dest_prefix = p.or_default(env.var("DEST_PREFIX").prefix());
        let report_prefix = env.report_prefix();
        p.check(super::check_report_area(
            &dest_prefix,
            &report_prefix,
            if task_id.is_empty() { "task" } else { &task_id },
        ));
        let results_bucket = p.or_default(env.results_bucket());
        let dest_bucket =
            p.or_default(env.var("DEST_BUCKET").required_bucket("an OSS bucket name"));
        let oss = p.check(OssSettings::read(env));
        let lease_minutes =
            p.or_default(env.var("REPORT_LEASE_MINUTES").number_or(30, 20, 24 * 60));
        let grace_minutes = p.or_default(grace_minutes(env));
        let part_mib = p.or_default(env.var("REPORT_PART_MIB").number_or(32, 1, 1024));
        let sort_mib = p.or_default(env.var("REPORT_SORT_MEMORY_MIB").number_or(128, 8, 8192));
        let parallel_reads = p.or_default(env.var("REPORT_PARALLEL_READS").number_or(32, 1, 256));
        let report_s3_bucket = p.or_default(env.var("REPORT_S3_BUCKET").non_empty().bucket());
        let upload_sweep_age_hours = p.or_default(env.upload_sweep_age_hours());
        let task_queue_url =
            p.or_default(env.var("TASK_QUEUE_URL").non_blank().parse(check_queue_url));
        let s3_path_style = p.or_default(env.s3_path_style());
        p.finish()?;
        let (Some(zone), Some(oss)) = (zone, oss) else {
            unreachable!("every setting read without a problem")
        };
        Ok(Self {
            task_id,
            s3_path_style,
            results_bucket,
            results_prefix: env.results_prefix(),
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
            event_source_mapping: env
                .var("SYNC_EVENT_SOURCE_MAPPING")
                .trimmed()
                .non_empty()
                .value(),
            task_queue_url,
        })
    }
}

/// `REPORT_GRACE`: 1 minute to 24 hours, as `30m`, `1h` or minutes; default 30 minutes.
fn grace_minutes(env: Env) -> Result<u64, ConfigError> {
    env.var("REPORT_GRACE")
        .parse(|name, v| {
            parse_minutes(v)
                .filter(|m| (1..=24 * 60).contains(m))
                .ok_or_else(|| problem(name, format!("{v:?} is not 1m to 24h (like 30m, 1h, 45)")))
        })
        .map(|m| m.unwrap_or(30))
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

/// The report's zone from `REPORT_TIME_ZONE` (a name or an offset) and `REPORT_UTC_OFFSET` (an
/// offset, kept for existing deployments); empty values are unset (the template passes both).
/// Both set to different zones is an error: which one is meant cannot be guessed.
fn report_zone(env: Env) -> Result<Zone, ConfigError> {
    use crate::report::day::parse_offset;
    let named = env
        .var("REPORT_TIME_ZONE")
        .non_blank()
        .parse(|name, v| Zone::parse(v).map_err(|e| problem(name, e)))?;
    let offset = env.var("REPORT_UTC_OFFSET").non_blank().parse(|name, v| {
        parse_offset(v)
            .map(Zone::fixed)
            .map_err(|e| problem(name, e))
    })?;
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
