//! The source bucket listed with ListObjectsV2 ([`S3Lister`]), as the listing port.

use crate::store::error::StoreError;
use crate::store::listing::{Listed, ObjectLister, Page, Position};
use time::OffsetDateTime;

/// Lists the source bucket with ListObjectsV2 (URL-encoded keys, so any key survives the XML),
/// after the checkpoint's key.
pub struct S3Lister {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    start_after: Option<String>,
    token: Option<String>,
    done: bool,
    max_keys: Option<i32>,
}

impl S3Lister {
    /// A listing of `bucket` under `prefix`, after `position` (a listing position or the start).
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: &str,
        prefix: &str,
        position: &Position,
    ) -> Result<Self, StoreError> {
        let start_after = match position {
            Position::Start => None,
            Position::AfterKey { key } => Some(key.clone()),
            Position::Inventory { .. } => {
                return Err(StoreError::Input(
                    "the checkpoint is an inventory backfill's; pass the same --inventory".into(),
                ))
            }
        };
        Ok(Self {
            client,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            start_after,
            token: None,
            done: false,
            max_keys: None,
        })
    }

    /// At most `n` keys per page (S3's default, 1,000, otherwise): one key to find where keys
    /// are.
    pub fn max_keys(mut self, n: i32) -> Self {
        self.max_keys = Some(n);
        self
    }
}

impl ObjectLister for S3Lister {
    async fn next_page(&mut self) -> Result<Option<Page>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .encoding_type(aws_sdk_s3::types::EncodingType::Url)
            .set_start_after(self.start_after.clone())
            .set_continuation_token(self.token.clone())
            .set_max_keys(self.max_keys)
            .send()
            .await
            .map_err(|e| crate::aws::error::call_error("S3", "ListObjectsV2", e))?;
        let encoded = out.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url);
        let mut objects = Vec::with_capacity(out.contents().len());
        for o in out.contents() {
            let raw = o.key().unwrap_or_default();
            let key = if encoded {
                crate::event::decode_form_key(raw).map_err(|e| {
                    StoreError::Input(format!("ListObjectsV2 returned a key that {e}"))
                })?
            } else {
                raw.to_owned()
            };
            objects.push(Listed {
                position: Position::AfterKey { key: key.clone() },
                key,
                size: o.size().and_then(|s| u64::try_from(s).ok()),
                etag: o.e_tag().map(|t| t.trim_matches('"').to_owned()),
                last_modified: o
                    .last_modified()
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
                removed: false,
            });
        }
        self.token = out.next_continuation_token().map(str::to_owned);
        self.done = !out.is_truncated().unwrap_or(false) || self.token.is_none();
        if objects.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(Page {
            objects,
            ..Page::default()
        }))
    }
}
