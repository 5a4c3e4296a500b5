//! The results bucket on S3: outcome records written as whole objects, and the resumable copies'
//! checkpoints (conditional create, load, save, remove).

use super::s3_source::sdk_error;
use crate::store::checkpoints::CheckpointStore;
use crate::store::results::ResultsStore;
use crate::store::source::SourceError;
use bytes::Bytes;

/// The real results store: an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ResultsStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3ResultsStore {
    /// A bucket reached through a client.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl ResultsStore for S3ResultsStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), SourceError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("PutObject", key, None, e))
    }
}

impl CheckpointStore for S3ResultsStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        Box::pin(async move {
            let got = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await;
            match got {
                Ok(o) => o
                    .body
                    .collect()
                    .await
                    .map(|b| Some(b.into_bytes()))
                    .map_err(|e| SourceError::transport("GetObject", key, e, true)),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(sdk_error("GetObject", key, None, e)),
            }
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
    ) -> futures_util::future::BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type("application/json")
                .body(body.into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error("PutObject", key, None, e))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, SourceError>> {
        Box::pin(async move {
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type("application/json")
                .body(body.into())
                .send()
                .await;
            match put {
                Ok(_) => Ok(true),
                // 412: an object is there. (409, a conflicting conditional write at the same
                // moment, is an error: the caller tries again.)
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
                Err(e) => Err(sdk_error("PutObject", key, None, e)),
            }
        })
    }

    fn remove<'a>(
        &'a self,
        key: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error("DeleteObject", key, None, e))
        })
    }
}
