//! The in-memory S3 source, OSS destination and results store over the shared world. Every call
//! is a future that is `Pending` a chosen number of times (waking itself each time) before it
//! takes effect atomically, so each await point is a place where other actors may run.

use super::world::{lock, md5_hex, short, DestObject, Op, Sent, Shared};
use bytes::Bytes;
use futures_util::StreamExt;
use s3_oss_sync::destination::DestinationStore;
use s3_oss_sync::oss::{self, BodySource, ByteStream, ObjectHead, UploadOutcome, UploadRequest};
use s3_oss_sync::recheck::{self, Recheck, RecheckQueue};
use s3_oss_sync::results::ResultsStore;
use s3_oss_sync::source::{SourceError, SourceObject, SourceStore};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `Pending` this many times, waking itself each time, then ready.
struct Pause(u32);

impl Future for Pause {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// One await point of the world's choosing.
async fn pause(world: &Shared) {
    let n = lock(world).delay();
    Pause(n).await;
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
            let end = bytes.len().min(at + w.chunk.max(1));
            Some((Ok(bytes.slice(at..end)), Some(end)))
        }
    })
    .boxed()
}

/// The OSS destination bucket.
pub struct SimDest(pub Shared);

impl SimDest {
    /// One attempt of a PutObject: read the whole body, then commit (or fail) atomically.
    async fn put_once(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
        retry_left: bool,
    ) -> Result<Result<UploadOutcome, oss::Error>, oss::Error> {
        let key = req.key;
        pause(&self.0).await;
        let mut stream = source.open().await?;
        let mut body = Vec::with_capacity(req.size as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| oss::Error::Source {
                key: key.to_owned(),
                transient: true,
                source: e,
            })?;
            body.extend_from_slice(&chunk);
        }
        if body.len() as u64 != req.size {
            return Err(oss::Error::SizeMismatch {
                key: key.to_owned(),
                expected: req.size,
                actual: body.len() as u64,
            });
        }
        let body = Bytes::from(body);
        let md5 = md5_hex(&body);
        let crc64 = s3_oss_sync::checksum::crc64(&body);
        let mut metadata = req.metadata.clone();
        metadata.tagging = None;
        let mut object = DestObject {
            head: ObjectHead {
                size: req.size,
                etag: format!("\"{}\"", md5.to_ascii_uppercase()),
                crc64: Some(crc64),
                last_modified: None,
                object_type: Some("Normal".into()),
                tagging_count: 0,
                metadata,
                request_id: "sim-in-flight".into(),
            },
            bytes: body,
        };
        // OSS has the whole request now: if this invocation is killed before it takes effect, it
        // still lands a little later.
        let ticket = lock(&self.0).send_write(key, Some(object.clone()));
        pause(&self.0).await;
        let mut w = lock(&self.0);
        w.arrive(ticket);
        if let Some(sent) = req.content_md5 {
            if hex::encode(sent) != md5 {
                w.violations.push(format!(
                    "{key}: an upload's Content-MD5 {} does not match its bytes {md5} (a torn copy)",
                    hex::encode(sent)
                ));
                return Err(oss_unavailable(key, 400, "InvalidDigest"));
            }
        }
        if w.fault(Op::DestUpload, key) {
            // The client retries a single PutObject by opening the body again (sometimes).
            let retry = retry_left && w.rng.chance(0.5);
            w.note(Op::DestUpload, Some(key), || {
                format!("OSS PUT fails before commit (client retries: {retry})")
            });
            let e = oss_unavailable(key, 500, "InternalError");
            return if retry { Ok(Err(e)) } else { Err(e) };
        }
        w.uploads += 1;
        object.head.request_id = format!("sim-{}", w.uploads);
        let out = UploadOutcome {
            etag: object.head.etag.clone(),
            crc64,
            requests: 1,
            parts: 0,
            request_id: object.head.request_id.clone(),
        };
        w.note(Op::DestUpload, Some(key), || {
            format!(
                "OSS PUT commits {} marker {:?}",
                short(&md5),
                object.head.metadata.user
            )
        });
        w.dest.insert(key.to_owned(), object);
        if w.fault(Op::DestUploadLost, key) {
            w.note(Op::DestUploadLost, Some(key), || {
                "OSS PUT committed, but its answer is lost".into()
            });
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        Ok(Ok(out))
    }
}

impl DestinationStore for SimDest {
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, oss::Error> {
        pause(&self.0).await;
        let mut w = lock(&self.0);
        if w.fault(Op::DestHead, key) {
            w.note(Op::DestHead, Some(key), || "OSS HEAD → 503".into());
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        let h = w.dest.get(key).map(|o| o.head.clone());
        w.note(Op::DestHead, Some(key), || match &h {
            Some(h) => format!("OSS HEAD → marker {:?}", h.metadata.user),
            None => "OSS HEAD → 404".into(),
        });
        Ok(h)
    }

    async fn upload(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
    ) -> Result<UploadOutcome, oss::Error> {
        oss::client::check_key(req.key)?;
        match self.put_once(req, source, true).await? {
            Ok(out) => Ok(out),
            Err(_) => self.put_once(req, source, false).await?,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), oss::Error> {
        let ticket = lock(&self.0).send_write(key, None);
        pause(&self.0).await;
        let mut w = lock(&self.0);
        w.arrive(ticket);
        if w.fault(Op::DestDelete, key) {
            w.note(Op::DestDelete, Some(key), || "OSS DELETE → 503".into());
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        let had = w.dest.remove(key).is_some();
        w.note(Op::DestDelete, Some(key), || {
            format!("OSS DELETE (held: {had})")
        });
        Ok(())
    }

    fn bucket(&self) -> &str {
        "sim-oss"
    }
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
