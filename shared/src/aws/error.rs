//! One classification of AWS SDK errors: which failures may succeed if tried again (timeouts,
//! connection failures, 5xx, 408, 429 and throttling codes), for every service the product calls.

use crate::store::error::{transient_answer, StoreError};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// The raw response every AWS SDK client's errors carry.
pub type HttpResponse = aws_sdk_s3::config::http::HttpResponse;

/// Whether an SDK error may succeed if the call is made again: no answer came (timeout, dispatch
/// or response failure), or the answer says so ([`transient_answer`]).
pub fn is_transient<E>(e: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => transient_answer(
            se.raw().status().as_u16(),
            se.err().code().unwrap_or_default(),
        ),
        _ => false,
    }
}

/// An SDK error (any service: they share the error type) as a [`StoreError`], classed by
/// [`is_transient`], the SDK's error kept as its source.
pub fn call_error<E>(
    service: &'static str,
    op: &'static str,
    e: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let transient = is_transient(&e);
    StoreError::call(service, op, e, transient)
}
