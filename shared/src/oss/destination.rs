//! The destination as deployed: an OSS bucket through [`OssClient`], as the sync core's
//! [`DestinationStore`].

use super::error::Error;
use super::OssClient;
use crate::store::destination::DestinationStore;
use crate::store::object::{ObjectHead, ObjectMetadata};
use crate::store::upload::{
    AbandonedUploads, BodySource, ListedPart, PartPlan, PartUpload, UploadCompletion,
    UploadOutcome, UploadRequest,
};

fn gone(e: &Error) -> bool {
    matches!(e, Error::Service(s) if s.code == "NoSuchUpload")
}

/// The real destination: an OSS bucket through [`OssClient`].
#[derive(Debug, Clone)]
pub struct OssDestination {
    client: OssClient,
    bucket: String,
    pace: std::sync::Arc<crate::store::upload::PartPace>,
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

    async fn upload_part(&self, part: PartUpload<'_>) -> Result<String, Error> {
        let (_, etag, _) = self
            .client
            .upload_part(
                &self.bucket,
                part.key,
                part.upload_id,
                part.number,
                part.data,
                part.crc,
            )
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

    async fn complete(&self, c: UploadCompletion<'_>) -> Result<UploadOutcome, Error> {
        self.client
            .complete_upload(&self.bucket, c.key, c.upload_id, c.parts, c.crc)
            .await
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), Error> {
        match self.client.abort_upload(&self.bucket, key, upload_id).await {
            Err(e) if gone(&e) => Ok(()),
            other => other,
        }
    }
}
