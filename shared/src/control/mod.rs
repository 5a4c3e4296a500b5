//! Task control: what the `ctl` command does, as a library. Backfill sends S3-shaped events for
//! objects that existed before the notifications did; retry re-sends the keys a day's report lists
//! as failed; redrive moves dead-lettered messages back; pause and resume switch the sync
//! function's event source mapping; status reads the task's queues, reports, records and copies in
//! progress; sweep-uploads aborts the stale multipart uploads under the task's destination prefix
//! (keeping those of copies in progress, read by [`crate::sweep::copies`], which the report function's sweep
//! uses too).
//!
//! Every event `ctl` sends is handled by the same sync function as S3's own, so what is already in
//! OSS is skipped after one request and nothing is copied twice.

pub mod backfill;
pub mod checkpoint;
pub mod commands;
pub mod events;
pub mod retry;
pub mod stack;
pub mod status;
pub mod sweep;

use crate::errors::BoxError;
use crate::retry::Transient;
use crate::store::error::StoreError;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// Why a control command failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A call to the task's AWS side (queues, buckets, the event source mapping, CloudWatch)
    /// failed, or its answer is not what the command needs.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading the reports in OSS (or the OSS credentials, or sweeping the OSS uploads) failed:
    /// the error, kept as the source.
    #[error("OSS: {0}")]
    Oss(#[source] BoxError),
    /// The input is not what the command needs (a missing report, settings that contradict the
    /// checkpoint, ...). Trying again will not help.
    #[error("{0}")]
    Input(String),
    /// The local checkpoint file could not be read or written.
    #[error("checkpoint {path}: {detail}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
}

impl Transient for ControlError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_transient())
    }
}

impl ControlError {
    /// An error reading the reports in OSS, reading the OSS credentials, or sweeping the OSS
    /// uploads, kept as the source.
    pub fn oss(e: impl Into<BoxError>) -> Self {
        Self::Oss(e.into())
    }

    /// An AWS SDK error, classed by [`crate::aws::error::is_transient`].
    pub fn aws<E>(service: &'static str, op: &'static str, e: SdkError<E, HttpResponse>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        Self::Store(crate::aws::error::call_error(service, op, e))
    }
}
