//! Uploads: one PutObject, or a multipart upload with a bounded number of parts in flight.
//!
//! **Integrity without deletes.** Nothing damaged on the way is ever stored:
//! - a PutObject always carries `Content-MD5`, so OSS itself refuses a body damaged on the way
//!   (`400 InvalidDigest`, retried) before anything is stored. The MD5 comes from the S3 ETag
//!   when that is an MD5 (the body is then streamed); otherwise the body, at most the multipart
//!   threshold, is read into a buffer held under the [`MemoryBudget`](crate::budget) and its MD5
//!   computed before sending;
//! - every part's CRC-64, computed while reading, is compared with what OSS reports for that
//!   part, and a mismatching part is sent again before the upload is completed. Parts carry no
//!   `Content-MD5`: it would read every byte once more for a check the CRC-64 already makes.
//!
//! A CRC-64 mismatch reported for a stored object (only possible at completion now) fails with
//! the transient [`Error::ChecksumMismatch`] and does **not** delete the key: by then another job
//! may have written a newer copy of the same key, and the destination is only ever deleted after
//! S3 said `NoSuchKey`. The failed message is delivered again, and its job reads the source again
//! and overwrites the key.
//!
//! **Memory.** Every part buffer in flight, and every PutObject body buffered for its MD5, holds
//! a permit for its bytes from the client's [`MemoryBudget`](crate::budget::MemoryBudget), shared
//! by every job of the process: jobs wait for memory rather than exceed it.
//!
//! **No upload left open.** Every multipart upload the client initiates is tracked until it is
//! completed or aborted. A failed upload is aborted at once; one whose job was dropped mid-way (a
//! deadline, a kill) or whose abort failed is moved to the client's abandoned list, which
//! [`OssClient::abort_abandoned_uploads`] empties. (An upload whose initiate answer never arrived
//! is unknown to the client; only listing the bucket's uploads finds it.)

use super::client::{check_key, Call, OssClient};
use super::error::Error;
use super::xml;
use crate::budget::BudgetPermit;
use crate::checksum::{crc64, crc64_combine, Crc64};
use crate::retry::retry;
use crate::store::object::{ByteStream, ObjectMetadata};
use crate::store::upload::{
    AbandonedUploads, BodySource, ListedPart, OpenUpload, UploadOutcome, UploadRequest,
};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::Method;
use md5::{Digest, Md5};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OnceCell, Semaphore};
use tokio::task::JoinSet;

/// Largest object one PutObject (or one part) may carry: 5 GiB.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// Smallest part OSS accepts (but for the last).
pub const MIN_PART_SIZE: u64 = 100 * 1024;

/// Uploads left open by a job that was dropped mid-way or whose abort failed.
#[derive(Debug, Default)]
pub(crate) struct AbandonedList(Mutex<Vec<OpenUpload>>);

impl AbandonedList {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<OpenUpload>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Holds an open upload; dropped before [`Self::closed`] (a dropped job, a failed abort), it puts
/// the upload on the abandoned list.
struct OpenGuard<'a> {
    list: &'a AbandonedList,
    upload: Option<OpenUpload>,
}

impl<'a> OpenGuard<'a> {
    fn new(list: &'a AbandonedList, upload: OpenUpload) -> Self {
        Self {
            list,
            upload: Some(upload),
        }
    }

    /// The upload was completed or aborted: nothing to remember.
    fn closed(mut self) {
        self.upload = None;
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        if let Some(u) = self.upload.take() {
            tracing::warn!(
                key = u.key,
                upload_id = u.upload_id,
                "multipart upload left open; kept for abort_abandoned_uploads"
            );
            self.list.lock().push(u);
        }
    }
}

/// Whether an abort's error means the upload is no longer open (aborted, or completed).
fn upload_gone(e: &Error) -> bool {
    matches!(e, Error::Service(s) if s.code == "NoSuchUpload")
}

/// A CRC-64 OSS reports for a stored object against what was sent. A mismatch is the transient
/// [`Error::ChecksumMismatch`]; the object is left alone (see the module doc for why).
fn check_stored(key: &str, sent: u64, stored: u64, request_id: String) -> Result<String, Error> {
    if stored == sent {
        return Ok(request_id);
    }
    tracing::error!(
        key,
        sent,
        stored,
        request_id,
        "OSS reports another CRC-64 than was sent; the key is left for the retry to overwrite"
    );
    Err(Error::ChecksumMismatch {
        key: key.to_owned(),
        sent,
        stored,
        request_id,
    })
}

