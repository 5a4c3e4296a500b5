//! Task control: what the `ctl` command does, as a library. Backfill sends S3-shaped events for
//! objects that existed before the notifications did; retry re-sends the keys a day's report lists
//! as failed; redrive moves dead-lettered messages back; pause and resume switch the sync
//! function's event source mapping; status reads the task's queues, reports, records and copies in
//! progress; sweep-uploads aborts the stale multipart uploads under the task's destination prefix
//! (keeping those of copies in progress, read by [`copies`], which the report function's sweep
//! uses too).
//!
//! Every event `ctl` sends is handled by the same sync function as S3's own, so what is already in
//! OSS is skipped after one request and nothing is copied twice.

pub mod backfill;
pub mod checkpoint;
pub mod copies;
pub mod events;
#[cfg(feature = "control")]
pub mod inventory;
pub mod mapping;
pub mod queue;
pub mod retry;
#[cfg(feature = "control")]
pub mod stack;
#[cfg(feature = "control")]
pub mod status;
pub mod sweep;

use crate::retry::Transient;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

/// Why a control command failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// An AWS call failed.
    #[error("{service} {op}: {detail}")]
    Aws {
        /// The service (`S3`, `SQS`, `Lambda`, `CloudWatch`).
        service: &'static str,
        /// The operation.
        op: &'static str,
        /// What went wrong, with its causes.
        detail: String,
        /// Whether trying again may help.
        transient: bool,
    },
    /// Reading the reports in OSS failed.
    #[error("OSS: {0}")]
    Oss(String),
    /// The input is not what the command needs (a malformed inventory manifest, a missing report,
    /// settings that contradict the checkpoint, ...). Trying again will not help.
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
        matches!(
            self,
            Self::Aws {
                transient: true,
                ..
            }
        )
    }
}

impl ControlError {
    /// An AWS SDK error (any service: they share the error type), classed transient when the call
    /// may succeed later: timeouts, connection failures, 5xx, 429 and throttling codes.
    pub fn aws<E>(service: &'static str, op: &'static str, e: &SdkError<E, HttpResponse>) -> Self
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        let transient = match e {
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                let code = se.err().code().unwrap_or_default();
                status >= 500
                    || status == 429
                    || code.contains("Throttl")
                    || code.contains("TooMany")
            }
            _ => false,
        };
        Self::Aws {
            service,
            op,
            detail: crate::source::error_chain(e),
            transient,
        }
    }
}
