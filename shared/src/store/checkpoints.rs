//! The checkpoint port: where resumable copies keep their checkpoints (the results bucket), as
//! whole bodies under keys, with a conditional create.

use super::source::SourceError;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::time::Duration;

/// Where checkpoints are stored (the results bucket). Errors are S3's.
pub trait CheckpointStore: Send + Sync {
    /// The stored body, or `None` if there is none.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>>;
    /// Writes the whole body.
    fn save<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), SourceError>>;
    /// Removes it; succeeds when it is already gone.
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SourceError>>;
    /// Writes the body only if no object is there (S3's `If-None-Match: *`): `true` if this call
    /// created it.
    fn create<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<bool, SourceError>>;
    /// [`Self::load`] after waiting `wait` on the clock (a simulated store, whose clock moves
    /// with every call, models the wait its own way).
    fn load_after<'a>(
        &'a self,
        key: &'a str,
        wait: Duration,
    ) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        Box::pin(async move {
            tokio::time::sleep(wait).await;
            self.load(key).await
        })
    }
}
