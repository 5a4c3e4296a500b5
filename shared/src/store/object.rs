//! The objects both stores describe: metadata (standard headers, user metadata, storage class,
//! tags), a destination object's HEAD, and a body as a stream of bytes. The OSS header mapping of
//! these types is in [`crate::oss::object`].

use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;

/// A stream of body bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Object metadata as both stores keep it: the standard headers, user metadata, storage class and tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMetadata {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Expires`.
    pub expires: Option<String>,
    /// User metadata (`x-oss-meta-NAME`), names lower-case without the prefix, sorted.
    pub user: Vec<(String, String)>,
    /// Storage class (`Standard`, `IA`, `Archive`, ...), if set.
    pub storage_class: Option<String>,
    /// Tags as `x-oss-tagging` carries them (`k=v&k2=v2`, URL-encoded), on upload only.
    pub tagging: Option<String>,
}

/// What HeadObject (or GetObject) says about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size in bytes.
    pub size: u64,
    /// ETag, quoted.
    pub etag: String,
    /// CRC-64 OSS holds, if reported.
    pub crc64: Option<u64>,
    /// `Last-Modified`.
    pub last_modified: Option<String>,
    /// `Normal`, `Multipart`, `Appendable`.
    pub object_type: Option<String>,
    /// Number of tags.
    pub tagging_count: u32,
    /// Metadata.
    pub metadata: ObjectMetadata,
    /// Request id of the HEAD.
    pub request_id: String,
}
