//! Resumable copies: an object copied in parts that survives the end of its invocation.
//!
//! A copy larger than the destination's multipart threshold is made part by part, each part read
//! by its own ranged GET pinned to the source version (`If-Match` on the ETag, and the version id
//! when the event has one), several in flight at once. Its progress is a **checkpoint**, a small
//! JSON object in the results bucket (`<results prefix>-checkpoints/<task>/<hash of the
//! destination>.json`, see [`checkpoint_key`]): the source it is pinned to (bucket, key, ETag,
//! version id, size and metadata fingerprint), the part size, the OSS upload id, and each finished
//! part's number, size, ETag and CRC-64. A part is written to the checkpoint only after OSS
//! reported, for that part, the CRC-64 computed from the source bytes.
//!
//! **What is trusted on resumption.** OSS's ListParts is the truth for which parts exist; the
//! checkpoint is the truth for which of them carry the source's bytes. A part is kept only when it
//! is in both, with the same size and ETag and (where ListParts reports it) the same CRC-64. Any
//! other part (one that landed while its invocation was killed, one the checkpoint does not know)
//! is in doubt and uploaded again. The object's CRC-64 is combined from the kept parts' and
//! compared with what OSS reports on completion.
//!
//! **The pin.** When the source is no longer the pinned version (a ranged GET answers 412 or
//! `NoSuchKey`, or a later delivery finds another ETag, size, version or metadata), the upload is
//! aborted, the checkpoint removed, and the copy starts over on the current version.
//!
//! **Deadlines.** No part starts that would not finish before the copy's stop time (from the
//! slowest part seen so far); at the stop time the copy saves its checkpoint and returns
//! [`Ended::Paused`]. The handler then records the event `in_progress` and sends the message
//! back as a continuation (see [`crate::sync`]), so the next delivery resumes at once.
//!
//! **Who may resume.** Any job for the key whose source is the pinned version: the parts are the
//! same bytes whoever reads them. The object's metadata (and so its sync marker) is fixed when
//! the upload is initiated and names the message that initiated it; that message's chain stays
//! pending (a continuation) until it has seen the finished object, so the marker's promise holds.
//! Two jobs resuming at once cost duplicate part uploads, never a wrong object: the completion is
//! checked against the CRC-64 of the source's bytes.
//!
//! **Cost.** One checkpoint PUT at the start, then at most one a second while parts finish, one
//! at each pause and a DELETE at the end; a ListParts page per 1,000 parts on each resumption.

use crate::budget::MemoryBudget;
use crate::checksum::{crc64, crc64_combine};
use crate::destination::DestinationStore;
use crate::oss::{self, ListedPart, ObjectMetadata, UploadOutcome};
use crate::source::{SourceError, SourceObject, SourceStore};
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;

/// The checkpoint format's version.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Source reads of one part before its failure ends the copy's run (transient errors only).
pub const PART_READ_ATTEMPTS: u32 = 3;

/// Least time between two checkpoint writes while parts finish.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How long a part takes, as this process has seen: seconds per byte of one part upload (its
/// ranged read included), an exponentially weighted average, so a copy knows before its first
/// part whether one still fits before its stop time.
#[derive(Debug, Default)]
pub struct PartPace(std::sync::Mutex<Option<f64>>);

impl PartPace {
    /// The expected time of a part of `size` bytes, if a part has been timed.
    pub fn expect(&self, size: u64) -> Option<Duration> {
        let spb = (*self.0.lock().unwrap_or_else(|p| p.into_inner()))?;
        Some(Duration::from_secs_f64((spb * size as f64).min(86_400.0)))
    }

    /// Learns from one part.
    pub fn observe(&self, size: u64, took: Duration) {
        if size == 0 {
            return;
        }
        let spb = took.as_secs_f64() / size as f64;
        let mut p = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *p = Some(p.map_or(spb, |old| 0.7 * old + 0.3 * spb));
    }
}

/// How a destination takes large objects in parts.
#[derive(Debug, Clone)]
pub struct PartPlan {
    /// Objects larger than this are copied in parts, resumably.
    pub threshold: u64,
    /// Preferred part size (raised for objects that would need more than 10,000 parts).
    pub part_size: u64,
    /// Parts read and uploaded at once per object.
    pub parts_in_flight: usize,
    /// Memory for part buffers, shared with every other upload of the process.
    pub budget: MemoryBudget,
    /// How long parts have taken in this process.
    pub pace: std::sync::Arc<PartPace>,
}

