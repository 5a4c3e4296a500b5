//! A multipart upload's requests, one [`OssClient`] operation each: InitiateMultipartUpload
//! ([`OssClient::initiate`]), UploadPart ([`OssClient::upload_part`]), ListParts
//! ([`OssClient::list_parts`]), CompleteMultipartUpload ([`OssClient::complete_upload`]) and
//! AbortMultipartUpload ([`OssClient::abort_upload`]); and the aborts of the uploads on the
//! abandoned list ([`OssClient::abort_abandoned_uploads`]).

use super::{check_stored, crc_header, upload_gone};
use crate::oss::abandoned::OpenGuard;
use crate::oss::client::{Call, OssClient};
use crate::oss::error::Error;
use crate::oss::limits::check_key;
use crate::oss::xml;
use crate::retry::retry;
use crate::store::object::ObjectMetadata;
use crate::store::upload::{AbandonedUploads, ListedPart, OpenUpload, UploadOutcome};
use bytes::Bytes;
use http::Method;

impl OssClient {
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
            self.complete((bucket, key, upload_id), parts, crc).await?;
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

    /// CompleteMultipartUpload of the upload `(bucket, key, upload id)`; returns the ETag, request
    /// id, attempts and the CRC-64 OSS reports for the whole object. A retry that finds the upload
    /// gone checks whether an earlier attempt completed it (the answer was lost) before failing.
    pub(super) async fn complete(
        &self,
        (bucket, key, upload_id): (&str, &str, &str),
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
