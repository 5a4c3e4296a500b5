//! The destination store: what the sync core needs from OSS, as a small trait so the core can be
//! tested against an in-memory store and run against the real client.

use crate::oss::{
    AbandonedUploads, BodySource, Error, ListedPart, ObjectHead, ObjectMetadata, OssClient,
    UploadOutcome, UploadRequest,
};
use crate::resume::PartPlan;
use bytes::Bytes;
use std::future::Future;

fn no_parts() -> Error {
    Error::Config("this destination store does not take multipart uploads".into())
}

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

    /// How large objects are copied in parts, resumably ([`crate::resume`]); `None` (the
    /// default) copies every object in one go with [`Self::upload`].
    fn part_plan(&self) -> Option<PartPlan> {
        None
    }

    /// Starts a multipart upload with the object's metadata; returns its id.
    fn initiate(
        &self,
        _key: &str,
        _metadata: &ObjectMetadata,
    ) -> impl Future<Output = Result<String, Error>> + Send {
        async { Err(no_parts()) }
    }

    /// Uploads one part; the CRC-64 the store reports for it must be `crc`. Returns its ETag.
    fn upload_part(
        &self,
        _key: &str,
        _upload_id: &str,
        _number: u32,
        _data: Bytes,
        _crc: u64,
    ) -> impl Future<Output = Result<String, Error>> + Send {
        async { Err(no_parts()) }
    }

    /// Every part of an open upload, or `None` when the upload no longer exists.
    fn list_parts(
        &self,
        _key: &str,
        _upload_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<ListedPart>>, Error>> + Send {
        async { Err(no_parts()) }
    }

    /// Completes an upload from `(number, etag)` parts; the object's CRC-64 must be `crc`.
    fn complete(
        &self,
        _key: &str,
        _upload_id: &str,
        _parts: &[(u32, String)],
        _crc: u64,
    ) -> impl Future<Output = Result<UploadOutcome, Error>> + Send {
        async { Err(no_parts()) }
    }

    /// Aborts an upload; succeeds when it is already gone.
    fn abort(
        &self,
        _key: &str,
        _upload_id: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        async { Err(no_parts()) }
    }
}

fn gone(e: &Error) -> bool {
    matches!(e, Error::Service(s) if s.code == "NoSuchUpload")
}

/// The real destination: an OSS bucket through [`OssClient`].
#[derive(Debug, Clone)]
pub struct OssDestination {
    client: OssClient,
    bucket: String,
    pace: std::sync::Arc<crate::resume::PartPace>,
}

impl OssDestination {
    /// A bucket reached through a client.
    pub fn new(client: OssClient, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            pace: Default::default(),
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

    fn part_plan(&self) -> Option<PartPlan> {
        let c = self.client.config();
        Some(PartPlan {
            threshold: c.multipart_threshold,
            part_size: c.part_size,
            parts_in_flight: c.parts_in_flight,
            budget: c.memory_budget.clone(),
            pace: self.pace.clone(),
        })
    }

    async fn initiate(&self, key: &str, metadata: &ObjectMetadata) -> Result<String, Error> {
        Ok(self.client.initiate(&self.bucket, key, metadata).await?.0)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
        crc: u64,
    ) -> Result<String, Error> {
        let (_, etag, _) = self
            .client
            .upload_part(&self.bucket, key, upload_id, number, data, crc)
            .await?;
        Ok(etag)
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<ListedPart>>, Error> {
        match self.client.list_parts(&self.bucket, key, upload_id).await {
            Ok(p) => Ok(Some(p)),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        crc: u64,
    ) -> Result<UploadOutcome, Error> {
        self.client
            .complete_upload(&self.bucket, key, upload_id, parts, crc)
            .await
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), Error> {
        match self.client.abort_upload(&self.bucket, key, upload_id).await {
            Err(e) if gone(&e) => Ok(()),
            other => other,
        }
    }
}
