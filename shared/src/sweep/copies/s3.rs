//! The checkpoints read from S3: [`CheckpointObjects`] for the results bucket, a ListObjectsV2
//! page at a time and a GET per checkpoint.

use super::{CheckpointObjects, Listed, ListedPage};
use crate::aws::s3_results::S3ResultsStore;
use crate::aws::s3_source::sdk_error;
use crate::store::source::SourceError;
use bytes::Bytes;
use time::OffsetDateTime;

impl CheckpointObjects for S3ResultsStore {
    async fn list(&self, prefix: &str, token: Option<&str>) -> Result<ListedPage, SourceError> {
        let out = self
            .client()
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(prefix)
            .set_continuation_token(token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("ListObjectsV2", prefix, None, e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Listed {
                    key: o.key()?.to_owned(),
                    last_modified: o
                        .last_modified()
                        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
                })
            })
            .collect();
        let next = if out.is_truncated() == Some(true) {
            Some(
                out.next_continuation_token()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| SourceError::Transport {
                        op: "ListObjectsV2",
                        key: prefix.to_owned(),
                        source: "a truncated page without a continuation token".into(),
                        transient: false,
                    })?
                    .to_owned(),
            )
        } else {
            None
        };
        Ok(ListedPage { objects, next })
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, SourceError> {
        crate::store::checkpoints::CheckpointStore::load(self, key).await
    }
}
