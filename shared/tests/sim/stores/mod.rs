//! The in-memory S3 source, OSS destination and results store over the shared world. Every call
//! is a future that is `Pending` a chosen number of times (waking itself each time) before it
//! takes effect atomically, so each await point is a place where other actors may run.

use super::world::{lock, short, Op, Sent, Shared};
use bytes::Bytes;
use futures_util::StreamExt;
use s3_oss_sync::oss::{self};
use s3_oss_sync::store::object::ByteStream;
use s3_oss_sync::store::results::ResultsStore;
use s3_oss_sync::store::source::{SourceError, SourceObject, SourceStore};
use s3_oss_sync::sync::recheck::{self, Recheck, RecheckQueue};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

mod checkpoints;
mod dest;

pub use checkpoints::SimCheckpoints;
pub use dest::SimDest;

/// Bodies larger than this are read in the world's `big_reads` chunks instead of chunks of its
/// chunk size (the parts of a copy in parts are at least 100 KiB).
const BIG_BODY: usize = 4096;

/// `Pending` this many times, waking itself each time, then ready; while the world's `stalled`
/// is set it neither counts down nor ends (see [`super::world::World::stalled`]).
struct Pause {
    left: u32,
    stalled: Arc<AtomicBool>,
}

impl Future for Pause {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.stalled.load(Ordering::Relaxed) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.left == 0 {
            return Poll::Ready(());
        }
        self.left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One await point of the world's choosing.
async fn pause(world: &Shared) {
    let (left, stalled) = {
        let mut w = lock(world);
        (w.delay(), w.stalled.clone())
    };
    Pause { left, stalled }.await;
}

/// The end of a checkpoint call: in schedules with deadlines, nothing else moves in this poll.
fn hold_rest_of_poll(w: &super::world::World) {
    if w.hold_after_checkpoints {
        w.stalled.store(true, Ordering::Relaxed);
    }
}

fn s3_unavailable(op: &'static str, key: &str) -> SourceError {
    SourceError::Service {
        op,
        key: key.to_owned(),
        status: 503,
        code: "SlowDown".into(),
        message: "injected".into(),
        request_id: "sim".into(),
    }
}

fn oss_unavailable(key: &str, status: u16, code: &str) -> oss::Error {
    oss::Error::Service(Box::new(oss::ServiceError {
        status,
        code: code.into(),
        message: format!("injected for {key}"),
        request_id: "sim".into(),
        ..oss::ServiceError::default()
    }))
}

/// The S3 source bucket.
pub struct SimSource(pub Shared);

impl SourceStore for SimSource {
    async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
        pause(&self.0).await;
        let mut w = lock(&self.0);
        if w.fault(Op::SourceHead, key) {
            w.note(Op::SourceHead, Some(key), || "S3 HEAD → 503".into());
            return Err(s3_unavailable("HeadObject", key));
        }
        let v = w.source.get(key).map(|v| v.head());
        w.note(Op::SourceHead, Some(key), || match &v {
            Some(h) => format!("S3 HEAD → {} rev {:?}", short(&h.etag), h.metadata.user),
            None => "S3 HEAD → 404".into(),
        });
        Ok(v)
    }

