//! An in-memory source whose tests act before it answers: a source overwritten while a copy
//! runs, or one whose HEAD lags behind a newer version.

use super::memory::MemorySource;
use crate::store::object::ByteStream;
use crate::store::source::{SourceError, SourceObject, SourceStore};
use std::future::Future;

/// What runs before a HEAD: given the source and the key, an answer to give instead, if any.
type OnHead = Box<dyn Fn(&MemorySource, &str) -> Option<SourceObject> + Send + Sync>;

/// What runs before a ranged read, given the source and the key.
type OnRange = Box<dyn Fn(&MemorySource, &str) + Send + Sync>;

/// A [`MemorySource`] that runs a test's hooks before each HEAD and each ranged read.
pub struct HookedSource {
    /// The objects the source answers from; a hook may change them.
    pub inner: MemorySource,
    on_head: OnHead,
    on_range: OnRange,
}

impl HookedSource {
    /// The source `inner`, with hooks that do nothing.
    pub fn new(inner: MemorySource) -> Self {
        Self {
            inner,
            on_head: Box::new(|_, _| None),
            on_range: Box::new(|_, _| ()),
        }
    }

    /// Runs `hook` before each HEAD; an object it returns is the HEAD's answer instead.
    pub fn on_head(
        self,
        hook: impl Fn(&MemorySource, &str) -> Option<SourceObject> + Send + Sync + 'static,
    ) -> Self {
        Self {
            on_head: Box::new(hook),
            ..self
        }
    }

    /// Runs `hook` before each ranged read (of a part of a pinned version).
    pub fn on_range(self, hook: impl Fn(&MemorySource, &str) + Send + Sync + 'static) -> Self {
        Self {
            on_range: Box::new(hook),
            ..self
        }
    }
}

impl SourceStore for HookedSource {
    async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
        match (self.on_head)(&self.inner, key) {
            Some(instead) => Ok(Some(instead)),
            None => self.inner.head(key).await,
        }
    }

    async fn get(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<(SourceObject, ByteStream)>, SourceError> {
        self.inner.get(key, if_match).await
    }

    async fn tags(&self, k: &str, v: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
        self.inner.tags(k, v).await
    }

    fn get_range(
        &self,
        key: &str,
        pinned: &str,
        version: Option<&str>,
        from: u64,
        n: u64,
    ) -> impl Future<Output = Result<Option<ByteStream>, SourceError>> + Send {
        (self.on_range)(&self.inner, key);
        self.inner.get_range(key, pinned, version, from, n)
    }
}