/// The part size for an object: the preferred size, raised (to whole MiB) when the object would
/// otherwise need more than 10,000 parts. Fails only for objects OSS cannot hold.
pub fn part_size_for(size: u64, preferred: u64) -> Result<u64, u64> {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(MAX_PARTS);
    let part = if needed > preferred {
        needed.div_ceil(MIB) * MIB
    } else {
        preferred
    }
    .max(MIN_PART_SIZE);
    if part > MAX_PUT_SIZE {
        Err(MAX_PUT_SIZE * MAX_PARTS)
    } else {
        Ok(part)
    }
}

/// Bytes and CRC-64 of what passed through a stream, and whether the source failed.
#[derive(Default)]
struct Tally {
    crc: Crc64,
    bytes: u64,
    source_error: Option<std::io::Error>,
    overflow: bool,
    /// The source stream reached its end.
    ended: bool,
}

/// Passes a stream through, counting and checksumming; more bytes than `limit` is an error.
fn tallied(stream: ByteStream, tally: Arc<Mutex<Tally>>, limit: u64) -> ByteStream {
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

fn crc_header(answer_crc: Option<&str>, op: &'static str) -> Result<u64, Error> {
    answer_crc
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Protocol {
            op,
            detail: "no x-oss-hash-crc64ecma in the answer".into(),
        })
}

