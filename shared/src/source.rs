//! The source store: what the sync core needs from S3 (head, a streaming GET pinned to an ETag,
//! tags), as a small trait with the real S3 implementation.

use crate::oss::ByteStream;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use futures_util::StreamExt;
use std::future::Future;

/// Metadata of a source object: the same fields as OSS keeps, read from S3. `user` holds the
/// `x-amz-meta-*` names as S3 gives them (lower-case), sorted; `storage_class` is S3's class name
/// (`STANDARD` when S3 does not say); `tagging` is never set (tags are read separately).
pub type SourceMetadata = crate::oss::ObjectMetadata;

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
    #[error("S3 {op} of {key:?} failed: {detail}")]
    Transport {
        /// The operation.
        op: &'static str,
        /// Source key.
        key: String,
        /// The cause, with its chain.
        detail: String,
        /// Whether trying again may succeed.
        transient: bool,
    },
}

impl SourceError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Changed { .. } => true,
            Self::Service { status, code, .. } => {
                matches!(status, 429 | 500 | 502 | 503 | 504)
                    || matches!(
                        code.as_str(),
                        "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
                    )
            }
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

/// The real source: an S3 bucket through the AWS SDK (which also retries transient errors).
#[derive(Debug, Clone)]
pub struct S3Source {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Source {
    /// A bucket reached through a client.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

/// Maps an SDK error: `Ok(None)` for "no such key" (404), `Changed` for 412, otherwise an error
/// that knows if it is transient.
pub(crate) fn sdk_error<E>(
    op: &'static str,
    key: &str,
    if_match: Option<&str>,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            if status == 412 {
                if let Some(etag) = if_match {
                    return SourceError::Changed {
                        key: key.to_owned(),
                        etag: etag.to_owned(),
                    };
                }
            }
            let meta = se.err().meta();
            SourceError::Service {
                op,
                key: key.to_owned(),
                status,
                code: meta
                    .code()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("Http{status}")),
                message: meta.message().unwrap_or_default().to_owned(),
                request_id: se
                    .raw()
                    .headers()
                    .get("x-amz-request-id")
                    .unwrap_or_default()
                    .to_owned(),
            }
        }
        other => {
            let transient = matches!(
                other,
                SdkError::TimeoutError(_)
                    | SdkError::DispatchFailure(_)
                    | SdkError::ResponseError(_)
            );
            SourceError::Transport {
                op,
                key: key.to_owned(),
                detail: error_chain(&err),
                transient,
            }
        }
    }
}

/// An error and its causes, joined, so nothing of the chain is lost in a record.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        cur = s.source();
    }
    out
}

fn is_not_found<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>, code: &str) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => {
            se.raw().status().as_u16() == 404
                && (code.is_empty() || se.err().meta().code() == Some(code))
        }
        _ => false,
    }
}

macro_rules! source_object {
    ($o:expr) => {{
        let o = $o;
        let sse_ok = match o.server_side_encryption() {
            None => true,
            Some(s) => s.as_str() == "AES256",
        } && o.sse_customer_algorithm().is_none();
        let mut user: Vec<(String, String)> = o
            .metadata()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        user.sort();
        let etag = o.e_tag().unwrap_or_default().trim_matches('"').to_owned();
        SourceObject {
            size: o.content_length().unwrap_or(0).max(0) as u64,
            etag_is_md5: sse_ok && !etag.contains('-'),
            etag,
            version_id: o.version_id().filter(|v| *v != "null").map(str::to_owned),
            tag_count: o.tag_count().unwrap_or(0).max(0) as u32,
            metadata: SourceMetadata {
                content_type: o.content_type().map(str::to_owned),
                cache_control: o.cache_control().map(str::to_owned),
                content_disposition: o.content_disposition().map(str::to_owned),
                content_encoding: o.content_encoding().map(str::to_owned),
                content_language: o.content_language().map(str::to_owned),
                expires: o.expires_string().map(str::to_owned),
                user,
                tagging: None,
                storage_class: Some(
                    o.storage_class()
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_else(|| "STANDARD".to_owned()),
                ),
            },
        }
    }};
}

impl SourceStore for S3Source {
    async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => Ok(Some(source_object!(&o))),
            // HEAD has no body, so a missing bucket looks the same; callers act destructively
            // only after a GET said NoSuchKey.
            Err(e) if is_not_found(&e, "") => Ok(None),
            Err(e) => Err(sdk_error("HeadObject", key, None, e)),
        }
    }

    async fn get(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<(SourceObject, ByteStream)>, SourceError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(if_match.map(|e| format!("\"{e}\"")));
        match req.send().await {
            Ok(mut o) => {
                let head = source_object!(&o);
                let body = std::mem::take(&mut o.body);
                let stream = futures_util::stream::unfold(body, |mut b| async move {
                    b.next()
                        .await
                        .map(|r| (r.map_err(|e| std::io::Error::other(error_chain(&e))), b))
                })
                .boxed();
                Ok(Some((head, stream)))
            }
            Err(e) if is_not_found(&e, "NoSuchKey") => Ok(None),
            Err(e) => Err(sdk_error("GetObject", key, if_match, e)),
        }
    }

    async fn get_range(
        &self,
        key: &str,
        etag: &str,
        version_id: Option<&str>,
        start: u64,
        len: u64,
    ) -> Result<Option<ByteStream>, SourceError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(format!("\"{etag}\""))
            .set_version_id(version_id.map(str::to_owned))
            .range(format!("bytes={start}-{}", start + len.max(1) - 1));
        match req.send().await {
            Ok(mut o) => {
                let body = std::mem::take(&mut o.body);
                Ok(Some(
                    futures_util::stream::unfold(body, |mut b| async move {
                        b.next()
                            .await
                            .map(|r| (r.map_err(|e| std::io::Error::other(error_chain(&e))), b))
                    })
                    .boxed(),
                ))
            }
            Err(e) if is_not_found(&e, "NoSuchKey") || is_not_found(&e, "NoSuchVersion") => {
                Ok(None)
            }
            Err(e) => Err(sdk_error("GetObject", key, Some(etag), e)),
        }
    }

    async fn tags(
        &self,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, SourceError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
            .map_err(|e| sdk_error("GetObjectTagging", key, None, e))?;
        Ok(out
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }
}
