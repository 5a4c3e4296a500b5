//! What a sweep reports: its summary (uploads listed, kept, aborted, failed; why it stopped or
//! was held), rendered for a person; the error of a sweep that could not list; and the
//! CloudWatch metrics line of a sweep run by the report function.

use crate::oss::Error;
use serde::Serialize;

/// Why a sweep stopped before the end of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// It made `max_requests` requests.
    RequestBudget,
    /// It ran out of time.
    TimeBudget,
}

/// An upload the sweep picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PickedUpload {
    /// The key.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// Its age in seconds.
    pub age_secs: i64,
}

/// An abort that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AbortFailure {
    /// The key.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// The OSS error code (or the client's: `TransportError`, ...).
    pub code: String,
    /// Whether the next sweep may succeed.
    pub transient: bool,
    /// The error, with its causes.
    pub message: String,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    /// The prefix swept.
    pub prefix: String,
    /// The age setting, in seconds.
    pub older_than_secs: u64,
    /// Whether nothing was aborted on purpose.
    pub dry_run: bool,
    /// Uploads listed.
    pub listed: u64,
    /// Stale uploads aborted.
    pub aborted: u64,
    /// Stale uploads that were gone when aborted (completed or aborted meanwhile).
    pub already_gone: u64,
    /// Uploads kept because they are recent.
    pub recent: u64,
    /// Uploads kept because their initiation time could not be read.
    pub undated: u64,
    /// Uploads kept because a copy in progress resumes them.
    pub resuming: u64,
    /// Copies in progress known to the sweep: uploads named by a checkpoint written within the
    /// age.
    pub live_copies: u64,
    /// Checkpoints that could not be used (`key: why`); those whose body is damaged are ignored.
    pub unreadable_checkpoints: Vec<String>,
    /// Set when nothing was aborted because the copies in progress could not all be known: why.
    /// The stale uploads are then in `would_abort`, as in a dry run.
    pub held: Option<String>,
    /// Uploads listed outside the prefix (none, from a correct listing).
    pub outside_prefix: u64,
    /// Stale uploads whose abort failed.
    pub failed: Vec<AbortFailure>,
    /// In a dry run (or a held sweep), the stale uploads (what a real run would abort).
    pub would_abort: Vec<PickedUpload>,
    /// Age in seconds of the oldest upload listed under the prefix.
    pub oldest_age_secs: Option<i64>,
    /// Requests made (list pages and aborts).
    pub requests: u32,
    /// Set when a bound stopped the sweep before the end of the listing.
    pub stopped: Option<Stopped>,
}

impl SweepSummary {
    /// A few lines for a person: what was listed, kept, aborted, and what failed.
    pub fn render(&self) -> String {
        let mut out = format!(
            "prefix            {:?}\nolder than        {} h\nlisted            {} ({} recent, {} resuming, {} undated)\n",
            self.prefix,
            self.older_than_secs / 3600,
            self.listed,
            self.recent,
            self.resuming,
            self.undated
        );
        let oldest = self
            .oldest_age_secs
            .map_or("none".to_owned(), |a| format!("{:.1} h", a as f64 / 3600.0));
        out.push_str(&format!("oldest            {oldest}\n"));
        out.push_str(&format!(
            "copies live       {} (checkpoints written in the past {} h)\n",
            self.live_copies,
            self.older_than_secs / 3600
        ));
        for c in &self.unreadable_checkpoints {
            out.push_str(&format!("checkpoint        {c}\n"));
        }
        if let Some(why) = &self.held {
            out.push_str(&format!("held              nothing aborted: {why}\n"));
        }
        if self.dry_run || self.held.is_some() {
            out.push_str(&format!(
                "would abort       {} ({}: nothing aborted)\n",
                self.would_abort.len(),
                if self.dry_run { "dry run" } else { "held" }
            ));
            for p in &self.would_abort {
                out.push_str(&format!(
                    "  {} {} ({:.1} h)\n",
                    p.key,
                    p.upload_id,
                    p.age_secs as f64 / 3600.0
                ));
            }
        } else {
            out.push_str(&format!(
                "aborted           {} (and {} already gone)\n",
                self.aborted, self.already_gone
            ));
        }
        for f in &self.failed {
            out.push_str(&format!(
                "failed            {} {}: {} ({})\n",
                f.key,
                f.upload_id,
                f.code,
                if f.transient {
                    "may pass next time"
                } else {
                    "permanent"
                }
            ));
        }
        if let Some(stop) = self.stopped {
            out.push_str(&format!(
                "stopped early     {stop:?} after {} requests; run again for the rest\n",
                self.requests
            ));
        }
        out
    }
}

/// A sweep that could not list: what it did before, and why it stopped.
#[derive(Debug, thiserror::Error)]
#[error("listing the multipart uploads failed after {} listed and {} aborted: {source}", .summary.listed, .summary.aborted)]
pub struct SweepError {
    /// What the sweep did before the listing failed.
    pub summary: Box<SweepSummary>,
    /// The listing's error.
    #[source]
    pub source: Error,
}

impl SweepError {
    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        self.source.is_transient()
    }
}

/// One CloudWatch EMF line for a sweep run by the report function: `UploadsAborted`,
/// `UploadAbortFailures`, `UploadSweepFailures` (1 when the sweep could not list, or was held
/// because the copies in progress could not be read; else 0) and `OldestUploadAge` (seconds).
pub fn metrics_line(task: &str, outcome: &Result<SweepSummary, SweepError>, now_ms: i64) -> String {
    let (aborted, abort_failures, sweep_failures, oldest) = match outcome {
        Ok(s) => (
            s.aborted,
            s.failed.len(),
            u32::from(s.held.is_some()),
            s.oldest_age_secs,
        ),
        Err(e) => (
            e.summary.aborted,
            e.summary.failed.len(),
            1,
            e.summary.oldest_age_secs,
        ),
    };
    let mut metrics = vec![
        serde_json::json!({"Name": "UploadsAborted", "Unit": "Count"}),
        serde_json::json!({"Name": "UploadAbortFailures", "Unit": "Count"}),
        serde_json::json!({"Name": "UploadSweepFailures", "Unit": "Count"}),
    ];
    let mut doc = serde_json::json!({
        "Task": task,
        "UploadsAborted": aborted,
        "UploadAbortFailures": abort_failures,
        "UploadSweepFailures": sweep_failures,
    });
    if let Some(age) = oldest {
        metrics.push(serde_json::json!({"Name": "OldestUploadAge", "Unit": "Seconds"}));
        doc["OldestUploadAge"] = serde_json::json!(age);
    }
    doc["_aws"] = serde_json::json!({
        "Timestamp": now_ms,
        "CloudWatchMetrics": [{
            "Namespace": crate::telemetry::NAMESPACE,
            "Dimensions": [["Task"]],
            "Metrics": metrics,
        }]
    });
    doc.to_string()
}
