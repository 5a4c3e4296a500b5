//! What a job did ([`JobReport`]) and why it failed ([`JobError`]), with the outcomes a job's run
//! ends with.

use super::{CHECKPOINT_FAILED, RECHECK_NOT_QUEUED};
use crate::errors::error_chain;
use crate::oss;
use crate::outcome::OutcomeKind;
use crate::store::source::SourceError;
use crate::sync::resume::Failure;
use std::time::Duration;

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// Error code (OSS, S3, or ours).
    pub code: String,
    /// What happened, with the error's causes.
    pub message: String,
    /// Whether a later attempt may succeed.
    pub transient: bool,
}

/// What a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    /// The outcome.
    pub outcome: OutcomeKind,
    /// Source ETag of the version acted on.
    pub source_etag: Option<String>,
    /// Source version id of the version acted on.
    pub version_id: Option<String>,
    /// Size of the version acted on.
    pub size: Option<u64>,
    /// Bytes written to the destination.
    pub bytes_moved: u64,
    /// CRC-64 of the destination object, when known.
    pub crc64: Option<u64>,
    /// Rounds run.
    pub rounds: u32,
    /// Requests made to the source and destination (retries inside the clients included where
    /// they are counted).
    pub requests: u32,
    /// Destination request ids.
    pub request_ids: Vec<String>,
    /// Metadata names that could not be carried.
    pub dropped_metadata: Vec<String>,
    /// A note on why this outcome (for `superseded`, `skipped` and failures).
    pub note: Option<String>,
    /// The failure, for `failed`.
    pub error: Option<JobError>,
    /// A code for an outcome that is not a failure (`in_progress` of a fanned-out copy).
    pub code: Option<&'static str>,
}

impl JobReport {
    pub(super) fn new() -> Self {
        Self {
            outcome: OutcomeKind::Failed,
            source_etag: None,
            version_id: None,
            size: None,
            bytes_moved: 0,
            crc64: None,
            rounds: 0,
            requests: 0,
            request_ids: Vec::new(),
            dropped_metadata: Vec::new(),
            note: None,
            error: None,
            code: None,
        }
    }

    pub(super) fn done(mut self, outcome: OutcomeKind, note: impl Into<Option<String>>) -> Self {
        self.outcome = outcome;
        self.note = note.into();
        self
    }

    /// The report of a job stopped at the invocation's cut-off after `ran`, having moved `moved`
    /// bytes in parts of a resumable copy (kept for the next delivery; a completion in flight may
    /// still land, and the next delivery then records the copy: [`resume::completed_unrecorded`]).
    /// The rest of what it had done is lost with it, and its single upload, if any, is aborted by
    /// the handler.
    ///
    /// [`resume::completed_unrecorded`]: crate::sync::resume::completed_unrecorded
    pub fn cut_off(ran: Duration, moved: u64) -> Self {
        let mut r = Self::new().done(
            OutcomeKind::Deferred,
            format!(
                "stopped at the invocation's cut-off after {} ms{}; the event comes again",
                ran.as_millis(),
                match moved {
                    0 => String::new(),
                    n => format!(", {n} bytes moved in parts kept for the next delivery"),
                }
            ),
        );
        r.bytes_moved = moved;
        r
    }

    pub(super) fn failed(mut self, code: &str, message: String, transient: bool) -> Self {
        self.outcome = OutcomeKind::Failed;
        self.error = Some(JobError {
            code: code.to_owned(),
            message,
            transient,
        });
        self
    }

    pub(super) fn oss_failed(mut self, e: &oss::Error) -> Self {
        if let Some(id) = e.request_id() {
            self.request_ids.push(id.to_owned());
        }
        self.failed(e.code(), error_chain(e), e.is_transient())
    }

    pub(super) fn source_failed(self, e: &SourceError) -> Self {
        self.failed(e.code(), error_chain(e), e.is_transient())
    }

    pub(super) fn in_progress(
        self,
        done: u64,
        size: u64,
        parts: (u32, u32),
        upload_id: &str,
        dropped: u32,
    ) -> Self {
        let dropped = match dropped {
            0 => String::new(),
            n => format!("; {n} part(s) in flight at the stop time dropped, in doubt: checked (and sent again only if OSS does not hold them) next time"),
        };
        self.done(
            OutcomeKind::InProgress,
            format!(
                "copy in progress: {done} of {size} bytes in {} of {} parts (upload {upload_id}); it continues in the next delivery{dropped}",
                parts.0, parts.1
            ),
        )
    }

    /// A resumable copy's failure other than the destination's (whose completion may have landed
    /// and is checked by the caller first).
    pub(super) fn resume_failed(self, f: Failure) -> Self {
        match f {
            Failure::Source(e) => self.source_failed(&e),
            Failure::NotQueued(why) => self.not_written(why),
            Failure::Checkpoint(e) => self.failed(
                CHECKPOINT_FAILED,
                format!(
                    "the copy's checkpoint could not be kept: {}",
                    error_chain(&e)
                ),
                e.is_transient(),
            ),
            Failure::Dest(e) => self.oss_failed(&e),
        }
    }

    pub(super) fn not_written(self, why: String) -> Self {
        self.failed(
            RECHECK_NOT_QUEUED,
            format!("nothing was written: the recheck that must precede a write could not be queued: {why}"),
            true,
        )
    }
}
