//! The sweep's real upload store: a bucket's multipart uploads listed and aborted through the
//! OSS client.

use super::{UploadStore, UploadsListing};
use crate::oss::{Error, OssClient};

/// The real store: a bucket through [`OssClient`].
#[derive(Debug, Clone)]
pub struct OssUploads {
    client: OssClient,
    bucket: String,
}

impl OssUploads {
    /// A bucket reached through a client.
    pub fn new(client: OssClient, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl UploadStore for OssUploads {
    async fn list(&self, prefix: &str, marker: Option<(&str, &str)>, max: u32) -> UploadsListing {
        self.client
            .list_multipart_uploads(&self.bucket, prefix, marker, max)
            .await
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), Error> {
        self.client.abort_upload(&self.bucket, key, upload_id).await
    }
}
