//! The event queue port: where `ctl`'s events go (the task queue through SQS,
//! [`crate::aws::sqs::SqsQueue`]).

use crate::store::error::StoreError;
use std::future::Future;

/// SQS takes at most 10 messages per batch.
pub const MAX_BATCH: usize = 10;

/// Where events go.
pub trait EventQueue: Send + Sync {
    /// Sends up to [`MAX_BATCH`] bodies; `Ok` only when every one was accepted.
    fn send_batch(
        &self,
        bodies: Vec<String>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Messages waiting in the queue (approximate), for holding a backfill back.
    fn waiting(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
}
