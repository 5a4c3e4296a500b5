//! A single PutObject: the [`OssClient`] operation [`OssClient::put_object`], streamed when the
//! body's MD5 is known, otherwise read into a buffer under the memory budget first.

use super::{check_stored, crc_header, source_error};
use crate::budget::BudgetPermit;
use crate::checksum::{crc64, Crc64};
use crate::oss::client::{Call, OssClient};
use crate::oss::error::Error;
use crate::oss::limits::{check_key, MAX_PUT_SIZE};
use crate::retry::retry;
use crate::store::object::ByteStream;
use crate::store::upload::{BodySource, UploadOutcome, UploadRequest};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::Method;
use md5::{Digest, Md5};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Bytes and CRC-64 of what passed through a stream, and whether the source failed.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) crc: Crc64,
    pub(super) bytes: u64,
    source_error: Option<std::io::Error>,
    pub(super) overflow: bool,
    /// The source stream reached its end.
    pub(super) ended: bool,
}

/// Passes a stream through, counting and checksumming; more bytes than `limit` is an error.
pub(super) fn tallied(stream: ByteStream, tally: Arc<Mutex<Tally>>, limit: u64) -> ByteStream {
    let at_end = tally.clone();
    let end_marker = futures_util::stream::iter(std::iter::from_fn(move || {
        at_end.lock().unwrap_or_else(|p| p.into_inner()).ended = true;
        None
    }));
    stream
        .map(move |item| {
            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
            match item {
                Ok(b) => {
                    t.bytes += b.len() as u64;
                    if t.bytes > limit {
                        t.overflow = true;
                        return Err(std::io::Error::other(
                            "source gave more bytes than announced",
                        ));
                    }
                    t.crc.update(&b);
                    Ok(b)
                }
                Err(e) => {
                    let copy = std::io::Error::new(e.kind(), e.to_string());
                    t.source_error = Some(e);
                    Err(copy)
                }
            }
        })
        .chain(end_marker)
        .boxed()
}

/// The outcome of a PutObject from its answer's headers: the CRC-64 OSS reports must be `crc`.
fn stored_put(
    req: &UploadRequest<'_>,
    headers: &http::HeaderMap,
    crc: u64,
) -> Result<UploadOutcome, Error> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let request_id = header("x-oss-request-id").unwrap_or_default().to_owned();
    let etag = header("etag").unwrap_or_default().to_owned();
    let stored = crc_header(header("x-oss-hash-crc64ecma"), "PutObject")?;
    let request_id = check_stored(req.key, crc, stored, request_id)?;
    Ok(UploadOutcome {
        etag,
        crc64: crc,
        requests: 1,
        parts: 0,
        request_id,
    })
}

/// Reads a whole body of exactly `req.size` bytes; returns it with its MD5 and CRC-64.
async fn read_whole(
    req: &UploadRequest<'_>,
    source: &dyn BodySource,
) -> Result<(Bytes, [u8; 16], u64), Error> {
    let mut stream = source.open().await?;
    let mut buf = BytesMut::with_capacity(req.size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| source_error(req.key, e))?;
        if (buf.len() + chunk.len()) as u64 > req.size {
            return Err(Error::SizeMismatch {
                key: req.key.to_owned(),
                expected: req.size,
                actual: (buf.len() + chunk.len()) as u64,
            });
        }
        buf.extend_from_slice(&chunk);
    }
    if buf.len() as u64 != req.size {
        return Err(Error::SizeMismatch {
            key: req.key.to_owned(),
            expected: req.size,
            actual: buf.len() as u64,
        });
    }
    let data = buf.freeze();
    let (md5, crc) = (Md5::digest(&data).into(), crc64(&data));
    Ok((data, md5, crc))
}

impl OssClient {
    /// PutObject with `Content-MD5`, so OSS refuses a body damaged on the way and nothing
    /// damaged is stored. With the MD5 known (`req.content_md5`) the body is streamed and each
    /// retry reopens the source; otherwise the body is read once into a buffer held under the
    /// memory budget, its MD5 computed, and retries send the buffer again.
    pub async fn put_object(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
    ) -> Result<UploadOutcome, Error> {
        check_key(req.key)?;
        if req.size > MAX_PUT_SIZE {
            return Err(Error::TooLarge {
                key: req.key.to_owned(),
                size: req.size,
                limit: MAX_PUT_SIZE,
            });
        }
        let out = match req.content_md5 {
            Some(md5) => {
                retry(&self.config().retry, "PutObject", |_| {
                    self.put_streamed(req, source, md5)
                })
                .await
            }
            None => {
                let _buffer: BudgetPermit = self.config().memory_budget.acquire(req.size).await;
                let body = OnceCell::new();
                retry(&self.config().retry, "PutObject", |_| {
                    self.put_buffered(req, source, &body)
                })
                .await
            }
        };
        let mut outcome = out.result?;
        outcome.requests = out.attempts + outcome.requests - 1;
        Ok(outcome)
    }

    /// The PutObject request for `req`, its body's MD5 given.
    fn put_call<'r>(req: &UploadRequest<'r>, md5: [u8; 16]) -> Call<'r> {
        let mut call = Call::new("PutObject", Method::PUT, req.bucket, Some(req.key))
            .header("content-length", req.size.to_string())
            .header("content-md5", B64.encode(md5));
        call.headers.extend(req.metadata.to_headers());
        call
    }

    /// One streamed PutObject attempt.
    async fn put_streamed(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
        md5: [u8; 16],
    ) -> Result<UploadOutcome, Error> {
        let stream = source.open().await?;
        let tally = Arc::new(Mutex::new(Tally::default()));
        let body = reqwest::Body::wrap_stream(tallied(stream, tally.clone(), req.size));
        let sent = self.send(&Self::put_call(req, md5), body).await;
        let (crc, bytes, overflow, ended, src_err) = {
            let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
            let crc = t.crc.finish();
            (crc, t.bytes, t.overflow, t.ended, t.source_error.take())
        };
        if let Some(e) = src_err {
            return Err(source_error(req.key, e));
        }
        if overflow || (ended && bytes != req.size) {
            return Err(Error::SizeMismatch {
                key: req.key.to_owned(),
                expected: req.size,
                actual: bytes,
            });
        }
        let resp = sent?;
        if bytes != req.size {
            return Err(Error::SizeMismatch {
                key: req.key.to_owned(),
                expected: req.size,
                actual: bytes,
            });
        }
        stored_put(req, resp.headers(), crc)
    }

    /// One PutObject attempt from the buffered body, reading it on the first attempt (or again
    /// after a failed read).
    async fn put_buffered(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
        body: &OnceCell<(Bytes, [u8; 16], u64)>,
    ) -> Result<UploadOutcome, Error> {
        let (data, md5, crc) = body
            .get_or_try_init(|| read_whole(req, source))
            .await?
            .clone();
        let resp = self.send(&Self::put_call(req, md5), data.into()).await?;
        stored_put(req, resp.headers(), crc)
    }
}
