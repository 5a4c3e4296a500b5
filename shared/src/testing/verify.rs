//! Both sides of a verification in memory: objects by key, with what a HEAD shows beyond the
//! listing, and counts of the listings and HEADs made.

use crate::verify::join::{DestHead, Entry, SourceHead};
use crate::verify::run::{Pages, Sides, VerifyError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// An object on one side, with what a HEAD shows beyond the listing.
#[derive(Debug, Clone)]
pub struct Obj {
    /// Its size.
    pub size: u64,
    /// Its ETag, without quotes.
    pub etag: String,
    /// Last modified, whole seconds since the epoch.
    pub modified: i64,
    /// Source: its metadata fingerprint; destination: its marker's fingerprint.
    pub fingerprint: String,
    /// Destination: the marker's source ETag (`None`: no marker).
    pub marker: Option<String>,
}

impl Obj {
    /// The object as a listing shows it under `key`.
    fn entry(&self, key: &str) -> Entry {
        Entry {
            key: key.to_owned(),
            size: self.size,
            etag: self.etag.clone(),
            modified: self.modified,
        }
    }
}

/// An object of fingerprint `f1`; on the destination, marked as the copy of ETag `etag`.
pub fn obj(size: u64, etag: &str, modified: i64) -> Obj {
    Obj {
        size,
        etag: etag.into(),
        modified,
        fingerprint: "f1".into(),
        marker: Some(etag.into()),
    }
}

/// Both sides, keyed by their own keys.
#[derive(Default)]
pub struct MemorySides {
    /// The source's objects.
    pub source: Mutex<BTreeMap<String, Obj>>,
    /// The destination's objects.
    pub dest: Mutex<BTreeMap<String, Obj>>,
    /// Source listings started.
    pub listings: AtomicU64,
    /// Destination HEADs made.
    pub dest_heads: AtomicU64,
    /// Source HEADs made.
    pub source_heads: AtomicU64,
    /// An inventory-like source: one listing, in the order given (`unsorted` swaps two keys).
    pub inventory: bool,
    /// A source listing of more than ten keys gives its 4th and 10th keys swapped (out of order).
    pub unsorted: bool,
}

impl Sides for MemorySides {
    type SourcePages = MemPages;
    type DestPages = MemPages;

    fn can_split(&self) -> bool {
        !self.inventory
    }

    async fn source_pages(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> Result<MemPages, VerifyError> {
        self.listings.fetch_add(1, Ordering::Relaxed);
        let mut pages = listing(&self.source.lock().unwrap(), prefix, after);
        if self.unsorted && pages.0.len() > 10 {
            pages.0.swap(3, 9);
        }
        Ok(pages)
    }

    fn dest_pages(&self, prefix: &str, after: Option<String>) -> MemPages {
        listing(&self.dest.lock().unwrap(), prefix, after)
    }

    async fn first_source_key_after(
        &self,
        prefix: &str,
        after: &str,
    ) -> Result<Option<String>, VerifyError> {
        Ok(self
            .source
            .lock()
            .unwrap()
            .keys()
            .find(|k| k.starts_with(prefix) && k.as_str() > after)
            .cloned())
    }

    async fn head_dest(&self, key: &str) -> Result<DestHead, VerifyError> {
        self.dest_heads.fetch_add(1, Ordering::Relaxed);
        Ok(match self.dest.lock().unwrap().get(key) {
            None => DestHead::Gone,
            Some(o) => DestHead::Found {
                size: o.size,
                marker: o.marker.clone().map(|m| (m, Some(o.fingerprint.clone()))),
            },
        })
    }

    async fn head_source(&self, key: &str) -> Result<SourceHead, VerifyError> {
        self.source_heads.fetch_add(1, Ordering::Relaxed);
        Ok(match self.source.lock().unwrap().get(key) {
            None => SourceHead::Gone,
            Some(o) => SourceHead::Found {
                etag: o.etag.clone(),
                size: o.size,
                fingerprint: o.fingerprint.clone(),
            },
        })
    }
}

/// A listing held in memory, given out seven entries a page (so a listing of a few keys already
/// spans pages).
pub struct MemPages(Vec<Entry>);

impl Pages for MemPages {
    async fn next_page(&mut self) -> Result<Option<Vec<Entry>>, VerifyError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let n = self.0.len().min(7);
        Ok(Some(self.0.drain(..n).collect()))
    }
}

/// The keys of `map` that start with `prefix` and come after `after` (every such key when
/// `None`), in key order.
fn listing(map: &BTreeMap<String, Obj>, prefix: &str, after: Option<String>) -> MemPages {
    MemPages(
        map.iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()))
            .map(|(k, o)| o.entry(k))
            .collect(),
    )
}
