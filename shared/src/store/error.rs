//! What a call to a store other than the destination fails with, when the caller is not the sync
//! core: the task queue, the bucket listings, Lambda's event source mapping. (The sync core's
//! source errors are [`super::source::SourceError`], which also say whether the object changed.)

use crate::errors::BoxError;
use crate::retry::Transient;

/// A store's call failed, or its answer is not what the caller needs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A call to the service failed.
    #[error("{service} {op}: {source}")]
    Call {
        /// The service (`S3`, `SQS`, `Lambda`, `CloudWatch`).
        service: &'static str,
        /// The operation.
        op: &'static str,
        /// What went wrong: the SDK's error, or a message when the answer itself is the problem.
        #[source]
        source: BoxError,
        /// Whether trying again may help.
        transient: bool,
    },
    /// The answer, or the input, is not what the caller needs (a malformed inventory manifest,
    /// a queue without a dead-letter queue, ...). Trying again will not help.
    #[error("{0}")]
    Input(String),
}

impl StoreError {
    /// A failed call to `service`'s `op`, for `source` (an error, or a message).
    pub fn call(
        service: &'static str,
        op: &'static str,
        source: impl Into<BoxError>,
        transient: bool,
    ) -> Self {
        Self::Call {
            service,
            op,
            source: source.into(),
            transient,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_keeps_its_cause_as_the_source() {
        let cause = std::io::Error::other("connection reset");
        let e = StoreError::call("SQS", "ReceiveMessage", cause, true);
        assert_eq!(
            crate::errors::error_chain(&e),
            "SQS ReceiveMessage: connection reset"
        );
        assert!(e.is_transient());
        let source = std::error::Error::source(&e).expect("a source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        let said = StoreError::call(
            "SQS",
            "SendMessageBatch",
            "3 of 10 entries not accepted",
            false,
        );
        assert_eq!(
            said.to_string(),
            "SQS SendMessageBatch: 3 of 10 entries not accepted"
        );
        assert!(!said.is_transient());
    }
}
