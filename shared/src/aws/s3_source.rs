//! The source bucket on S3 ([`S3Source`]): HEAD, GET pinned to an ETag, ranged GET and tags through
//! the AWS SDK, with S3's answers mapped to [`SourceError`]s that know if they are transient.

use crate::store::object::ByteStream;
use crate::store::source::{SourceError, SourceMetadata, SourceObject, SourceStore};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use futures_util::StreamExt;

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
        _ => {
            let transient = crate::aws::error::is_transient(&err);
            SourceError::transport(op, key, err, transient)
        }
    }
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
                        .map(|r| (r.map_err(std::io::Error::other), b))
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
                            .map(|r| (r.map_err(std::io::Error::other), b))
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
