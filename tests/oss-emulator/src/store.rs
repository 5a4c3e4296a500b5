//! The emulator's state: buckets, objects, multipart uploads and a journal of writes in order.
//!
//! Object bodies are lists of `Bytes` segments, so completing a multipart upload links its parts
//! without copying them. With a data directory, objects are also written to disk and loaded at
//! start; multipart uploads in progress live in memory only.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// How an object was written, as OSS reports it in `x-oss-object-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectType {
    /// Written by PutObject.
    Normal,
    /// Written by CompleteMultipartUpload.
    Multipart,
}

impl ObjectType {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Multipart => "Multipart",
        }
    }
}

/// What OSS keeps about an object besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// The ETag as OSS returns it, quoted (`"HEX"` or `"HEX-N"`).
    pub etag: String,
    /// CRC-64/XZ of the whole object.
    pub crc64: u64,
    /// Base64 MD5 of the whole object, for objects written in one request.
    pub content_md5: Option<String>,
    /// Last write time.
    pub last_modified: SystemTime,
    /// How it was written.
    pub object_type: ObjectType,
    /// Standard headers (`content-type`, `cache-control`, ...) and `x-oss-meta-*`, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Storage class (`Standard`, `IA`, ...).
    pub storage_class: String,
    /// Tags, in the order given.
    pub tags: Vec<(String, String)>,
}

/// An object: its metadata and its bytes as segments.
#[derive(Debug, Clone)]
pub struct Object {
    /// Metadata.
    pub meta: ObjectMeta,
    /// The bytes, in order.
    pub body: Arc<Vec<Bytes>>,
}

/// One uploaded part of a multipart upload.
#[derive(Debug, Clone)]
pub struct Part {
    /// Quoted upper-case MD5.
    pub etag: String,
    /// Raw MD5 (for the multipart ETag).
    pub md5: [u8; 16],
    /// CRC-64 of the part.
    pub crc64: u64,
    /// Size in bytes.
    pub size: u64,
    /// Upload time.
    pub last_modified: SystemTime,
    /// The bytes.
    pub body: Vec<Bytes>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Metadata given at initiation (size, ETag and CRC are filled at completion).
    pub meta: ObjectMeta,
    /// Parts by number.
    pub parts: BTreeMap<u32, Part>,
    /// When it was initiated (ListMultipartUploads' `Initiated`).
    pub initiated: SystemTime,
}

/// One upload in progress, as ListMultipartUploads reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadEntry {
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When it was initiated.
    pub initiated: SystemTime,
}

/// One committed write, for tests that check the order in which objects were written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    /// Position in the journal, from 1.
    pub seq: u64,
    /// `put`, `complete`, `delete` or `abort` (of a multipart upload).
    pub op: &'static str,
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
}

/// All state, behind one lock held only for short, non-blocking sections.
#[derive(Debug, Default)]
pub struct Store {
    buckets: HashMap<String, BTreeMap<String, Object>>,
    uploads: HashMap<String, Upload>,
    journal: Vec<JournalEntry>,
    next_upload: u64,
}

impl Store {
    /// Whether a bucket exists.
    pub fn has_bucket(&self, bucket: &str) -> bool {
        self.buckets.contains_key(bucket)
    }

    /// Creates a bucket if it does not exist.
    pub fn create_bucket(&mut self, bucket: &str) {
        self.buckets.entry(bucket.to_owned()).or_default();
    }

    /// An object, if present.
    pub fn get(&self, bucket: &str, key: &str) -> Option<Object> {
        self.buckets.get(bucket)?.get(key).cloned()
    }