/// One finished part, as the checkpoint keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonePart {
    /// Part number, from 1.
    pub number: u32,
    /// Size in bytes.
    pub size: u64,
    /// ETag OSS gave the part.
    pub etag: String,
    /// CRC-64/ECMA of the part's source bytes, 16 hex digits (OSS reported the same).
    pub crc64: String,
}

impl DonePart {
    fn crc(&self) -> Option<u64> {
        u64::from_str_radix(&self.crc64, 16).ok()
    }
}

/// A copy in progress: what it is pinned to and which parts are done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version ([`CHECKPOINT_VERSION`]).
    pub version: u32,
    /// Task id.
    pub task: String,
    /// Source bucket.
    pub source_bucket: String,
    /// Source key.
    pub source_key: String,
    /// The source ETag every read is pinned to.
    pub etag: String,
    /// The source version id, when the bucket is versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The source object's size.
    pub size: u64,
    /// Fingerprint of the source metadata the upload was initiated with.
    pub fingerprint: String,
    /// Destination bucket.
    pub dest_bucket: String,
    /// Destination key.
    pub dest_key: String,
    /// Part size (all parts but the last).
    pub part_size: u64,
    /// The OSS multipart upload id.
    pub upload_id: String,
    /// The message the upload was initiated for (its sync marker names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When the copy began (RFC 3339).
    pub started_at: String,
    /// When this checkpoint was written (RFC 3339).
    pub updated_at: String,
    /// Finished parts, by number.
    pub parts: Vec<DonePart>,
}

impl Checkpoint {
    /// Number of parts the object has.
    pub fn parts_total(&self) -> u32 {
        self.size.div_ceil(self.part_size.max(1)) as u32
    }

    /// Bytes in finished parts.
    pub fn bytes_done(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// The byte range of part `number` (from 1): first byte and length.
    pub fn range(&self, number: u32) -> (u64, u64) {
        let start = u64::from(number - 1) * self.part_size;
        (start, self.part_size.min(self.size - start))
    }

    /// Whether the checkpoint is pinned to `head`, the source's current version, whose metadata
    /// has fingerprint `fingerprint`.
    pub fn pinned_to(&self, head: &SourceObject, fingerprint: &str) -> bool {
        self.etag == head.etag
            && self.size == head.size
            && self.fingerprint == fingerprint
            && (self.version_id.is_none()
                || head.version_id.is_none()
                || self.version_id == head.version_id)
    }

    /// Parses a stored checkpoint.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let c: Self = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if c.version != CHECKPOINT_VERSION {
            return Err(format!(
                "checkpoint format {} is not {CHECKPOINT_VERSION}",
                c.version
            ));
        }
        if c.part_size == 0 || c.size == 0 || c.parts.iter().any(|p| p.crc().is_none()) {
            return Err("checkpoint has a zero size or an unreadable CRC-64".into());
        }
        Ok(c)
    }

    fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }
}

/// Which parts of a checkpoint are kept on resumption, and which must be uploaded: a part is kept
/// only when the checkpoint and ListParts agree on it (size, ETag, and the CRC-64 where ListParts
/// reports one) and it has the size its range needs. Pure.
pub fn plan_resume(cp: &Checkpoint, listed: &[ListedPart]) -> (Vec<DonePart>, Vec<u32>) {
    let listed: BTreeMap<u32, &ListedPart> = listed.iter().map(|p| (p.number, p)).collect();
    let mut kept = Vec::new();
    let mut todo = Vec::new();
    let by_number: BTreeMap<u32, &DonePart> = cp.parts.iter().map(|p| (p.number, p)).collect();
    for n in 1..=cp.parts_total() {
        let ok = match (by_number.get(&n), listed.get(&n)) {
            (Some(done), Some(there)) => {
                done.size == cp.range(n).1
                    && there.size == done.size
                    && there.etag.trim_matches('"') == done.etag.trim_matches('"')
                    && there.crc64.is_none_or(|c| Some(c) == done.crc())
            }
            _ => false,
        };
        match by_number.get(&n) {
            Some(done) if ok => kept.push((*done).clone()),
            _ => todo.push(n),
        }
    }
    (kept, todo)
}

