//! The two sides as deployed: S3 (ListObjectsV2, or an S3 Inventory with `ctl`) and OSS
//! (ListObjectsV2), and their HEADs.

use super::join::{DestHead, Entry, SourceHead};
use super::run::{Pages, Sides, VerifyError};
use crate::aws::s3_lister::S3Lister;
use crate::aws::s3_source::S3Source;
use crate::oss::OssClient;
use crate::store::listing::Position;
use crate::store::listing::{Listed, ObjectLister};
use crate::store::source::SourceStore;
use crate::sync::metadata::{metadata_fingerprint, read_marker};

/// Keys per ListObjectsV2 page.
const PAGE_KEYS: u32 = 1000;

/// Where the source's listing comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceListing {
    /// ListObjectsV2 of the source bucket.
    List,
    /// An S3 Inventory (CSV), `s3://bucket/key/manifest.json`: one listing in its order, which
    /// must be key order.
    #[cfg(feature = "control")]
    Inventory(String),
}

/// S3 and OSS.
pub struct CloudSides {
    /// The S3 client.
    pub s3: aws_sdk_s3::Client,
    /// The source bucket.
    pub source_bucket: String,
    /// Where the source listing comes from.
    pub listing: SourceListing,
    /// The OSS client.
    pub oss: OssClient,
    /// The destination bucket.
    pub dest_bucket: String,
}

fn entry(o: Listed) -> Entry {
    Entry {
        key: o.key,
        size: o.size.unwrap_or(0),
        etag: o.etag.unwrap_or_default(),
        // Unknown: never "written after" it, so the rule asks the HEADs.
        modified: o.last_modified.map_or(i64::MAX, |t| t.unix_timestamp()),
    }
}

/// The source listing: a bucket listing, or an inventory's rows.
pub enum SourcePages {
    /// ListObjectsV2.
    List(S3Lister),
    /// An S3 Inventory.
    #[cfg(feature = "control")]
    Inventory(Box<crate::aws::s3_inventory::InventoryLister>),
}

impl Pages for SourcePages {
    async fn next_page(&mut self) -> Result<Option<Vec<Entry>>, VerifyError> {
        let page = match self {
            SourcePages::List(l) => l.next_page().await,
            #[cfg(feature = "control")]
            SourcePages::Inventory(l) => l.next_page().await,
        }
        .map_err(VerifyError::Source)?;
        Ok(page.map(|p| p.objects.into_iter().map(entry).collect()))
    }
}

/// The OSS listing, page by page.
pub struct DestPages {
    oss: OssClient,
    bucket: String,
    prefix: String,
    after: Option<String>,
    token: Option<String>,
    done: bool,
}

impl Pages for DestPages {
    async fn next_page(&mut self) -> Result<Option<Vec<Entry>>, VerifyError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .oss
            .list_objects_v2_after(
                &self.bucket,
                &self.prefix,
                None,
                self.after.as_deref(),
                self.token.as_deref(),
                PAGE_KEYS,
            )
            .await
            .map_err(|source| VerifyError::Dest {
                op: "ListObjectsV2",
                source,
            })?;
        self.token = page.next_token;
        self.done = self.token.is_none();
        let rfc3339 = time::format_description::well_known::Rfc3339;
        Ok(Some(
            page.objects
                .into_iter()
                .map(|o| Entry {
                    modified: time::OffsetDateTime::parse(&o.last_modified, &rfc3339)
                        // Unknown: never later than S3, so the rule asks the HEADs.
                        .map_or(i64::MIN, |t| t.unix_timestamp()),
                    etag: o.etag.trim_matches('"').to_owned(),
                    key: o.key,
                    size: o.size,
                })
                .collect(),
        ))
    }
}

impl Sides for CloudSides {
    type SourcePages = SourcePages;
    type DestPages = DestPages;

    async fn source_pages(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> Result<SourcePages, VerifyError> {
        let position = match after {
            None => Position::Start,
            Some(key) => Position::AfterKey { key },
        };
        match &self.listing {
            SourceListing::List => Ok(SourcePages::List(
                S3Lister::new(self.s3.clone(), &self.source_bucket, prefix, &position)
                    .map_err(VerifyError::Source)?,
            )),
            #[cfg(feature = "control")]
            SourceListing::Inventory(manifest) => crate::aws::s3_inventory::InventoryLister::open(
                self.s3.clone(),
                manifest,
                &self.source_bucket,
                prefix,
                &position,
            )
            .await
            .map(|l| SourcePages::Inventory(Box::new(l)))
            .map_err(VerifyError::Source),
        }
    }

    fn dest_pages(&self, prefix: &str, after: Option<String>) -> DestPages {
        DestPages {
            oss: self.oss.clone(),
            bucket: self.dest_bucket.clone(),
            prefix: prefix.to_owned(),
            after,
            token: None,
            done: false,
        }
    }

    fn can_split(&self) -> bool {
        self.listing == SourceListing::List
    }

    async fn first_source_key_after(
        &self,
        prefix: &str,
        after: &str,
    ) -> Result<Option<String>, VerifyError> {
        let mut lister = S3Lister::new(
            self.s3.clone(),
            &self.source_bucket,
            prefix,
            &Position::AfterKey {
                key: after.to_owned(),
            },
        )
        .map_err(VerifyError::Source)?
        .max_keys(1);
        let page = lister.next_page().await.map_err(VerifyError::Source)?;
        Ok(page
            .and_then(|p| p.objects.into_iter().next())
            .map(|o| o.key))
    }

    async fn head_dest(&self, key: &str) -> Result<DestHead, VerifyError> {
        let head = self
            .oss
            .head_object(&self.dest_bucket, key)
            .await
            .map_err(|source| VerifyError::Dest {
                op: "HeadObject",
                source,
            })?;
        Ok(match head {
            None => DestHead::Gone,
            Some(h) => DestHead::Found {
                size: h.size,
                marker: read_marker(&h).map(|m| (m.etag, m.fingerprint)),
            },
        })
    }

    async fn head_source(&self, key: &str) -> Result<SourceHead, VerifyError> {
        let source = S3Source::new(self.s3.clone(), self.source_bucket.clone());
        Ok(
            match source.head(key).await.map_err(VerifyError::SourceHead)? {
                None => SourceHead::Gone,
                Some(o) => SourceHead::Found {
                    fingerprint: metadata_fingerprint(&o.metadata),
                    etag: o.etag.trim_matches('"').to_owned(),
                    size: o.size,
                },
            },
        )
    }
}
