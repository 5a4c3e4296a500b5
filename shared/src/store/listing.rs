//! The listing port: a source bucket's objects read page by page from a position, for a backfill
//! or a verification (S3's ListObjectsV2 in [`crate::aws::s3_lister`], an S3 Inventory with `ctl`).

use crate::store::error::StoreError;
use serde::{Deserialize, Serialize};
use std::future::Future;
use time::OffsetDateTime;

/// How far a listing got: everything before this position was handled (a backfill's
/// checkpoint keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "at")]
pub enum Position {
    /// Nothing yet.
    Start,
    /// Listing: every key up to and including this one.
    AfterKey {
        /// The last key handled.
        key: String,
    },
    /// Inventory: every file before `file`, and the first `rows` rows of it.
    Inventory {
        /// Index into the manifest's `files`.
        file: usize,
        /// Rows of that file handled.
        rows: u64,
    },
}

/// One object to send an event for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key.
    pub key: String,
    /// Its size.
    pub size: Option<u64>,
    /// Its ETag without quotes.
    pub etag: Option<String>,
    /// When it was last modified.
    pub last_modified: Option<OffsetDateTime>,
    /// The position once this object is handled.
    pub position: Position,
    /// Send a delete event for it (a destination object whose source is gone, found by a
    /// verification, with delete sync on) instead of a creation.
    pub removed: bool,
}

/// A page of the listing: the objects, and the position after the page (which also covers rows
/// left out, so a resumed backfill does not read them again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Objects in order.
    pub objects: Vec<Listed>,
    /// Rows read but left out (not current versions, outside the prefix).
    pub not_current: u64,
    /// The position after the whole page, when it differs from the last object's.
    pub end: Option<Position>,
}

/// Reads the objects to backfill, page by page, from a position.
pub trait ObjectLister: Send + 'static {
    /// The next page, or `None` at the end.
    fn next_page(&mut self) -> impl Future<Output = Result<Option<Page>, StoreError>> + Send;
}
