//! In-memory source, destination and results stores: the same traits as S3 and OSS, for
//! component tests of the sync core and for benchmarks that measure the core alone.

mod bucket;
mod destination;

pub use bucket::{common_prefixes, MemoryBucket};
pub use destination::{read_body, MemoryDestination};

use crate::checksum::md5_hex;
use crate::store::checkpoints::CheckpointStore;
use crate::store::object::ByteStream;
use crate::store::results::ResultsStore;
use crate::store::source::{SourceError, SourceMetadata, SourceObject, SourceStore};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A stored source object: its description, bytes and tags.
type Stored = (SourceObject, Bytes, Vec<(String, String)>);

/// A source bucket in memory. ETags are MD5s, as S3 gives for single-part uploads.
#[derive(Debug, Default)]
pub struct MemorySource {
    objects: Mutex<BTreeMap<String, Stored>>,
    /// GETs served (including 404s and 412s).
    pub gets: AtomicU32,
    /// HEADs served.
    pub heads: AtomicU32,
}

impl MemorySource {
    /// Writes (or overwrites) an object; returns its ETag.
    pub fn put(&self, key: &str, body: impl Into<Bytes>, metadata: SourceMetadata) -> String {
        self.put_tagged(key, body, metadata, Vec::new())
    }

    /// Writes an object with tags; returns its ETag.
    pub fn put_tagged(
        &self,
        key: &str,
        body: impl Into<Bytes>,
        metadata: SourceMetadata,
        tags: Vec<(String, String)>,
    ) -> String {
        let body = body.into();
        let head = SourceObject {
            size: body.len() as u64,
            etag: md5_hex(&body),
            version_id: None,
            tag_count: tags.len() as u32,
            etag_is_md5: true,
            metadata,
        };
        let etag = head.etag.clone();
        lock(&self.objects).insert(key.to_owned(), (head, body, tags));
        etag
    }

    /// Deletes an object.
    pub fn delete(&self, key: &str) {
        lock(&self.objects).remove(key);
    }
}

impl SourceStore for MemorySource {
    async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
        self.heads.fetch_add(1, Ordering::Relaxed);
        Ok(lock(&self.objects).get(key).map(|(h, _, _)| h.clone()))
    }

    async fn get(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<(SourceObject, ByteStream)>, SourceError> {
        self.gets.fetch_add(1, Ordering::Relaxed);
        let Some((head, body, _)) = lock(&self.objects).get(key).cloned() else {
            return Ok(None);
        };
        if let Some(etag) = if_match {
            if etag != head.etag {
                return Err(SourceError::Changed {
                    key: key.to_owned(),
                    etag: etag.to_owned(),
                });
            }
        }
        // Small chunks, as a network would give them.
        let chunks: Vec<Result<Bytes, std::io::Error>> = (0..body.len())
            .step_by(64 * 1024)
            .map(|i| Ok(body.slice(i..body.len().min(i + 64 * 1024))))
            .collect();
        Ok(Some((head, futures_util::stream::iter(chunks).boxed())))
    }

    async fn tags(
        &self,
        key: &str,
        _version_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, SourceError> {
        Ok(lock(&self.objects)
            .get(key)
            .map(|(_, _, t)| t.clone())
            .unwrap_or_default())
    }
}

/// A results store in memory; can be made to fail, as in an outage.
#[derive(Debug, Default)]
pub struct MemoryResults {
    objects: Mutex<Vec<(String, Bytes)>>,
    /// While set, every write fails with a transient `ServiceUnavailable`.
    pub outage: AtomicBool,
}

impl MemoryResults {
    /// Every object written, in order.
    pub fn objects(&self) -> Vec<(String, Bytes)> {
        lock(&self.objects).clone()
    }
}

impl ResultsStore for MemoryResults {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), SourceError> {
        if self.outage.load(Ordering::SeqCst) {
            return Err(SourceError::Service {
                op: "PutObject",
                key: key.to_owned(),
                status: 503,
                code: "ServiceUnavailable".into(),
                message: "injected outage".into(),
                request_id: String::new(),
            });
        }
        lock(&self.objects).push((key.to_owned(), body));
        Ok(())
    }
}

/// Checkpoints kept in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    objects: std::sync::Mutex<BTreeMap<String, Bytes>>,
    /// Writes made (saves and removes).
    pub writes: std::sync::atomic::AtomicU32,
}

impl MemoryCheckpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every checkpoint held, by key.
    pub fn all(&self) -> BTreeMap<String, Bytes> {
        self.lock().clone()
    }
}

impl CheckpointStore for MemoryCheckpoints {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        Box::pin(async move { Ok(self.lock().get(key).cloned()) })
    }
    fn save<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), SourceError>> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            self.lock().insert(key.to_owned(), body);
            Ok(())
        })
    }
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SourceError>> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            self.lock().remove(key);
            Ok(())
        })
    }
    fn create<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<bool, SourceError>> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            let mut all = self.lock();
            if all.contains_key(key) {
                return Ok(false);
            }
            all.insert(key.to_owned(), body);
            Ok(true)
        })
    }
}