fn source_error(key: &str, e: std::io::Error) -> Error {
    let transient = !matches!(
        e.kind(),
        std::io::ErrorKind::NotFound
            | std::io::ErrorKind::PermissionDenied
            | std::io::ErrorKind::InvalidInput
    );
    Error::Source {
        key: key.to_owned(),
        transient,
        source: e,
    }
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
    /// Uploads a body of known size: one PutObject up to the multipart threshold, otherwise a
    /// multipart upload.
    pub async fn upload(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
    ) -> Result<UploadOutcome, Error> {
        if req.size <= self.config().multipart_threshold {
            self.put_object(req, source).await
        } else {
            let stream = source.open().await?;
            self.put_multipart(req, stream).await
        }
    }

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

    /// A multipart upload from a stream of exactly `req.size` bytes. Parts are read in order and
    /// uploaded in parallel, at most `parts_in_flight` at once, each holding its buffer's bytes
    /// from the memory budget. On any failure the upload is aborted; if the abort fails, or this
    /// future is dropped before the upload is completed or aborted, the upload goes on the
    /// abandoned list ([`Self::abort_abandoned_uploads`]).
    pub async fn put_multipart(
        &self,
        req: &UploadRequest<'_>,
        stream: ByteStream,
    ) -> Result<UploadOutcome, Error> {
        check_key(req.key)?;
        let part_size =
            part_size_for(req.size, self.config().part_size).map_err(|limit| Error::TooLarge {
                key: req.key.to_owned(),
                size: req.size,
                limit,
            })?;
        let (upload_id, init_attempts) = self.initiate(req.bucket, req.key, req.metadata).await?;
        let open = OpenGuard::new(
            self.abandoned(),
            OpenUpload {
                bucket: req.bucket.to_owned(),
                key: req.key.to_owned(),
                upload_id: upload_id.clone(),
            },
        );
        let result = self
            .parts_and_complete(req, &upload_id, part_size, stream)
            .await;
        match result {
            Ok((mut outcome, stored)) => {
                open.closed();
                outcome.requests += init_attempts;
                outcome.request_id =
                    check_stored(req.key, outcome.crc64, stored, outcome.request_id)?;
                Ok(outcome)
            }
            Err(e) => {
                match self.abort_upload(req.bucket, req.key, &upload_id).await {
                    Ok(()) => open.closed(),
                    Err(a) if upload_gone(&a) => open.closed(),
                    Err(a) => {
                        tracing::error!(key = req.key, upload_id, error = %a, "could not abort a failed multipart upload");
                    }
                }
                Err(e)
            }
        }
    }

    /// InitiateMultipartUpload with the object's metadata; returns the upload id and the attempts
    /// made. Not repeated after a timeout (a lost answer may have created an upload that a repeat
    /// would leave behind).
    pub async fn initiate(
        &self,
        bucket: &str,
        key: &str,
        metadata: &ObjectMetadata,
    ) -> Result<(String, u32), Error> {
        check_key(key)?;
        let mut call = Call::new("InitiateMultipartUpload", Method::POST, bucket, Some(key))
            .query("uploads", "");
        call.headers.extend(metadata.to_headers());
        call.idempotent = false;
        let init = self.exchange_retried(&call, Bytes::new()).await;
        let answer = init.result?;
        let upload_id =
            quick_xml::de::from_str::<xml::InitiateResult>(&String::from_utf8_lossy(&answer.body))
                .map_err(|e| Error::Protocol {
                    op: "InitiateMultipartUpload",
                    detail: e.to_string(),
                })?
                .upload_id;
        Ok((upload_id, init.attempts))
    }

    /// Every part of an open upload (ListParts, all pages), in part order. `NoSuchUpload` (the
    /// upload was completed or aborted) is returned as the error it is.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<ListedPart>, Error> {
        check_key(key)?;
        let mut parts = Vec::new();
        let mut marker = 0u32;
        loop {
            let call = Call::new("ListParts", Method::GET, bucket, Some(key))
                .query("uploadId", upload_id)
                .query("max-parts", "1000")
                .query("part-number-marker", marker.to_string());
            let answer = self.exchange_retried(&call, Bytes::new()).await.result?;
            let page =
                xml::parse_parts(&String::from_utf8_lossy(&answer.body)).map_err(|detail| {
                    Error::Protocol {
                        op: "ListParts",
                        detail,
                    }
                })?;
            parts.extend(page.parts);
            match page.next_marker {
                Some(next) if next > marker => marker = next,
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        Ok(parts)
    }

    /// Completes an upload from its parts `(number, etag)` in order; `crc` is the CRC-64 the
    /// whole object must have (combined from the parts'), checked against what OSS reports.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        crc: u64,
    ) -> Result<UploadOutcome, Error> {
        check_key(key)?;
        let (etag, request_id, attempts, stored) =
            self.complete(bucket, key, upload_id, parts, crc).await?;
        let request_id = check_stored(key, crc, stored, request_id)?;
        Ok(UploadOutcome {
            etag,
            crc64: crc,
            requests: attempts,
            parts: parts.len() as u32,
            request_id,
        })
    }

    /// AbortMultipartUpload, retried under the policy. `NoSuchUpload` (already aborted or
    /// completed) is returned as the error it is.
    pub async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), Error> {
        check_key(key)?;
        let call = Call::new("AbortMultipartUpload", Method::DELETE, bucket, Some(key))
            .query("uploadId", upload_id);
        self.exchange_retried(&call, Bytes::new())
            .await
            .result
            .map(|_| ())
    }

    /// Aborts every upload on the abandoned list (jobs dropped mid-upload, failed aborts). An
    /// upload found gone (`NoSuchUpload`: completed just before its job was dropped, or aborted)
    /// counts as aborted. Failures stay on the list for the next call, as do the uploads not yet
    /// reached if this future is itself dropped.
    pub async fn abort_abandoned_uploads(&self) -> AbandonedUploads {
        let list = self.abandoned();
        let taken: Vec<OpenUpload> = std::mem::take(&mut *list.lock());
        let mut guards: Vec<OpenGuard<'_>> =
            taken.into_iter().map(|u| OpenGuard::new(list, u)).collect();
        let mut report = AbandonedUploads::default();
        while let Some(guard) = guards.pop() {
            let Some(u) = guard.upload.clone() else {
                continue;
            };
            match self.abort_upload(&u.bucket, &u.key, &u.upload_id).await {
                Ok(()) => {
                    guard.closed();
                    report.aborted += 1;
                }
                Err(e) if upload_gone(&e) => {
                    guard.closed();
                    report.aborted += 1;
                }
                // The guard, dropped, puts the upload back on the list.
                Err(e) => report.failed.push((u, e)),
            }
        }
        if report.aborted > 0 || !report.failed.is_empty() {
            tracing::info!(
                aborted = report.aborted,
                failed = report.failed.len(),
                "abandoned multipart uploads"
            );
        }
        report
    }

    /// Uploads the parts and completes the upload. Returns the outcome and the CRC-64 OSS
    /// reported for the whole object (checked by the caller once the upload is closed).
    async fn parts_and_complete(
        &self,
        req: &UploadRequest<'_>,
        upload_id: &str,
        part_size: u64,
        mut stream: ByteStream,
    ) -> Result<(UploadOutcome, u64), Error> {
        let in_flight = Arc::new(Semaphore::new(self.config().parts_in_flight));
        // Part buffers come back here once uploaded and are reused: a fresh 8 MiB buffer per
        // part was a fresh mapping to fault in and unmap, a quarter of the copy's CPU
        // (BENCHMARKS.md). At most `parts_in_flight` exist, one per permit, and each keeps its
        // share of the memory budget while pooled, so the pool holds nothing outside it.
        let pool: Arc<Mutex<Vec<(BytesMut, BudgetPermit)>>> = Arc::default();
        // Told each time a buffer comes back to the pool.
        let returned = Arc::new(Notify::new());
        let mut tasks: JoinSet<Result<(u32, String, u32), Error>> = JoinSet::new();
        let mut etags: Vec<(u32, String)> = Vec::new();
        let mut requests = 0u32;
        // CRC-64 of all parts so far (0 for none), combined from each part's.
        let mut whole_crc = 0;
        let (mut read, mut number) = (0u64, 0u32);
        let mut leftover: Option<Bytes> = None;
        let mut finish =
            |done: Result<Result<(u32, String, u32), Error>, tokio::task::JoinError>,
             etags: &mut Vec<(u32, String)>|
             -> Result<(), Error> {
                let (n, etag, attempts) = done.map_err(|e| Error::Protocol {
                    op: "UploadPart",
                    detail: format!("part task failed: {e}"),
                })??;
                requests += attempts;
                etags.push((n, etag));
                Ok(())
            };
        while read < req.size {
            // The permit is taken before the part is read, so at most `parts_in_flight` parts
            // are in memory.
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| Error::Config(e.to_string()))?;
            while let Some(done) = tasks.try_join_next() {
                finish(done, &mut etags)?;
            }
            let want = part_size.min(req.size - read) as usize;
            // Parts only get smaller (the last one), so a pooled buffer and its share always
            // fit; otherwise the bytes are taken from the budget before the buffer exists. While
            // waiting for the budget, a buffer of this upload coming back is taken instead:
            // waiting for the budget alone could wait forever, every upload's share sitting in
            // its own pool.
            let (mut buf, memory) = loop {
                if let Some(b) = pool.lock().unwrap_or_else(|p| p.into_inner()).pop() {
                    break b;
                }
                tokio::select! {
                    p = self.config().memory_budget.acquire(want as u64) => {
                        break (BytesMut::new(), p)
                    }
                    () = returned.notified() => {}
                }
            };
            buf.clear();
            buf.reserve(want);
            while buf.len() < want {
                let chunk = match leftover.take() {
                    Some(c) => c,
                    None => match stream.next().await {
                        Some(Ok(c)) => c,
                        Some(Err(e)) => return Err(source_error(req.key, e)),
                        None => break,
                    },
                };
                let room = want - buf.len();
                if chunk.len() > room {
                    buf.extend_from_slice(&chunk[..room]);
                    leftover = Some(chunk.slice(room..));
                } else {
                    buf.extend_from_slice(&chunk);
                }
            }
            if buf.len() < want {
                return Err(Error::SizeMismatch {
                    key: req.key.to_owned(),
                    expected: req.size,
                    actual: read + buf.len() as u64,
                });
            }
            let data = buf.freeze();
            let part_crc = crc64(&data);
            whole_crc = crc64_combine(whole_crc, part_crc, data.len() as u64);
            read += data.len() as u64;
            number += 1;
            let (client, bucket, key, id, pool, returned) = (
                self.clone(),
                req.bucket.to_owned(),
                req.key.to_owned(),
                upload_id.to_owned(),
                pool.clone(),
                returned.clone(),
            );
            tasks.spawn(async move {
                let out = client
                    .upload_part(&bucket, &key, &id, number, data.clone(), part_crc)
                    .await;
                // Every other holder of the buffer is gone once the request is done. If one
                // were not, the buffer is freed with it and its share of the budget given back.
                if let Ok(buf) = data.try_into_mut() {
                    pool.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((buf, memory));
                    returned.notify_one();
                }
                drop(permit);
                out
            });
        }
        let extra = match leftover {
            Some(c) if !c.is_empty() => c.len() as u64,
            _ => match stream.next().await {
                Some(Ok(c)) => c.len() as u64,
                Some(Err(e)) => return Err(source_error(req.key, e)),
                None => 0,
            },
        };
        if extra > 0 {
            return Err(Error::SizeMismatch {
                key: req.key.to_owned(),
                expected: req.size,
                actual: read + extra,
            });
        }
        while let Some(done) = tasks.join_next().await {
            finish(done, &mut etags)?;
        }
        // Every part is sent: the buffers and their memory go back before completing.
        pool.lock().unwrap_or_else(|p| p.into_inner()).clear();
        etags.sort();
        let (etag, request_id, complete_attempts, stored) = self
            .complete(req.bucket, req.key, upload_id, &etags, whole_crc)
            .await?;
        let outcome = UploadOutcome {
            etag,
            crc64: whole_crc,
            requests: requests + complete_attempts,
            parts: number,
            request_id,
        };
        Ok((outcome, stored))
    }

    /// UploadPart, retried from the buffer; the CRC-64 OSS reports must be `crc`, the part's.
    /// Returns (part number, ETag, attempts).
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
        crc: u64,
    ) -> Result<(u32, String, u32), Error> {
        let call = Call::new("UploadPart", Method::PUT, bucket, Some(key))
            .query("partNumber", number.to_string())
            .query("uploadId", upload_id)
            .header("content-length", data.len().to_string());
        let out = retry(&self.config().retry, "UploadPart", |_| async {
            let answer = self.exchange(&call, data.clone()).await?;
            let stored = crc_header(answer.header("x-oss-hash-crc64ecma"), "UploadPart")?;
            if stored != crc {
                return Err(Error::ChecksumMismatch {
                    key: format!("{key} (part {number})"),
                    sent: crc,
                    stored,
                    request_id: answer.request_id(),
                });
            }
            Ok(answer.header("etag").unwrap_or_default().to_owned())
        })
        .await;
        Ok((number, out.result?, out.attempts))
    }

    /// CompleteMultipartUpload; returns the ETag, request id, attempts and the CRC-64 OSS reports
    /// for the whole object. A retry that finds the upload gone checks whether an earlier attempt
    /// completed it (the answer was lost) before failing.
    async fn complete(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        crc: u64,
    ) -> Result<(String, String, u32, u64), Error> {
        let body = Bytes::from(xml::complete_body(parts));
        let call = Call::new("CompleteMultipartUpload", Method::POST, bucket, Some(key))
            .query("uploadId", upload_id);
        let out = retry(&self.config().retry, call.op, |attempt| {
            let body = body.clone();
            let call = &call;
            async move {
                match self.exchange(call, body).await {
                    Ok(a) => {
                        let stored = crc_header(a.header("x-oss-hash-crc64ecma"), call.op)?;
                        let etag = quick_xml::de::from_str::<xml::CompleteResult>(
                            &String::from_utf8_lossy(&a.body),
                        )
                        .map(|r| r.etag)
                        .unwrap_or_else(|_| a.header("etag").unwrap_or_default().to_owned());
                        Ok((etag, a.request_id(), stored))
                    }
                    Err(Error::Service(e)) if attempt > 1 && e.code == "NoSuchUpload" => {
                        match self.head_object(bucket, key).await? {
                            Some(h) if h.crc64 == Some(crc) => Ok((h.etag, h.request_id, crc)),
                            _ => Err(Error::Service(e)),
                        }
                    }
                    Err(e) => Err(e),
                }
            }
        })
        .await;
        let (etag, request_id, stored) = out.result?;
        Ok((etag, request_id, out.attempts, stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_fits_any_object_oss_accepts() {
        const MIB: u64 = 1024 * 1024;
        assert_eq!(part_size_for(100 * MIB, 8 * MIB), Ok(8 * MIB));
        assert_eq!(part_size_for(1, 1), Ok(MIN_PART_SIZE));
        // 1 TiB needs > 10,000 parts of 8 MiB: raised to whole MiB.
        let tib = 1024 * 1024 * MIB;
        let p = part_size_for(tib, 8 * MIB).unwrap();
        assert!(tib.div_ceil(p) <= MAX_PARTS && p.is_multiple_of(MIB), "{p}");
        let max = MAX_PUT_SIZE * MAX_PARTS;
        let p = part_size_for(max, 8 * MIB).unwrap();
        assert!(max.div_ceil(p) <= MAX_PARTS && p <= MAX_PUT_SIZE);
        assert!(part_size_for(max + 1, 8 * MIB).is_err());
    }

    #[tokio::test]
    async fn tally_counts_checksums_and_caps() {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let s: ByteStream = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"1234")),
            Ok(Bytes::from_static(b"56789")),
        ])
        .boxed();
        let out: Vec<_> = tallied(s, tally.clone(), 9).collect().await;
        assert!(out.iter().all(Result::is_ok));
        {
            let t = tally.lock().unwrap();
            assert_eq!((t.bytes, t.crc.finish()), (9, 11_051_210_869_376_104_954));
            assert!(t.ended);
        }
        let tally = Arc::new(Mutex::new(Tally::default()));
        let s: ByteStream =
            futures_util::stream::iter(vec![Ok(Bytes::from_static(b"1234567890"))]).boxed();
        let out: Vec<_> = tallied(s, tally.clone(), 9).collect().await;
        assert!(out[0].is_err() && tally.lock().unwrap().overflow);
    }
}