    /// The objects of a bucket in key order, starting at `from` (inclusive).
    pub fn range<'a>(
        &'a self,
        bucket: &str,
        from: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Object)> + 'a {
        self.buckets.get(bucket).into_iter().flat_map(move |b| {
            b.range::<str, _>((std::ops::Bound::Included(from), std::ops::Bound::Unbounded))
        })
    }

    fn record(&mut self, op: &'static str, bucket: &str, key: &str) {
        let seq = self.journal.len() as u64 + 1;
        self.journal.push(JournalEntry {
            seq,
            op,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        });
    }

    /// Stores an object, replacing any previous one.
    pub fn put(&mut self, bucket: &str, key: &str, object: Object) {
        let op = match object.meta.object_type {
            ObjectType::Normal => "put",
            ObjectType::Multipart => "complete",
        };
        self.buckets
            .entry(bucket.to_owned())
            .or_default()
            .insert(key.to_owned(), object);
        self.record(op, bucket, key);
    }

    /// Removes an object; true if it existed.
    pub fn delete(&mut self, bucket: &str, key: &str) -> bool {
        let existed = self
            .buckets
            .get_mut(bucket)
            .and_then(|b| b.remove(key))
            .is_some();
        self.record("delete", bucket, key);
        existed
    }

    /// Starts a multipart upload and returns its id.
    pub fn initiate(&mut self, bucket: &str, key: &str, meta: ObjectMeta) -> String {
        self.next_upload += 1;
        let id = format!(
            "{:032X}",
            u128::from(self.next_upload) ^ rand::random::<u128>() << 16
        );
        self.uploads.insert(
            id.clone(),
            Upload {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                meta,
                parts: BTreeMap::new(),
                initiated: SystemTime::now(),
            },
        );
        id
    }

    /// The upload with this id, if it is for this bucket and key.
    pub fn upload(&self, id: &str, bucket: &str, key: &str) -> Option<&Upload> {
        self.uploads
            .get(id)
            .filter(|u| u.bucket == bucket && u.key == key)
    }

    /// Adds or replaces a part; false if the upload does not exist.
    pub fn put_part(&mut self, id: &str, bucket: &str, key: &str, number: u32, part: Part) -> bool {
        match self.uploads.get_mut(id) {
            Some(u) if u.bucket == bucket && u.key == key => {
                u.parts.insert(number, part);
                true
            }
            _ => false,
        }
    }

    /// Removes an upload and returns it.
    pub fn take_upload(&mut self, id: &str) -> Option<Upload> {
        self.uploads.remove(id)
    }

    /// Aborts an upload (AbortMultipartUpload), journalled as `abort` of its key.
    pub fn abort_upload(&mut self, id: &str) -> Option<Upload> {
        let upload = self.uploads.remove(id)?;
        self.record("abort", &upload.bucket.clone(), &upload.key.clone());
        Some(upload)
    }

    /// The uploads in progress in a bucket under `prefix`, ordered by key, then upload id (the
    /// order the key and upload-id markers of ListMultipartUploads page through).
    pub fn uploads_in(&self, bucket: &str, prefix: &str) -> Vec<UploadEntry> {
        let mut out: Vec<UploadEntry> = self
            .uploads
            .iter()
            .filter(|(_, u)| u.bucket == bucket && u.key.starts_with(prefix))
            .map(|(id, u)| UploadEntry {
                key: u.key.clone(),
                upload_id: id.clone(),
                initiated: u.initiated,
            })
            .collect();
        out.sort_by(|a, b| (&a.key, &a.upload_id).cmp(&(&b.key, &b.upload_id)));
        out
    }

    /// Moves the initiation time of every upload in progress whose key starts with `prefix`
    /// back by `by` (so tests can make uploads look old); returns how many were moved.
    pub fn age_uploads(&mut self, prefix: &str, by: std::time::Duration) -> usize {
        let mut n = 0;
        for u in self.uploads.values_mut() {
            if u.key.starts_with(prefix) {
                u.initiated = u
                    .initiated
                    .checked_sub(by)
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                n += 1;
            }
        }
        n
    }

    /// How many multipart uploads are in progress.
    pub fn uploads_in_progress(&self) -> usize {
        self.uploads.len()
    }

    /// The journal of committed writes, oldest first.
    pub fn journal(&self) -> &[JournalEntry] {
        &self.journal
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

/// On-disk persistence for a data directory: `<dir>/<bucket>/<hex key>.json` and `.data`.
#[derive(Debug, Clone)]
pub struct Disk {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct DiskMeta {
    key: String,
    meta: ObjectMeta,
}

impl Disk {
    /// Uses `dir`, creating it if needed.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn paths(&self, bucket: &str, key: &str) -> (PathBuf, PathBuf) {
        let stem = hex::encode(key.as_bytes());
        let base = self.dir.join(bucket);
        (
            base.join(format!("{stem}.json")),
            base.join(format!("{stem}.data")),
        )
    }

    /// Writes an object (data first, then metadata, each through a rename).
    pub fn save(&self, bucket: &str, key: &str, object: &Object) -> std::io::Result<()> {
        let (meta_path, data_path) = self.paths(bucket, key);
        std::fs::create_dir_all(self.dir.join(bucket))?;
        let mut data = Vec::with_capacity(object.meta.size as usize);
        for seg in object.body.iter() {
            data.extend_from_slice(seg);
        }
        write_atomic(&data_path, &data)?;
        let meta = serde_json::to_vec(&DiskMeta {
            key: key.to_owned(),
            meta: object.meta.clone(),
        })?;
        write_atomic(&meta_path, &meta)
    }

    /// Removes an object's files, if any.
    pub fn remove(&self, bucket: &str, key: &str) -> std::io::Result<()> {
        let (meta_path, data_path) = self.paths(bucket, key);
        for p in [meta_path, data_path] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Loads every bucket and object found into a store (without journal entries).
    pub fn load(&self, store: &mut Store) -> std::io::Result<usize> {
        let mut n = 0;
        for bucket in std::fs::read_dir(&self.dir)? {
            let bucket = bucket?;
            if !bucket.file_type()?.is_dir() {
                continue;
            }
            let name = bucket.file_name().to_string_lossy().into_owned();
            let objects = store.buckets.entry(name).or_default();
            for f in std::fs::read_dir(bucket.path())? {
                let path = f?.path();
                if path.extension().is_some_and(|e| e == "json") {
                    let m: DiskMeta = serde_json::from_slice(&std::fs::read(&path)?)?;
                    let data = std::fs::read(path.with_extension("data"))?;
                    objects.insert(
                        m.key,
                        Object {
                            meta: m.meta,
                            body: Arc::new(vec![Bytes::from(data)]),
                        },
                    );
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(tmp, path)
}

/// Copies the byte range `[start, end)` of a segmented body into new segments (cheap slices).
pub fn slice_segments(body: &[Bytes], start: u64, end: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for seg in body {
        let len = seg.len() as u64;
        let (seg_start, seg_end) = (offset, offset + len);
        offset = seg_end;
        if seg_end <= start || seg_start >= end {
            continue;
        }
        let from = start.saturating_sub(seg_start) as usize;
        let to = (end.min(seg_end) - seg_start) as usize;
        out.push(seg.slice(from..to));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_across_segments() {
        let body = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"h"),
        ];
        let cat = |v: Vec<Bytes>| v.iter().flat_map(|b| b.to_vec()).collect::<Vec<u8>>();
        assert_eq!(cat(slice_segments(&body, 0, 8)), b"abcdefgh");
        assert_eq!(cat(slice_segments(&body, 2, 5)), b"cde");
        assert_eq!(cat(slice_segments(&body, 7, 8)), b"h");
        assert_eq!(cat(slice_segments(&body, 3, 7)), b"defg");
        assert!(slice_segments(&body, 8, 8).is_empty());
    }
}
