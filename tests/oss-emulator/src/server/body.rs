//! Bodies: a request body read whole with its digests (size limit, Content-MD5, and the injected
//! reset, corruption and upload cap on the way in), and a response body streamed with the
//! injected trickle and reset.

use super::{Abort, Body, Ctx, Failure, Parsed};
use crate::error::{errors, OssError};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use bytes::Bytes;
use futures_util::stream;
use http::StatusCode;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use md5::{Digest, Md5};
use s3_oss_sync::checksum::Crc64;
use std::collections::VecDeque;
use std::io;
use std::time::Duration;

/// A request body read whole, with its digests.
pub(super) struct ReadBody {
    pub(super) segments: Vec<Bytes>,
    pub(super) size: u64,
    pub(super) md5: [u8; 16],
    pub(super) crc64: u64,
}

impl Ctx<'_> {
    /// Reads a request body up to `limit` bytes, computing MD5 and CRC-64 as it goes. With an
    /// injected reset, the connection is dropped half-way through.
    pub(super) async fn read_body(&self, p: &mut Parsed, limit: u64) -> Result<ReadBody, Failure> {
        let declared: Option<u64> = p.h("content-length").and_then(|v| v.parse().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large(limit).into());
        }
        let reset_at = self.reset.then(|| declared.unwrap_or(0) / 2);
        let cap = self.state.faults.upload_cap();
        let began = tokio::time::Instant::now();
        let (mut segments, mut size) = (Vec::new(), 0u64);
        let (mut md5, mut crc) = (Md5::new(), Crc64::new());
        loop {
            if reset_at.is_some_and(|at| size >= at) {
                return Err(Failure::Abort(Abort::InjectedReset));
            }
            let Some(frame) = p.body.frame().await else {
                break;
            };
            let frame = frame.map_err(|e| {
                errors::invalid_argument(format!("The request body could not be read: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                size += data.len() as u64;
                if size > limit {
                    return Err(too_large(limit).into());
                }
                md5.update(&data);
                crc.update(&data);
                segments.push(data);
                if let Some(bps) = cap {
                    // Not faster than the cap: the bytes so far may not have arrived sooner.
                    let due = began + std::time::Duration::from_secs_f64(size as f64 / bps as f64);
                    tokio::time::sleep_until(due).await;
                }
            }
        }
        let mut md5: [u8; 16] = md5.finalize().into();
        let mut crc64 = crc.finish();
        if size > 0 && self.state.faults.roll_corrupt() {
            // Damage on the way in, before OSS sees the body: its MD5, ETag and CRC-64 are those
            // of the damaged bytes, and a Content-MD5 sent with it no longer matches.
            let mut whole: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
            whole[0] ^= 0xFF;
            md5 = Md5::digest(&whole).into();
            crc64 = s3_oss_sync::checksum::crc64(&whole);
            segments = vec![Bytes::from(whole)];
        }
        if let Some(given) = p.h("content-md5") {
            let ok = B64.decode(given.trim()).is_ok_and(|d| d == md5);
            if !ok {
                // Nothing is stored.
                return Err(OssError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidDigest",
                    "The Content-MD5 you specified is not valid.",
                )
                .into());
            }
        }
        Ok(ReadBody {
            segments,
            size,
            md5,
            crc64,
        })
    }
}

fn too_large(limit: u64) -> OssError {
    OssError::new(
        StatusCode::BAD_REQUEST,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size.",
    )
    .with("MaxSizeAllowed", limit.to_string())
}

/// Streams segments, optionally trickled (about `bps` bytes a second, in tenths) and optionally
/// failing after `reset_at` bytes (which makes the server drop the connection).
pub(super) fn stream_body(
    segments: Vec<Bytes>,
    trickle: Option<u64>,
    reset_at: Option<u64>,
) -> Body {
    struct S {
        queue: VecDeque<Bytes>,
        sent: u64,
        trickle: Option<u64>,
        reset_at: Option<u64>,
        failed: bool,
    }
    let state = S {
        queue: segments.into(),
        sent: 0,
        trickle,
        reset_at,
        failed: false,
    };
    let s = stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        if st.reset_at.is_some_and(|at| st.sent >= at) {
            st.failed = true;
            let e = io::Error::new(io::ErrorKind::ConnectionReset, "injected reset");
            return Some((Err(e), st));
        }
        let mut chunk = st.queue.pop_front()?;
        let mut cap = chunk.len() as u64;
        if let Some(bps) = st.trickle {
            cap = cap.min((bps / 10).max(1));
            if st.sent > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if let Some(at) = st.reset_at {
            cap = cap.min(at - st.sent);
        }
        if (cap as usize) < chunk.len() {
            let rest = chunk.split_off(cap as usize);
            st.queue.push_front(rest);
        }
        st.sent += chunk.len() as u64;
        Some((Ok(Frame::data(chunk)), st))
    });
    StreamBody::new(s).boxed()
}
