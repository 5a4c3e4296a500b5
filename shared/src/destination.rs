//! The destination store: what the sync core needs from OSS, as a small trait so the core can be
//! tested against an in-memory store and run against the real client.

use crate::oss::{
    AbandonedUploads, BodySource, Error, ObjectHead, OssClient, UploadOutcome, UploadRequest,
};
use std::future::Future;

/// One bucket of the destination, as the sync core sees it.
pub trait DestinationStore: Send + Sync {
    /// The object's head, or `None` if it does not exist.
    fn head(&self, key: &str) -> impl Future<Output = Result<Option<ObjectHead>, Error>> + Send;

    /// Writes an object of known size from a source, checking every byte arrived.
    fn upload(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
    ) -> impl Future<Output = Result<UploadOutcome, Error>> + Send;

    /// Deletes an object; succeeds when it is already absent.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// The bucket written to.
    fn bucket(&self) -> &str;

    /// Aborts the uploads left open by jobs dropped mid-upload (at a deadline, or by an earlier
    /// invocation's kill, when the store outlives it) and by aborts that failed. Stores without
    /// multipart uploads have nothing to do.
    fn abort_abandoned_uploads(&self) -> impl Future<Output = AbandonedUploads> + Send {
        async { AbandonedUploads::default() }
    }
}

/// The real destination: an OSS bucket through [`OssClient`].
#[derive(Debug, Clone)]
pub struct OssDestination {
    client: OssClient,
    bucket: String,
}

impl OssDestination {
    /// A bucket reached through a client.
    pub fn new(client: OssClient, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The client.
    pub fn client(&self) -> &OssClient {
        &self.client
    }
}

impl DestinationStore for OssDestination {
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, Error> {
        self.client.head_object(&self.bucket, key).await
    }

    async fn upload(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
    ) -> Result<UploadOutcome, Error> {
        self.client.upload(req, source).await
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.client.delete_object(&self.bucket, key).await
    }

    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn abort_abandoned_uploads(&self) -> AbandonedUploads {
        self.client.abort_abandoned_uploads().await
    }
}
