//! What a call to a store other than the destination fails with, when the caller is not the sync
//! core: the task queue, the bucket listings, Lambda's event source mapping. (The sync core's
//! source errors are [`super::source::SourceError`], which also say whether the object changed.)

use crate::retry::Transient;

/// A store's call failed, or its answer is not what the caller needs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A call to the service failed.
    #[error("{service} {op}: {detail}")]
    Call {
        /// The service (`S3`, `SQS`, `Lambda`, `CloudWatch`).
        service: &'static str,
        /// The operation.
        op: &'static str,
        /// What went wrong, with its causes.
        detail: String,
        /// Whether trying again may help.
        transient: bool,
    },
    /// The answer, or the input, is not what the caller needs (a malformed inventory manifest,
    /// a queue without a dead-letter queue, ...). Trying again will not help.
    #[error("{0}")]
    Input(String),
}

impl Transient for StoreError {
    fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Call {
                transient: true,
                ..
            }
        )
    }
}

/// Whether a service's answer (HTTP status and error code) says a retry may succeed: a timeout
/// (408), throttling (429, `SlowDown`, `Throttling*`, `TooMany*`), or a server error the service
/// may recover from (500, 502, 503, 504, `InternalError`, `ServiceUnavailable`,
/// `RequestTimeout`). One rule for every AWS service the product calls.
pub fn transient_answer(status: u16, code: &str) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
        || matches!(
            code,
            "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
        )
        || code.contains("Throttl")
        || code.contains("TooMany")
}