/// Where checkpoints are kept: `<results prefix>-checkpoints/<task>/<SHA-256 of
/// "<destination bucket>/<destination key>", 32 hex digits>.json` (beside the results, never
/// under them, so the report never reads one as a record).
pub fn checkpoint_key(
    results_prefix: &str,
    task: &str,
    dest_bucket: &str,
    dest_key: &str,
) -> String {
    let hash = Sha256::digest(format!("{dest_bucket}/{dest_key}").as_bytes());
    format!(
        "{}{task}/{}.json",
        checkpoint_prefix(results_prefix),
        &hex::encode(hash)[..32]
    )
}

/// The folder of every task's checkpoints, ending in `/`.
pub fn checkpoint_prefix(results_prefix: &str) -> String {
    let root = results_prefix.trim_matches('/');
    if root.is_empty() {
        "checkpoints/".to_owned()
    } else {
        format!("{root}-checkpoints/")
    }
}

/// Where checkpoints are stored (the results bucket). Errors are S3's.
pub trait CheckpointStore: Send + Sync {
    /// The stored body, or `None` if there is none.
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>>;
    /// Writes the whole body.
    fn save<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), SourceError>>;
    /// Removes it; succeeds when it is already gone.
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SourceError>>;
}

/// Checkpoints kept in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryCheckpoints {
    objects: std::sync::Mutex<BTreeMap<String, Bytes>>,
    /// Writes made (saves and removes).
    pub writes: std::sync::atomic::AtomicU32,
}

impl MemoryCheckpoints {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every checkpoint held, by key.
    pub fn all(&self) -> BTreeMap<String, Bytes> {
        self.lock().clone()
    }
}

impl CheckpointStore for MemoryCheckpoints {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        Box::pin(async move { Ok(self.lock().get(key).cloned()) })
    }
    fn save<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), SourceError>> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            self.lock().insert(key.to_owned(), body);
            Ok(())
        })
    }
    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SourceError>> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            self.lock().remove(key);
            Ok(())
        })
    }
}

/// Where a job's resumable copies keep their checkpoints.
#[derive(Clone, Copy)]
pub struct Resume<'a> {
    /// The store (the results bucket).
    pub store: &'a dyn CheckpointStore,
    /// The task id.
    pub task: &'a str,
    /// The results prefix (checkpoints go beside it, see [`checkpoint_key`]).
    pub results_prefix: &'a str,
    /// The source bucket (recorded in checkpoints).
    pub source_bucket: &'a str,
}

/// How a run of a resumable copy ended.
#[derive(Debug)]
pub enum Ended {
    /// The object is complete in the destination (its checkpoint removed).
    Complete {
        /// What the completion achieved.
        outcome: UploadOutcome,
        /// Bytes uploaded by this run.
        moved: u64,
    },
    /// The stop time came first; the checkpoint holds every finished part.
    Paused {
        /// Bytes in finished parts.
        done: u64,
        /// Parts finished.
        parts_done: u32,
        /// Parts in all.
        parts_total: u32,
        /// Bytes uploaded by this run.
        moved: u64,
        /// The upload id.
        upload_id: String,
    },
    /// The source is no longer the pinned version: the upload was aborted and the checkpoint
    /// removed; the copy must start over on the current version.
    StartOver,
    /// The copy failed; parts finished before the failure are in the checkpoint.
    Failed(Failure),
}

/// Why a resumable copy's run failed.
#[derive(Debug)]
pub enum Failure {
    /// The destination failed.
    Dest(oss::Error),
    /// The source failed.
    Source(SourceError),
    /// The checkpoint could not be read or written.
    Checkpoint(SourceError),
    /// The write-ahead before the completion could not be left (see [`crate::copy`]).
    NotQueued(String),
}

