//! An in-memory bucket for the report's stores: the results store's records and the report's
//! own files, listed and read back as the report reads S3 and OSS.

use super::lock;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The folders directly under `prefix` among sorted `keys`, each once, as a listing with the
/// delimiter `/` gives them (`prefix` included, ending in `/`).
pub fn common_prefixes<'a>(
    keys: impl IntoIterator<Item = &'a String>,
    prefix: &str,
) -> Vec<String> {
    let mut out: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let rest = k.strip_prefix(prefix)?;
            let cut = rest.find('/')?;
            Some(format!("{prefix}{}", &rest[..=cut]))
        })
        .collect();
    out.dedup();
    out
}

/// A bucket in memory for reports: a record source and a report store, with the order of its
/// writes kept and a write budget to simulate a crash midway.
#[derive(Debug, Default)]
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, Bytes>>,
    journal: Mutex<Vec<String>>,
    /// When set, writes fail once this many more have succeeded (a crash midway).
    pub writes_left: Mutex<Option<u32>>,
}

impl MemoryBucket {
    /// Writes an object directly (test set-up).
    pub fn insert(&self, key: &str, body: impl Into<Bytes>) {
        lock(&self.objects).insert(key.to_owned(), body.into());
    }

    /// An object.
    pub fn object(&self, key: &str) -> Option<Bytes> {
        lock(&self.objects).get(key).cloned()
    }

    /// Every object.
    pub fn snapshot(&self) -> BTreeMap<String, Bytes> {
        lock(&self.objects).clone()
    }

    /// Keys written through [`crate::report::build::ReportStore::put`], in order.
    pub fn journal(&self) -> Vec<String> {
        lock(&self.journal).clone()
    }

    fn prefixes(&self, prefix: &str) -> Vec<String> {
        common_prefixes(lock(&self.objects).keys(), prefix)
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        lock(&self.objects)
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }
}

impl crate::report::build::Listing for MemoryBucket {
    async fn list_keys(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, crate::report::build::ReportError> {
        Ok(self.keys(prefix))
    }
    async fn list_prefixes(
        &self,
        prefix: &str,
    ) -> Result<Vec<String>, crate::report::build::ReportError> {
        Ok(self.prefixes(prefix))
    }
}

impl crate::report::build::RecordSource for MemoryBucket {
    async fn get(&self, key: &str) -> Result<Bytes, crate::report::build::ReportError> {
        self.object(key).ok_or_else(|| {
            crate::report::build::ReportError::Results(format!("{key}: NoSuchKey").into())
        })
    }
}

impl crate::report::build::ReportStore for MemoryBucket {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), crate::report::build::ReportError> {
        {
            let mut left = lock(&self.writes_left);
            match left.as_mut() {
                Some(0) => {
                    return Err(crate::report::build::ReportError::Destination(
                        format!("{key}: injected crash").into(),
                    ))
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        lock(&self.objects).insert(key.to_owned(), body);
        lock(&self.journal).push(key.to_owned());
        Ok(())
    }
    async fn exists(&self, key: &str) -> Result<bool, crate::report::build::ReportError> {
        Ok(lock(&self.objects).contains_key(key))
    }
    async fn delete(&self, key: &str) -> Result<(), crate::report::build::ReportError> {
        lock(&self.objects).remove(key);
        Ok(())
    }
}
