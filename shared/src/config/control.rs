//! The `ctl` command's settings ([`ControlConfig`]): the task's own variables, read as the
//! functions read them. Read in order, the first wrong variable stops the reading.

use super::env::Env;
use super::{check_queue_url, problem, ConfigError};

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
    /// Path-style S3 requests ([`s3_path_style`](super::s3_path_style)).
    pub s3_path_style: bool,
}

impl ControlConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through a lookup function.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env::new(&get);
        let queue_url = check_queue_url(
            "TASK_QUEUE_URL",
            &env.var("TASK_QUEUE_URL").required("the task queue's URL")?,
        )?;
        Ok(Self {
            task_id: env.task_id()?,
            source_bucket: env.source_bucket()?,
            source_prefix: env.var("SOURCE_PREFIX").prefix()?,
            queue_url,
            function_name: env.var("SYNC_FUNCTION_NAME").non_empty().value(),
            dest_bucket: env.var("DEST_BUCKET").non_empty().bucket()?,
            dest_prefix: env.var("DEST_PREFIX").prefix()?,
            upload_sweep_age_hours: env.upload_sweep_age_hours()?,
            s3_path_style: env.s3_path_style()?,
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
