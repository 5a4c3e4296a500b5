//! What a destination upload takes and gives: the body's source, the request, the outcome, the
//! parts of an open multipart upload, and how a destination takes large objects in parts.

use super::object::{ByteStream, ObjectMetadata};
use crate::budget::MemoryBudget;
use crate::oss::error::Error;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::time::Duration;

/// Where an upload's bytes come from. `open` starts the body from its first byte, and is called
/// again for each retry of a single-request upload.
pub trait BodySource: Send + Sync {
    /// Opens the body.
    fn open(&self) -> BoxFuture<'_, Result<ByteStream, Error>>;
}

/// A body already in memory.
#[derive(Debug, Clone)]
pub struct BytesSource(pub Bytes);

impl BodySource for BytesSource {
    fn open(&self) -> BoxFuture<'_, Result<ByteStream, Error>> {
        let b = self.0.clone();
        Box::pin(async move { Ok(futures_util::stream::once(async move { Ok(b) }).boxed()) })
    }
}

/// What to upload.
#[derive(Debug, Clone, Copy)]
pub struct UploadRequest<'a> {
    /// Destination bucket.
    pub bucket: &'a str,
    /// Destination key.
    pub key: &'a str,
    /// Exact size of the body.
    pub size: u64,
    /// Metadata to set.
    pub metadata: &'a ObjectMetadata,
    /// MD5 of the whole body, if known before sending (e.g. from a non-multipart S3 ETag).
    pub content_md5: Option<[u8; 16]>,
}

/// What an upload achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// ETag OSS gave the object.
    pub etag: String,
    /// CRC-64 of the bytes sent, equal to what OSS reported.
    pub crc64: u64,
    /// Requests made in all, retries included.
    pub requests: u32,
    /// Parts (0 for a single PutObject).
    pub parts: u32,
    /// Request id of the final write.
    pub request_id: String,
}

/// A multipart upload the client initiated and has not completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
}

/// One part of an open upload, as ListParts reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPart {
    /// Part number (1 to 10,000).
    pub number: u32,
    /// ETag OSS gave the part.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC-64 of the part as OSS stored it, when reported.
    pub crc64: Option<u64>,
}

/// One part of an open multipart upload, as a destination store takes it
/// ([`super::destination::DestinationStore::upload_part`]).
#[derive(Debug, Clone)]
pub struct PartUpload<'a> {
    /// The object's key.
    pub key: &'a str,
    /// The upload's id.
    pub upload_id: &'a str,
    /// Part number (1 to 10,000).
    pub number: u32,
    /// The part's bytes.
    pub data: Bytes,
    /// Their CRC-64; the one the store reports for the part must be this.
    pub crc: u64,
}

/// The completion of an open multipart upload, as a destination store takes it
/// ([`super::destination::DestinationStore::complete`]).
#[derive(Debug, Clone)]
pub struct UploadCompletion<'a> {
    /// The object's key.
    pub key: &'a str,
    /// The upload's id.
    pub upload_id: &'a str,
    /// The parts, `(number, etag)`, in order.
    pub parts: &'a [(u32, String)],
    /// The CRC-64 the whole object must have.
    pub crc: u64,
}

/// What [`crate::oss::OssClient::abort_abandoned_uploads`] did.
#[derive(Debug, Default)]
pub struct AbandonedUploads {
    /// Uploads aborted (or found already gone: completed just before their job was dropped).
    pub aborted: usize,
    /// Uploads whose abort failed, with the error; they stay on the list for the next call.
    pub failed: Vec<(OpenUpload, Error)>,
}

/// How long a part takes, as this process has seen: seconds per byte of one part upload (its
/// ranged read included), an exponentially weighted average, so a copy knows before its first
/// part whether one still fits before its stop time; and how long a copy's finish took (the
/// write-ahead and the completion), so a copy whose parts are done starts its completion only
/// when the slowest finish seen still fits before the drop time.
#[derive(Debug, Default)]
pub struct PartPace {
    per_byte: std::sync::Mutex<Option<f64>>,
    finish: std::sync::Mutex<Option<Duration>>,
}

impl PartPace {
    /// The expected time of a part of `size` bytes, if a part has been timed.
    pub fn expect(&self, size: u64) -> Option<Duration> {
        let spb = (*self.per_byte.lock().unwrap_or_else(|p| p.into_inner()))?;
        Some(Duration::from_secs_f64((spb * size as f64).min(86_400.0)))
    }

    /// Learns from one part of `size` bytes of a copy whose parts are `part_size`. A part under
    /// half that (the short last part) teaches nothing: its time is round trips, not bytes, and
    /// taken as a rate it would predict hours for a full part and stop every later copy after
    /// one part.
    pub fn observe(&self, size: u64, part_size: u64, took: Duration) {
        if size == 0 || size < part_size / 2 {
            return;
        }
        let spb = took.as_secs_f64() / size as f64;
        let mut p = self.per_byte.lock().unwrap_or_else(|p| p.into_inner());
        *p = Some(p.map_or(spb, |old| 0.7 * old + 0.3 * spb));
    }

    /// The slowest finish seen (write-ahead and completion), if one has been timed.
    pub fn expect_finish(&self) -> Option<Duration> {
        *self.finish.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Learns from one finish that took `took`; the slowest is kept, as a completion cut off
    /// costs a delivery and a record in doubt, where one started a delivery later costs little.
    pub fn observe_finish(&self, took: Duration) {
        let mut f = self.finish.lock().unwrap_or_else(|p| p.into_inner());
        *f = Some(f.map_or(took, |old| old.max(took)));
    }
}

/// How a destination takes large objects in parts.
#[derive(Debug, Clone)]
pub struct PartPlan {
    /// Objects larger than this are copied in parts, resumably.
    pub threshold: u64,
    /// Preferred part size (raised for objects that would need more than 10,000 parts).
    pub part_size: u64,
    /// Parts read and uploaded at once per object.
    pub parts_in_flight: usize,
    /// Memory for part buffers, shared with every other upload of the process.
    pub budget: MemoryBudget,
    /// How long parts have taken in this process.
    pub pace: std::sync::Arc<PartPace>,
}
