//! A multipart upload from a stream: the [`OssClient`] operation [`OssClient::put_multipart`],
//! its parts read in order and uploaded in parallel under the memory budget, the upload aborted
//! (or left on the abandoned list) on failure.

use super::{check_stored, source_error, upload_gone};
use crate::budget::BudgetPermit;
use crate::checksum::{crc64, crc64_combine};
use crate::oss::abandoned::OpenGuard;
use crate::oss::client::OssClient;
use crate::oss::error::Error;
use crate::oss::limits::{check_key, part_size_for};
use crate::store::object::ByteStream;
use crate::store::upload::{OpenUpload, UploadOutcome, UploadRequest};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

impl OssClient {
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
            .complete((req.bucket, req.key, upload_id), &etags, whole_crc)
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
}