    async fn get(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<Option<(SourceObject, ByteStream)>, SourceError> {
        pause(&self.0).await;
        let mut w = lock(&self.0);
        if w.fault(Op::SourceGet, key) {
            w.note(Op::SourceGet, Some(key), || "S3 GET → 503".into());
            return Err(s3_unavailable("GetObject", key));
        }
        let Some(v) = w.source.get(key).cloned() else {
            w.note(Op::SourceGet, Some(key), || "S3 GET → NoSuchKey".into());
            return Ok(None);
        };
        if let Some(etag) = if_match.filter(|e| *e != v.etag) {
            w.note(Op::SourceGet, Some(key), || {
                format!("S3 GET If-Match {} → 412", short(etag))
            });
            return Err(SourceError::Changed {
                key: key.to_owned(),
                etag: etag.to_owned(),
            });
        }
        w.note(Op::SourceGet, Some(key), || {
            format!("S3 GET → {} rev {:?}", short(&v.etag), v.meta.user)
        });
        Ok(Some((
            v.head(),
            body(self.0.clone(), key.to_owned(), v.bytes),
        )))
    }

    async fn tags(
        &self,
        _key: &str,
        _version_id: Option<&str>,
    ) -> Result<Vec<(String, String)>, SourceError> {
        Ok(Vec::new())
    }

    /// The simulated source keeps one version a key: a range is read from the current one,
    /// pinned by its ETag.
    async fn get_range(
        &self,
        key: &str,
        etag: &str,
        _current_only: Option<&str>,
        start: u64,
        len: u64,
    ) -> Result<Option<ByteStream>, SourceError> {
        pause(&self.0).await;
        let mut w = lock(&self.0);
        if w.fault(Op::SourceGet, key) {
            w.note(Op::SourceGet, Some(key), || "S3 ranged GET → 503".into());
            return Err(s3_unavailable("GetObject", key));
        }
        let Some(v) = w.source.get(key).cloned() else {
            w.note(Op::SourceGet, Some(key), || {
                "S3 ranged GET → NoSuchKey".into()
            });
            return Ok(None);
        };
        if v.etag != etag {
            w.note(Op::SourceGet, Some(key), || {
                format!("S3 ranged GET If-Match {} → 412", short(etag))
            });
            return Err(SourceError::Changed {
                key: key.to_owned(),
                etag: etag.to_owned(),
            });
        }
        let end = v.bytes.len().min((start + len) as usize);
        let start = (start as usize).min(end);
        w.note(Op::SourceGet, Some(key), || {
            format!(
                "S3 GET bytes {start}-{} of {}",
                end.max(1) - 1,
                short(&v.etag)
            )
        });
        Ok(Some(body(
            self.0.clone(),
            key.to_owned(),
            v.bytes.slice(start..end),
        )))
    }
}

/// A GET's body: a snapshot of the version, read in small chunks, each an await point that may
/// fail (a reset connection).
fn body(world: Shared, key: String, bytes: Bytes) -> ByteStream {
    futures_util::stream::unfold(Some(0usize), move |at| {
        let (world, key, bytes) = (world.clone(), key.clone(), bytes.clone());
        async move {
            let at = at?;
            if at >= bytes.len() {
                return None;
            }
            pause(&world).await;
            let mut w = lock(&world);
            if w.fault(Op::SourceBody, &key) {
                w.note(Op::SourceBody, Some(&key), || "S3 body read reset".into());
                return Some((Err(std::io::Error::other("injected reset")), None));
            }
            let chunk = if bytes.len() > BIG_BODY {
                bytes.len().div_ceil(w.big_reads.max(1)).max(w.chunk)
            } else {
                w.chunk.max(1)
            };
            let end = bytes.len().min(at + chunk);
            Some((Ok(bytes.slice(at..end)), Some(end)))
        }
    })
    .boxed()
}

/// The results store: keeps every object written.
pub struct SimResults(pub Shared);

impl ResultsStore for SimResults {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), SourceError> {
        pause(&self.0).await;
        let mut w = lock(&self.0);
        if w.fault(Op::Results, "") {
            w.note(Op::Results, None, || "results PUT → 503".into());
            return Err(SourceError::Service {
                op: "PutObject",
                key: key.to_owned(),
                status: 503,
                code: "ServiceUnavailable".into(),
                message: "injected".into(),
                request_id: "sim".into(),
            });
        }
        w.results.push((key.to_owned(), body));
        Ok(())
    }
}

/// The task queue as the handler sends rechecks to it: one virtual second per second of delay,
/// in hops of at most [`recheck::MAX_DELAY_SECS`] as SQS allows.
pub struct SimRechecks(pub Shared);

impl RecheckQueue for SimRechecks {
    async fn send(&self, rechecks: &[Recheck]) -> Vec<Result<(), String>> {
        pause(&self.0).await;
        let mut results = Vec::with_capacity(rechecks.len());
        {
            let mut w = lock(&self.0);
            for r in rechecks {
                // Each entry of a SendMessageBatch succeeds or fails on its own.
                if w.fault(Op::Recheck, "") {
                    w.note(Op::Recheck, None, || {
                        format!("SendMessageBatch entry for {} → failed", r.of)
                    });
                    results.push(Err("SQS SendMessageBatch: injected entry failure".into()));
                    continue;
                }
                results.push(Ok(()));
                let (now, later) = recheck::hop(r.after);
                let mut attributes = vec![
                    (recheck::RECHECK_OF.to_owned(), r.of.clone()),
                    (recheck::RECHECK_ATTEMPTS.to_owned(), r.attempts.to_string()),
                ];
                if later > 0 {
                    attributes.push((recheck::RECHECK_WAIT.to_owned(), later.to_string()));
                }
                if let Some(range) = &r.range {
                    attributes.push((recheck::RANGE.to_owned(), range.clone()));
                }
                if r.after.is_zero() {
                    let by = w.actor.clone();
                    w.immediate.push((by, r.of.clone(), r.range.clone()));
                }
                let at = w.now + now;
                w.outbox.push(Sent {
                    body: r.body.clone(),
                    attributes,
                    of: r.of.clone(),
                    at,
                });
            }
        }
        // Then the messages handed over are deleted (a call of its own, which may fail).
        pause(&self.0).await;
        let mut w = lock(&self.0);
        if w.fault(Op::Recheck, "") {
            w.note(Op::Recheck, None, || "DeleteMessageBatch → 503".into());
            return results;
        }
        w.deleted.extend(
            rechecks
                .iter()
                .zip(&results)
                .filter(|(_, sent)| sent.is_ok())
                .filter_map(|(r, _)| r.receipt.clone()),
        );
        results
    }
}
