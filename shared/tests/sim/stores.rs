//! The in-memory S3 source, OSS destination and results store over the shared world. Every call
//! is a future that is `Pending` a chosen number of times (waking itself each time) before it
//! takes effect atomically, so each await point is a place where other actors may run.

use super::world::{
    lock, md5_hex, short, DestObject, Effect, NotCompleted, Op, Sent, Shared, SimPart,
};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use s3_oss_sync::budget::MemoryBudget;
use s3_oss_sync::oss::{self};
use s3_oss_sync::store::checkpoints::CheckpointStore;
use s3_oss_sync::store::destination::DestinationStore;
use s3_oss_sync::store::object::{ByteStream, ObjectHead, ObjectMetadata};
use s3_oss_sync::store::results::ResultsStore;
use s3_oss_sync::store::source::{SourceError, SourceObject, SourceStore};
use s3_oss_sync::store::upload::{BodySource, ListedPart, UploadOutcome, UploadRequest};
use s3_oss_sync::store::upload::{PartPace, PartPlan};
use s3_oss_sync::sync::recheck::{self, Recheck, RecheckQueue};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

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

    async fn get_range(
        &self,
        key: &str,
        etag: &str,
        _version_id: Option<&str>,
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

/// The OSS destination bucket. With the world's [`super::world::PartSettings`], objects above
/// the threshold are copied in parts, resumably.
pub struct SimDest {
    /// The world.
    pub world: Shared,
    /// How long parts took (the process's, shared by every copy).
    pace: Arc<PartPace>,
    /// Memory for part buffers: enough that no part waits (a wait would be a wake-up the
    /// executor cannot see coming).
    budget: MemoryBudget,
}

/// An OSS error with its status and code.
fn oss_error(key: &str, status: u16, code: &str, message: String) -> oss::Error {
    oss::Error::Service(Box::new(oss::ServiceError {
        status,
        code: code.into(),
        message: format!("{message} ({key})"),
        request_id: "sim".into(),
        ..oss::ServiceError::default()
    }))
}

fn not_completed(key: &str, upload: &str, e: &NotCompleted) -> oss::Error {
    match e {
        NotCompleted::NoSuchUpload => {
            oss_error(key, 404, "NoSuchUpload", format!("no upload {upload}"))
        }
        NotCompleted::InvalidPart(n) => oss_error(
            key,
            400,
            "InvalidPart",
            format!("part {n} of {upload} is not there with that ETag"),
        ),
    }
}

impl SimDest {
    /// The destination of a world.
    pub fn new(world: Shared) -> Self {
        Self {
            world,
            pace: Arc::default(),
            budget: MemoryBudget::new(1 << 30),
        }
    }

    /// One attempt of a PutObject: read the whole body, then commit (or fail) atomically.
    async fn put_once(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
        retry_left: bool,
    ) -> Result<Result<UploadOutcome, oss::Error>, oss::Error> {
        let key = req.key;
        pause(&self.world).await;
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
        let ticket = lock(&self.world).send_write(key, Some(object.clone()));
        pause(&self.world).await;
        let mut w = lock(&self.world);
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
        pause(&self.world).await;
        let mut w = lock(&self.world);
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
        let ticket = lock(&self.world).send_write(key, None);
        pause(&self.world).await;
        let mut w = lock(&self.world);
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

    fn part_plan(&self) -> Option<PartPlan> {
        let p = lock(&self.world).parts?;
        Some(PartPlan {
            threshold: p.threshold,
            part_size: p.part_size,
            parts_in_flight: p.in_flight,
            budget: self.budget.clone(),
            pace: self.pace.clone(),
        })
    }

    async fn initiate(&self, key: &str, metadata: &ObjectMetadata) -> Result<String, oss::Error> {
        oss::client::check_key(key)?;
        {
            let mut w = lock(&self.world);
            let by = w.actor.clone();
            w.in_parts.insert(by);
        }
        pause(&self.world).await;
        let mut w = lock(&self.world);
        let fails = w.fault(Op::DestInitiate, key);
        let made = !fails || w.rng.chance(0.5);
        let mut id = String::new();
        if made {
            w.resume.initiated += 1;
            id = format!("up{}", w.resume.initiated);
            w.open_uploads.insert(
                id.clone(),
                super::world::OpenUpload {
                    key: key.to_owned(),
                    metadata: metadata.clone(),
                    parts: Default::default(),
                },
            );
        }
        w.note(Op::DestInitiate, Some(key), || match (made, fails) {
            (true, false) => format!("OSS initiates {id} marker {:?}", metadata.user),
            (true, true) => format!("OSS initiates {id}, but its answer is lost"),
            _ => "OSS InitiateMultipartUpload → 503".into(),
        });
        if fails {
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        Ok(id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
        crc: u64,
    ) -> Result<String, oss::Error> {
        pause(&self.world).await;
        // OSS computes the part's CRC-64 and refuses a mismatch; the model takes the one sent
        // (computing it again would double the CPU the large bodies cost) and checks instead, at
        // the completion, that the object is the bytes and CRC-64 of the version its marker names.
        let part = SimPart {
            etag: format!("\"{crc:016X}\""),
            crc,
            bytes: data,
            by: String::new(),
        };
        let ticket = {
            let mut w = lock(&self.world);
            let by = w.actor.clone();
            w.send(
                key,
                Effect::Part {
                    upload: upload_id.to_owned(),
                    number,
                    part: SimPart { by, ..part.clone() },
                },
            )
        };
        pause(&self.world).await;
        let mut w = lock(&self.world);
        w.arrive(ticket);
        let fails = w.fault(Op::DestPart, key);
        if fails && w.rng.chance(0.5) {
            w.note(Op::DestPart, Some(key), || {
                format!("OSS UploadPart {number} of {upload_id} → 500")
            });
            return Err(oss_unavailable(key, 500, "InternalError"));
        }
        let by = w.actor.clone();
        let etag = part.etag.clone();
        let result = w.store_part(upload_id, number, SimPart { by, ..part });
        w.note(Op::DestPart, Some(key), || {
            format!(
                "OSS UploadPart {number} of {upload_id}: {}{}",
                if result.is_ok() {
                    "stored"
                } else {
                    "NoSuchUpload"
                },
                if fails {
                    ", but its answer is lost"
                } else {
                    ""
                }
            )
        });
        if let Err(e) = result {
            return Err(not_completed(key, upload_id, &e));
        }
        if fails {
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        Ok(etag)
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<ListedPart>>, oss::Error> {
        {
            let mut w = lock(&self.world);
            let by = w.actor.clone();
            w.in_parts.insert(by);
        }
        pause(&self.world).await;
        let mut w = lock(&self.world);
        if w.fault(Op::DestList, key) {
            w.note(Op::DestList, Some(key), || {
                format!("OSS ListParts of {upload_id} → 503")
            });
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        let listed: Option<Vec<ListedPart>> = w
            .open_uploads
            .get(upload_id)
            .filter(|u| u.key == key)
            .map(|u| {
                u.parts
                    .iter()
                    .map(|(n, p)| ListedPart {
                        number: *n,
                        etag: p.etag.clone(),
                        size: p.bytes.len() as u64,
                        crc64: Some(p.crc),
                    })
                    .collect()
            });
        if listed.is_some() && !w.fanned.contains_key(upload_id) {
            w.resume.resumed += 1;
        }
        w.note(Op::DestList, Some(key), || match &listed {
            Some(l) => format!(
                "OSS ListParts of {upload_id} → parts {:?}",
                l.iter().map(|p| p.number).collect::<Vec<_>>()
            ),
            None => format!("OSS ListParts of {upload_id} → NoSuchUpload"),
        });
        Ok(listed)
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        crc: u64,
    ) -> Result<UploadOutcome, oss::Error> {
        let ticket = lock(&self.world).send(
            key,
            Effect::Complete {
                upload: upload_id.to_owned(),
                parts: parts.to_vec(),
            },
        );
        pause(&self.world).await;
        let mut w = lock(&self.world);
        w.arrive(ticket);
        if w.fault(Op::DestComplete, key) {
            w.note(Op::DestComplete, Some(key), || {
                format!("OSS completion of {upload_id} fails before commit")
            });
            return Err(oss_unavailable(key, 500, "InternalError"));
        }
        let by = w.actor.clone();
        let object = match w.complete_upload(key, upload_id, parts, &by) {
            Ok(o) => o,
            Err(e) => {
                w.note(Op::DestComplete, Some(key), || {
                    format!("OSS completion of {upload_id} → {e:?}")
                });
                return Err(not_completed(key, upload_id, &e));
            }
        };
        w.note(Op::DestComplete, Some(key), || {
            format!(
                "OSS completes {upload_id}: {} marker {:?}",
                short(&md5_hex(&object.bytes)),
                object.head.metadata.user
            )
        });
        let stored = object.head.crc64.unwrap_or_default();
        if stored != crc {
            w.violations.push(format!(
                "{key}: upload {upload_id} was completed expecting CRC-64 {crc:016X}, but its parts make {stored:016X}"
            ));
            return Err(oss::Error::ChecksumMismatch {
                key: key.to_owned(),
                sent: crc,
                stored,
                request_id: object.head.request_id,
            });
        }
        if w.fault(Op::DestCompleteLost, key) {
            w.resume.completed_lost += 1;
            w.note(Op::DestCompleteLost, Some(key), || {
                format!("OSS completed {upload_id}, but its answer is lost")
            });
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        Ok(UploadOutcome {
            etag: object.head.etag.clone(),
            crc64: stored,
            requests: 1,
            parts: parts.len() as u32,
            request_id: object.head.request_id,
        })
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), oss::Error> {
        let ticket = lock(&self.world).send(
            key,
            Effect::Abort {
                upload: upload_id.to_owned(),
            },
        );
        pause(&self.world).await;
        let mut w = lock(&self.world);
        w.arrive(ticket);
        if w.fault(Op::DestAbort, key) {
            w.note(Op::DestAbort, Some(key), || {
                format!("OSS abort of {upload_id} → 503")
            });
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        let had = w.abort_upload(upload_id);
        w.note(Op::DestAbort, Some(key), || {
            format!("OSS aborts {upload_id} (open: {had})")
        });
        Ok(())
    }
}

/// The checkpoint store: objects in the results bucket, each read and write an await point that
/// may fail; a write may take effect and lose its answer, and a write sent whole lands even if
/// its invocation is killed.
pub struct SimCheckpoints(pub Shared);

fn checkpoint_error(op: &'static str, key: &str) -> SourceError {
    SourceError::Service {
        op,
        key: key.to_owned(),
        status: 503,
        code: "SlowDown".into(),
        message: "injected".into(),
        request_id: "sim".into(),
    }
}

/// What a checkpoint object says, for the trace.
fn describe(body: &Option<Bytes>) -> String {
    use s3_oss_sync::sync::resume::{Checkpoint, RangeRecord};
    let Some(b) = body else {
        return String::new();
    };
    let numbers = |parts: &[s3_oss_sync::sync::resume::DonePart]| -> Vec<u32> {
        parts.iter().map(|p| p.number).collect()
    };
    if let Ok(cp) = Checkpoint::parse(b) {
        return format!(
            ": upload {} of {} parts {:?} ranges {:?}",
            cp.upload_id,
            short(&cp.etag),
            numbers(&cp.parts),
            cp.ranges
        );
    }
    if let Ok(r) = serde_json::from_slice::<RangeRecord>(b) {
        return format!(": upload {} parts {:?}", r.upload_id, numbers(&r.parts));
    }
    format!(": {}", String::from_utf8_lossy(b))
}

/// The trace's name for a checkpoint object.
fn short_key(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// The destination key a checkpoint object (a checkpoint, range record or claim) is about, for
/// the trace.
fn dest_key_of(checkpoint: &str) -> Option<String> {
    super::users::KEYS.iter().find_map(|k| {
        let cp = s3_oss_sync::sync::resume::checkpoint_key(
            super::exec::RESULTS_PREFIX,
            super::exec::TASK,
            super::exec::DEST_BUCKET,
            k,
        );
        checkpoint
            .starts_with(cp.trim_end_matches(".json"))
            .then(|| (*k).to_owned())
    })
}

/// Notes a checkpoint step under the key it is about.
fn note_checkpoint(w: &mut super::world::World, key: &str, text: impl FnOnce() -> String) {
    if w.tracing {
        let about = dest_key_of(key);
        w.note(Op::Checkpoint, about.as_deref(), text);
    }
}

impl SimCheckpoints {
    /// Sends a write; after it arrives, a fault fails it before (half the time) or after it took
    /// effect. `apply` makes the effect and says what the caller gets.
    async fn write<T>(
        &self,
        op: &'static str,
        key: &str,
        effect: Effect,
        apply: impl FnOnce(&mut super::world::World) -> T,
    ) -> Result<T, SourceError> {
        pause(&self.0).await;
        let effect_text = match &effect {
            Effect::CheckpointSave(b) | Effect::CheckpointCreate(b) => Some(b.clone()),
            _ => None,
        };
        let ticket = lock(&self.0).send(key, effect);
        pause(&self.0).await;
        let mut w = lock(&self.0);
        hold_rest_of_poll(&w);
        w.arrive(ticket);
        let fails = w.fault(Op::Checkpoint, key);
        if fails && w.rng.chance(0.5) {
            note_checkpoint(&mut w, key, || {
                format!("checkpoint {op} {} → 503", short_key(key))
            });
            return Err(checkpoint_error(op, key));
        }
        let out = apply(&mut w);
        note_checkpoint(&mut w, key, || {
            format!(
                "checkpoint {op} {}{}",
                short_key(key),
                describe(&effect_text)
            )
        });
        if fails {
            note_checkpoint(&mut w, key, || {
                format!(
                    "checkpoint {op} {} took effect, but its answer is lost",
                    short_key(key)
                )
            });
            return Err(checkpoint_error(op, key));
        }
        Ok(out)
    }
}

impl CheckpointStore for SimCheckpoints {
    /// The wait is the pause before the load, as every store call's: other invocations may move
    /// meanwhile (the virtual clock has no timers outside the deadline's).
    fn load_after<'a>(
        &'a self,
        key: &'a str,
        _wait: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        self.load(key)
    }

    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        Box::pin(async move {
            pause(&self.0).await;
            let mut w = lock(&self.0);
            hold_rest_of_poll(&w);
            if w.fault(Op::Checkpoint, key) {
                note_checkpoint(&mut w, key, || {
                    format!("checkpoint GET {} → 503", short_key(key))
                });
                return Err(checkpoint_error("GetObject", key));
            }
            Ok(w.checkpoints.get(key).cloned())
        })
    }

    fn save<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let stored = body.clone();
            self.write("PutObject", key, Effect::CheckpointSave(body), |w| {
                w.resume.checkpoint_writes += 1;
                w.note_fanned(key, &stored);
                w.checkpoints.insert(key.to_owned(), stored);
            })
            .await
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            self.write("DeleteObject", key, Effect::CheckpointRemove, |w| {
                w.resume.checkpoint_writes += 1;
                w.checkpoints.remove(key);
            })
            .await
        })
    }

    fn create<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<bool, SourceError>> {
        Box::pin(async move {
            let stored = body.clone();
            let created = self
                .write(
                    "PutObject If-None-Match",
                    key,
                    Effect::CheckpointCreate(body),
                    |w| w.create_checkpoint(key, stored),
                )
                .await;
            let mut w = lock(&self.0);
            note_checkpoint(&mut w, key, || {
                format!("checkpoint create {} → {created:?}", short_key(key))
            });
            created
        })
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