/// One resumable copy: the job's key, the source version to copy, and its metadata.
pub struct ResumableCopy<'a, S, D> {
    /// The source bucket.
    pub source: &'a S,
    /// The destination bucket.
    pub dest: &'a D,
    /// Where checkpoints are kept.
    pub resume: Resume<'a>,
    /// How parts are made.
    pub plan: &'a PartPlan,
    /// Source key.
    pub source_key: &'a str,
    /// Destination key.
    pub dest_key: &'a str,
    /// The source's current version (from a HEAD or GET).
    pub head: &'a SourceObject,
    /// Fingerprint of its metadata.
    pub fingerprint: &'a str,
    /// The destination metadata (with the sync marker) for a new upload.
    pub metadata: &'a ObjectMetadata,
    /// The message a new upload is initiated for.
    pub message_id: Option<&'a str>,
    /// When this run must stop: no part starts that would not finish by then (by the slowest
    /// part of this run, or the process's [`PartPace`]; with neither, parts start); at that
    /// instant unfinished parts are dropped and the checkpoint saved.
    pub stop_at: Option<Instant>,
    /// The completion (and the write-ahead before it) starts only before this instant; a run
    /// whose parts are all done later pauses, and the next completes at once.
    pub complete_by: Option<Instant>,
}

/// What a part read or upload failed with.
enum PartError {
    Moved,
    Source(SourceError),
    Dest(oss::Error),
}

fn now_text() -> String {
    crate::outcome::format_time(OffsetDateTime::now_utc())
}

