//! The source port: what the sync core needs from the source bucket (head, a streaming GET pinned
//! to an ETag, tags, ranges). S3's implementation is [`crate::aws::s3_source::S3Source`].

use super::object::{ByteStream, ObjectMetadata};
use crate::errors::BoxError;
use futures_util::StreamExt;
use std::future::Future;

/// Metadata of a source object: the same fields as OSS keeps, read from S3. `user` holds the
/// `x-amz-meta-*` names as S3 gives them (lower-case), sorted; `storage_class` is S3's class name
/// (`STANDARD` when S3 does not say); `tagging` is never set (tags are read separately).
pub type SourceMetadata = ObjectMetadata;

/// One version of a source object, as HEAD or GET describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceObject {
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes.
    pub etag: String,
    /// Version id, when the bucket is versioned.
    pub version_id: Option<String>,
    /// Number of tags.
    pub tag_count: u32,
    /// Whether the ETag is the MD5 of the bytes (single-part upload, no KMS or customer key).
    pub etag_is_md5: bool,
    /// Metadata.
    pub metadata: SourceMetadata,
}

impl SourceObject {
    /// The MD5 of the body, when the ETag is one.
    pub fn md5(&self) -> Option<[u8; 16]> {
        if !self.etag_is_md5 || self.etag.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(&self.etag, &mut out).ok()?;
        Some(out)
    }
}

/// Everything reading the source can fail with.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The object is no longer the version the read was pinned to (`If-Match` failed).
    #[error("source object {key:?} changed since ETag {etag} was read")]
    Changed {
        /// Source key.
        key: String,
        /// The ETag the read was pinned to.
        etag: String,
    },
    /// S3 answered with an error.
    #[error(
        "S3 {op} of {key:?} failed: HTTP {status} {code}: {message} (request id {request_id})"
    )]
    Service {
        /// The operation.
        op: &'static str,
        /// Source key.
        key: String,
        /// HTTP status.
        status: u16,
        /// S3 error code.
        code: String,
        /// S3's message.
        message: String,
        /// S3 request id.
        request_id: String,
    },
    /// The request could not be sent or the answer not read.
    #[error("S3 {op} of {key:?} failed: {source}")]
    Transport {
        /// The operation.
        op: &'static str,
        /// Source key.
        key: String,
        /// The cause: the SDK's or the body's error, or a message when the answer itself is the
        /// problem.
        #[source]
        source: BoxError,
        /// Whether trying again may succeed.
        transient: bool,
    },
}

impl SourceError {
    /// A request that could not be sent, or an answer that could not be read or used, for
    /// `source` (an error, or a message).
    pub fn transport(
        op: &'static str,
        key: impl Into<String>,
        source: impl Into<BoxError>,
        transient: bool,
    ) -> Self {
        Self::Transport {
            op,
            key: key.into(),
            source: source.into(),
            transient,
        }
    }

    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Changed { .. } => true,
            Self::Service { status, code, .. } => super::error::transient_answer(*status, code),
            Self::Transport { transient, .. } => *transient,
        }
    }

    /// The S3 error code, or a short name for client-side errors.
    pub fn code(&self) -> &str {
        match self {
            Self::Changed { .. } => "SourceChanged",
            Self::Service { code, .. } => code,
            Self::Transport { .. } => "SourceTransportError",
        }
    }
}

/// The source bucket, as the sync core sees it.
pub trait SourceStore: Send + Sync {
    /// The current version's description, or `None` if the key does not exist.
    fn head(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<SourceObject>, SourceError>> + Send;

    /// Opens the current version for reading, or `None` if the key does not exist. With
    /// `if_match`, fails with [`SourceError::Changed`] unless the current ETag is that one.
    fn get(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> impl Future<Output = Result<Option<(SourceObject, ByteStream)>, SourceError>> + Send;

    /// The tags of a version.
    fn tags(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(String, String)>, SourceError>> + Send;

    /// Opens `len` bytes from `start` of the version with ETag `etag` (and version id
    /// `version_id`, when given): `None` if the key (or version) does not exist,
    /// [`SourceError::Changed`] if the current version has another ETag. The default reads the
    /// pinned version from its first byte and skips to `start`; stores that can ask for a range
    /// do.
    fn get_range(
        &self,
        key: &str,
        etag: &str,
        _version_id: Option<&str>,
        start: u64,
        len: u64,
    ) -> impl Future<Output = Result<Option<ByteStream>, SourceError>> + Send {
        async move {
            let Some((_, stream)) = self.get(key, Some(etag)).await? else {
                return Ok(None);
            };
            Ok(Some(skip_take(stream, start, len)))
        }
    }
}

/// The bytes `start..start + len` of a stream.
pub fn skip_take(stream: ByteStream, start: u64, len: u64) -> ByteStream {
    use futures_util::future::ready;
    let end = start + len;
    stream
        .scan(0u64, move |at, item| {
            if *at >= end {
                return ready(None);
            }
            let out = item.map(|b| {
                let (from, to) = (*at, *at + b.len() as u64);
                *at = to;
                let lo = start.clamp(from, to) - from;
                let hi = end.clamp(from, to) - from;
                b.slice(lo as usize..hi as usize)
            });
            ready(Some(out))
        })
        .filter(|item| ready(!matches!(item, Ok(b) if b.is_empty())))
        .boxed()
}
