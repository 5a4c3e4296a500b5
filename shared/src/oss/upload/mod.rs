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
//!
//! Where the operations are: this module holds the limits, the part size, the tracking of open
//! uploads and [`OssClient::upload`], which picks one of the two ways; `put` holds the single
//! PutObject ([`OssClient::put_object`]); `multipart` the multipart upload from a stream
//! ([`OssClient::put_multipart`]); `requests` the multipart upload's requests one by one
//! ([`OssClient::initiate`], [`OssClient::upload_part`], [`OssClient::list_parts`],
//! [`OssClient::complete_upload`], [`OssClient::abort_upload`]) and
//! [`OssClient::abort_abandoned_uploads`].

mod multipart;
mod put;
mod requests;
#[cfg(test)]
mod tests;

use super::client::OssClient;
use super::error::Error;
use crate::store::upload::{BodySource, UploadOutcome, UploadRequest};

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
}
