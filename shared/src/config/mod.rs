//! The functions' configuration: one validated struct per binary read from the environment —
//! [`SyncConfig`] (the sync function), [`ReportConfig`] (the report function), [`ControlConfig`]
//! (the `ctl` command) — with an error that names the variable and the form it expects. The two
//! functions report every wrong variable of one reading at once; `ctl` stops at the first, as its
//! commands each read a few. Secrets are masked in `Debug`.
//!
//! All three read through one environment reader (`env`), and share the readers here: the task
//! id, the source bucket, the task binding, the report area, path-style S3, the results prefix,
//! the upload sweep age, the queue URL and the OSS settings ([`OssSettings`]).

mod control;
mod env;
mod oss_settings;
mod report;
mod sync;
#[cfg(test)]
mod tests;

pub use control::ControlConfig;
pub use oss_settings::{CredentialSource, OssSettings};
pub use report::ReportConfig;
pub use sync::{SyncConfig, DEFAULT_CONCURRENCY, FIXED_OVERHEAD_MIB};

use crate::oss::{Addressing, Endpoint};
use crate::task::TaskBinding;
use env::Env;

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

/// Whether S3 requests are path-style (`S3_PATH_STYLE`, a boolean). Unset, they are when
/// `AWS_ENDPOINT_URL` points at an IP address or `localhost` (a local S3-compatible server), and
/// virtual-hosted otherwise, as AWS expects.
pub fn s3_path_style(get: &impl Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
    Env::new(get).s3_path_style()
}

/// The source bucket (`SOURCE_BUCKET`), required and checked: what a scheduled verification
/// lists.
pub fn source_bucket(get: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    Env::new(get).source_bucket()
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
    Env::new(get).task_binding(task_id, source_bucket, dest_bucket)
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

/// A queue URL as given (`https://` or `http://`), else an error naming `variable`.
fn check_queue_url(variable: &'static str, q: &str) -> Result<String, ConfigError> {
    if q.starts_with("https://") || q.starts_with("http://") {
        Ok(q.to_owned())
    } else {
        Err(problem(
            variable,
            format!("{q:?} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"),
        ))
    }
}

/// The readers more than one configuration uses.
impl Env<'_> {
    /// `TASK_ID`, required and checked ([`check_task_id`]).
    fn task_id(&self) -> Result<String, ConfigError> {
        check_task_id("TASK_ID", &self.var("TASK_ID").required("the task's id")?)
    }

    /// `SOURCE_BUCKET`, required and checked.
    fn source_bucket(&self) -> Result<String, ConfigError> {
        self.var("SOURCE_BUCKET")
            .required_bucket("an S3 bucket name")
    }

    /// `RESULTS_BUCKET`, required and checked.
    fn results_bucket(&self) -> Result<String, ConfigError> {
        self.var("RESULTS_BUCKET")
            .required_bucket("an S3 bucket name")
    }

    /// `RESULTS_PREFIX` without surrounding `/`, default `results`.
    fn results_prefix(&self) -> String {
        self.var("RESULTS_PREFIX")
            .or("results")
            .trim_matches('/')
            .to_owned()
    }

    /// `REPORT_PREFIX` without surrounding `/`, default `reports`.
    fn report_prefix(&self) -> String {
        self.var("REPORT_PREFIX")
            .or("reports")
            .trim_matches('/')
            .to_owned()
    }

    /// See [`s3_path_style`].
    fn s3_path_style(&self) -> Result<bool, ConfigError> {
        match self.var("S3_PATH_STYLE").non_blank().trimmed().bool()? {
            Some(path_style) => Ok(path_style),
            None => Ok(self
                .var("AWS_ENDPOINT_URL")
                .value()
                .and_then(|u| Endpoint::custom(&u, Addressing::PathStyle, true).ok())
                .is_some_and(|e| e.is_ip_or_localhost())),
        }
    }

    /// See [`task_binding`].
    fn task_binding(
        &self,
        task_id: &str,
        source_bucket: String,
        dest_bucket: String,
    ) -> Result<TaskBinding, ConfigError> {
        let source_prefix = self.var("SOURCE_PREFIX").prefix()?;
        let dest_prefix = self.var("DEST_PREFIX").prefix()?;
        let report_prefix = self.report_prefix();
        check_report_area(&dest_prefix, &report_prefix, task_id)?;
        let strip_source_prefix = self.var("STRIP_SOURCE_PREFIX").flag()?;
        Ok(TaskBinding {
            source_bucket,
            source_prefix,
            dest_bucket,
            report_area: Some(report_area(&report_prefix, task_id)),
            dest_prefix,
            strip_source_prefix,
        })
    }

    /// `UPLOAD_SWEEP_AGE_HOURS`: whole hours from [`crate::sweep::MIN_AGE_HOURS`] (above the
    /// longest sync invocation) to [`crate::sweep::MAX_AGE_HOURS`], default
    /// [`crate::sweep::DEFAULT_AGE_HOURS`].
    fn upload_sweep_age_hours(&self) -> Result<u64, ConfigError> {
        use crate::sweep::{DEFAULT_AGE_HOURS, MAX_AGE_HOURS, MIN_AGE_HOURS};
        self.var("UPLOAD_SWEEP_AGE_HOURS").number_or(
            DEFAULT_AGE_HOURS,
            MIN_AGE_HOURS,
            MAX_AGE_HOURS,
        )
    }
}