impl<S: SourceStore, D: DestinationStore> ResumableCopy<'_, S, D> {
    fn key(&self) -> String {
        checkpoint_key(
            self.resume.results_prefix,
            self.resume.task,
            self.dest.bucket(),
            self.dest_key,
        )
    }

    async fn save(
        &self,
        key: &str,
        target: &Checkpoint,
        parts: &mut [DonePart],
    ) -> Result<(), Failure> {
        parts.sort_by_key(|p| p.number);
        let cp = Checkpoint {
            updated_at: now_text(),
            parts: parts.to_vec(),
            ..target.clone()
        };
        self.resume
            .store
            .save(key, cp.to_bytes())
            .await
            .map_err(Failure::Checkpoint)
    }

    /// Drops a checkpoint and its upload (a stale pin, or a source that moved).
    async fn discard(&self, key: &str, cp: &Checkpoint) -> Result<(), Failure> {
        match self.dest.abort(&cp.dest_key, &cp.upload_id).await {
            Ok(()) => {}
            Err(e) => return Err(Failure::Dest(e)),
        }
        tracing::info!(
            key = cp.dest_key,
            upload_id = cp.upload_id,
            "resumable copy discarded: the source is no longer the version it was pinned to"
        );
        self.resume
            .store
            .remove(key)
            .await
            .map_err(Failure::Checkpoint)
    }

    /// The checkpoint to continue from and the parts still to upload, or a new upload.
    async fn start(&self, key: &str) -> Result<(Checkpoint, Vec<u32>), Failure> {
        let stored = self
            .resume
            .store
            .load(key)
            .await
            .map_err(Failure::Checkpoint)?;
        if let Some(body) = stored {
            match Checkpoint::parse(&body) {
                Ok(cp)
                    if cp.dest_key == self.dest_key
                        && cp.pinned_to(self.head, self.fingerprint) =>
                {
                    match self.dest.list_parts(&cp.dest_key, &cp.upload_id).await {
                        Ok(Some(listed)) => {
                            let (kept, todo) = plan_resume(&cp, &listed);
                            tracing::info!(
                                key = cp.dest_key,
                                upload_id = cp.upload_id,
                                kept = kept.len(),
                                todo = todo.len(),
                                "resuming a copy"
                            );
                            return Ok((Checkpoint { parts: kept, ..cp }, todo));
                        }
                        // The upload is gone (completed by another job, aborted, swept).
                        Ok(None) => {
                            self.resume
                                .store
                                .remove(key)
                                .await
                                .map_err(Failure::Checkpoint)?;
                        }
                        Err(e) => return Err(Failure::Dest(e)),
                    }
                }
                Ok(cp) => self.discard(key, &cp).await?,
                Err(why) => {
                    tracing::warn!(checkpoint = key, why, "unreadable checkpoint replaced");
                }
            }
        }
        let part_size =
            oss::part_size_for(self.head.size, self.plan.part_size).map_err(|limit| {
                Failure::Dest(oss::Error::TooLarge {
                    key: self.dest_key.to_owned(),
                    size: self.head.size,
                    limit,
                })
            })?;
        let upload_id = self
            .dest
            .initiate(self.dest_key, self.metadata)
            .await
            .map_err(Failure::Dest)?;
        let now = now_text();
        let cp = Checkpoint {
            version: CHECKPOINT_VERSION,
            task: self.resume.task.to_owned(),
            source_bucket: self.resume.source_bucket.to_owned(),
            source_key: self.source_key.to_owned(),
            etag: self.head.etag.clone(),
            version_id: self.head.version_id.clone(),
            size: self.head.size,
            fingerprint: self.fingerprint.to_owned(),
            dest_bucket: self.dest.bucket().to_owned(),
            dest_key: self.dest_key.to_owned(),
            part_size,
            upload_id,
            message_id: self.message_id.map(str::to_owned),
            started_at: now.clone(),
            updated_at: now,
            parts: Vec::new(),
        };
        if let Err(e) = self.save(key, &cp, &mut []).await {
            // Without its checkpoint nobody would find the upload again.
            let _ = self.dest.abort(&cp.dest_key, &cp.upload_id).await;
            return Err(e);
        }
        let todo = (1..=cp.parts_total()).collect();
        Ok((cp, todo))
    }

    /// Reads part `number` of the pinned version and uploads it; returns it as done.
    async fn part(&self, cp: &Checkpoint, number: u32) -> Result<DonePart, PartError> {
        let (start, len) = cp.range(number);
        let _memory = self.plan.budget.acquire(len).await;
        let mut attempt = 1;
        let data = loop {
            match self.read_range(cp, start, len).await {
                Ok(d) => break d,
                Err(PartError::Source(e)) if e.is_transient() && attempt < PART_READ_ATTEMPTS => {
                    tracing::warn!(key = self.source_key, number, attempt, error = %e, "part read failed; reading it again");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let crc = crc64(&data);
        let etag = self
            .dest
            .upload_part(&cp.dest_key, &cp.upload_id, number, data, crc)
            .await
            .map_err(PartError::Dest)?;
        Ok(DonePart {
            number,
            size: len,
            etag,
            crc64: format!("{crc:016x}"),
        })
    }

    async fn read_range(&self, cp: &Checkpoint, start: u64, len: u64) -> Result<Bytes, PartError> {
        let stream = match self
            .source
            .get_range(
                self.source_key,
                &cp.etag,
                cp.version_id.as_deref(),
                start,
                len,
            )
            .await
        {
            Ok(Some(s)) => s,
            Ok(None) | Err(SourceError::Changed { .. }) => return Err(PartError::Moved),
            Err(e) => return Err(PartError::Source(e)),
        };
        let mut stream = stream;
        let mut buf = BytesMut::with_capacity(len as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                PartError::Source(SourceError::Transport {
                    op: "GetObject",
                    key: self.source_key.to_owned(),
                    detail: format!("reading bytes {start}-{}: {e}", start + len - 1),
                    transient: true,
                })
            })?;
            if (buf.len() + chunk.len()) as u64 > len {
                return Err(PartError::Source(SourceError::Transport {
                    op: "GetObject",
                    key: self.source_key.to_owned(),
                    detail: format!("the range at {start} gave more than {len} bytes"),
                    transient: true,
                }));
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() as u64 != len {
            return Err(PartError::Source(SourceError::Transport {
                op: "GetObject",
                key: self.source_key.to_owned(),
                detail: format!("the range at {start} gave {} of {len} bytes", buf.len()),
                transient: true,
            }));
        }
        Ok(buf.freeze())
    }

    /// Runs the copy until it is complete, paused at the stop time, or failed. `before_complete`
    /// runs just before the completion (the write-ahead: the completion is the only request that
    /// changes the destination key); its error ends the run with the parts kept.
    pub async fn run(
        &self,
        before_complete: impl std::future::Future<Output = Result<(), String>>,
    ) -> Ended {
        let key = self.key();
        let (cp, todo) = match self.start(&key).await {
            Ok(s) => s,
            Err(f) => return Ended::Failed(f),
        };
        let target = Checkpoint {
            parts: Vec::new(),
            ..cp.clone()
        };
        let mut parts = cp.parts;
        let mut todo: VecDeque<u32> = todo.into();
        let in_flight = self.plan.parts_in_flight.max(1);
        let mut running = FuturesUnordered::new();
        let mut moved = 0u64;
        let mut slowest: Option<Duration> = None;
        let mut last_save = Instant::now();
        let mut dirty = false;
        let paced = self.plan.pace.expect(target.part_size);
        let mut failure: Option<Failure> = None;
        let mut stopped = false;
        loop {
            while running.len() < in_flight && failure.is_none() {
                let Some(&n) = todo.front() else { break };
                if let Some(stop) = self.stop_at {
                    let needs = slowest.max(paced).map(|d| d.mul_f64(1.25));
                    if Instant::now() + needs.unwrap_or_default() > stop {
                        stopped = true;
                        break;
                    }
                }
                todo.pop_front();
                let target = &target;
                running.push(async move {
                    let began = Instant::now();
                    (self.part(target, n).await, began.elapsed())
                });
            }
            if running.is_empty() {
                break;
            }
            let next = match self.stop_at {
                Some(at) => tokio::select! {
                    r = running.next() => r,
                    () = tokio::time::sleep_until(at) => None,
                },
                None => running.next().await,
            };
            let Some((result, took)) = next else {
                // The stop time: parts still running are dropped (in doubt next time).
                stopped = true;
                break;
            };
            match result {
                Ok(done) => {
                    moved += done.size;
                    self.plan.pace.observe(done.size, took);
                    slowest = Some(slowest.map_or(took, |s| s.max(took)));
                    parts.push(done);
                    dirty = true;
                }
                Err(PartError::Moved) => {
                    drop(running);
                    return match self.discard(&key, &target).await {
                        Ok(()) => Ended::StartOver,
                        Err(f) => Ended::Failed(f),
                    };
                }
                // The parts in flight may finish; no new one starts.
                Err(PartError::Source(e)) => failure = failure.or(Some(Failure::Source(e))),
                Err(PartError::Dest(e)) => failure = failure.or(Some(Failure::Dest(e))),
            }
            if dirty && last_save.elapsed() >= SAVE_EVERY && failure.is_none() {
                if let Err(f) = self.save(&key, &target, &mut parts).await {
                    return Ended::Failed(f);
                }
                (last_save, dirty) = (Instant::now(), false);
            }
        }
        drop(running);
        let parts_total = target.parts_total();
        let late = self.complete_by.is_some_and(|by| Instant::now() >= by);
        if failure.is_some() || stopped || late || parts.len() < parts_total as usize {
            if dirty {
                if let Err(f) = self.save(&key, &target, &mut parts).await {
                    return Ended::Failed(failure.unwrap_or(f));
                }
            }
            if let Some(f) = failure {
                return Ended::Failed(f);
            }
            return Ended::Paused {
                done: parts.iter().map(|p| p.size).sum(),
                parts_done: parts.len() as u32,
                parts_total,
                moved,
                upload_id: target.upload_id.clone(),
            };
        }
        parts.sort_by_key(|p| p.number);
        let whole = parts.iter().fold(0, |acc, p| {
            crc64_combine(acc, p.crc().unwrap_or_default(), p.size)
        });
        if let Err(why) = before_complete.await {
            if dirty {
                let _ = self.save(&key, &target, &mut parts).await;
            }
            return Ended::Failed(Failure::NotQueued(why));
        }
        let etags: Vec<(u32, String)> = parts.iter().map(|p| (p.number, p.etag.clone())).collect();
        match self
            .dest
            .complete(&target.dest_key, &target.upload_id, &etags, whole)
            .await
        {
            Ok(outcome) => {
                if let Err(e) = self.resume.store.remove(&key).await {
                    // Found again later: its upload is gone, so it is removed then.
                    tracing::warn!(checkpoint = key, error = %e, "could not remove a finished copy's checkpoint");
                }
                Ended::Complete { outcome, moved }
            }
            Err(e) => {
                // Another job may have completed the same upload (the same bytes) first.
                if let Ok(Some(h)) = self.dest.head(&target.dest_key).await {
                    if h.crc64 == Some(whole) && h.size == target.size {
                        let _ = self.resume.store.remove(&key).await;
                        return Ended::Complete {
                            outcome: UploadOutcome {
                                etag: h.etag,
                                crc64: whole,
                                requests: 1,
                                parts: parts_total,
                                request_id: h.request_id,
                            },
                            moved,
                        };
                    }
                }
                if let Some(dirty_parts) = Some(&mut parts).filter(|_| dirty) {
                    let _ = self.save(&key, &target, dirty_parts).await;
                }
                Ended::Failed(Failure::Dest(e))
            }
        }
    }
}
