//! Resumable copies: an object copied in parts that survives the end of its invocation.
//!
//! A copy larger than the destination's multipart threshold is made part by part, each part read
//! by its own ranged GET pinned to the source version (`If-Match` on the ETag, and the version's
//! id in a versioned bucket), several in flight at once. Its progress is a **checkpoint**, a small
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
//! slowest part seen so far and the process's [`PartPace`]; one part is tried in every run that
//! has time); parts still running just before the cut-off are dropped, the checkpoint saved, and
//! the run returns [`Ended::Paused`]. The handler then records the event `in_progress` and sends the message
//! back as a continuation (see [`crate::sync`]), so the next delivery resumes at once.
//!
//! **Who may resume.** Any job for the key whose source is the pinned version: the parts are the
//! same bytes whoever reads them. The object's metadata (and so its sync marker) is fixed when
//! the upload is initiated and names the message that initiated it; that message's chain stays
//! pending (a continuation) until it has seen the finished object, so the marker's promise holds.
//! Two jobs resuming at once cost duplicate part uploads, never a wrong object: the completion is
//! checked against the CRC-64 of the source's bytes.
//!
//! **Fan-out** (`FANOUT_THRESHOLD_MIB`): a new copy above the threshold is split into range jobs,
//! each with its own record beside the checkpoint; the range job that sees every range uploaded
//! claims the completion with a conditional create. Range records, the claim and the note that
//! the range jobs were sent are named by the upload, so nothing left by an upload discarded
//! since touches the one that replaced it. A job that finds a fanned-out copy of the version it
//! holds leaves it to its range jobs (sending them if they are not known to be sent), and is
//! acknowledged; so a range job never ends without uploading its range while its copy stays: one
//! that finds the source gone, too small, or already in the destination gives the copy up
//! (aborts it), and one whose copy is over, replaced or discarded takes over, looking at the key
//! afresh (a new destination HEAD, then the source) as its message's own job. A job holding an
//! older version's HEAD reads the source again before it discards a copy pinned to another
//! version, so a newer copy is never discarded for an older one.
//!
//! **Cost.** A checkpoint GET and a conditional PUT at the start, then at most one PUT a second
//! while parts finish, one at each pause, and a GET and DELETE at the end; a ListParts page per
//! 1,000 parts on each resumption.

use crate::checksum::{crc64, crc64_combine};
use crate::oss;
use crate::store::checkpoints::CheckpointStore;
use crate::store::destination::DestinationStore;
use crate::store::object::ObjectMetadata;
use crate::store::source::{SourceError, SourceObject, SourceStore};
use crate::store::upload::{ListedPart, PartPlan, UploadOutcome};
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
    /// Finished parts, by number (for a copy fanned out, the range records hold them instead).
    pub parts: Vec<DonePart>,
    /// For a copy fanned out to range jobs: each job's first and last part number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<[u32; 2]>,
}

/// A range job's progress: which of its parts are done (kept beside the checkpoint, one object
/// per range, so range jobs never write the same object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRecord {
    /// Format version ([`CHECKPOINT_VERSION`]).
    pub version: u32,
    /// The upload the parts are in.
    pub upload_id: String,
    /// First part number of the range.
    pub first: u32,
    /// Last part number of the range.
    pub last: u32,
    /// When it was written (RFC 3339).
    pub updated_at: String,
    /// Finished parts of the range, by number.
    pub parts: Vec<DonePart>,
}

impl RangeRecord {
    /// Whether every part of the range is done.
    pub fn complete(&self) -> bool {
        let have: std::collections::BTreeSet<u32> = self.parts.iter().map(|p| p.number).collect();
        (self.first..=self.last).all(|n| have.contains(&n))
    }
}

/// A range job: the parts `first..=last` of the fanned-out upload `upload_id`, carried by its
/// message's [`crate::sync::recheck::RANGE`] attribute as `"<first>-<last> <upload id>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeJob {
    /// First part number.
    pub first: u32,
    /// Last part number.
    pub last: u32,
    /// The upload.
    pub upload_id: String,
}

impl RangeJob {
    /// Reads the attribute; `None` when it is not one.
    pub fn parse(attribute: &str) -> Option<Self> {
        let (range, upload_id) = attribute.trim().split_once(' ')?;
        let (first, last) = range.split_once('-')?;
        let (first, last): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
        (first >= 1 && first <= last && !upload_id.trim().is_empty()).then(|| Self {
            first,
            last,
            upload_id: upload_id.trim().to_owned(),
        })
    }

    /// The attribute's value.
    pub fn attribute(&self) -> String {
        format!("{}-{} {}", self.first, self.last, self.upload_id)
    }
}

/// How a copy is split into range jobs: `parts` part numbers in ranges of `per_range` parts.
/// Pure.
pub fn split_ranges(parts: u32, per_range: u32) -> Vec<[u32; 2]> {
    let per_range = per_range.max(1);
    (0..parts.div_ceil(per_range))
        .map(|i| [i * per_range + 1, ((i + 1) * per_range).min(parts)])
        .collect()
}

/// How long a job that finds a fanned-out copy without its note of range jobs sent waits for it,
/// at most [`SENT_NOTE_WAITS`] times, before sending them itself.
pub const SENT_NOTE_WAIT: Duration = Duration::from_millis(500);

/// See [`SENT_NOTE_WAIT`]: 3 s in all, ample for the initiator's few requests between creating the
/// checkpoint and writing the note.
pub const SENT_NOTE_WAITS: u32 = 6;

/// The key of the note that a fanned-out copy's range jobs were all sent, beside its checkpoint:
/// `<checkpoint>.sent-<upload tag>.json`, written once they were. A note of its own, not a field
/// of the checkpoint: the checkpoint of a copy fanned out is only ever created (if absent) and
/// removed, so a job that finds it naming another upload (replaced, or removed by a job that
/// read it before) can rely on it never naming its upload again.
pub fn sent_key(checkpoint_key: &str, upload_id: &str) -> String {
    format!(
        "{}.sent-{}.json",
        checkpoint_key.trim_end_matches(".json"),
        upload_tag(upload_id)
    )
}

/// A short name of an upload for the keys of its range records and claim: 16 hex digits of the
/// SHA-256 of its id (OSS's ids are long; any of their characters is safe this way).
fn upload_tag(upload_id: &str) -> String {
    hex::encode(&Sha256::digest(upload_id.as_bytes())[..8])
}

/// The key of a range job's record, beside its copy's checkpoint:
/// `<checkpoint>.range-<first>-<last>-<upload tag>.json`. Named by the upload, so a job still
/// working on an upload discarded since never writes over (nor removes) a record of the upload
/// that replaced it, whose ranges may be the same.
pub fn range_record_key(checkpoint_key: &str, upload_id: &str, first: u32, last: u32) -> String {
    format!(
        "{}.range-{first}-{last}-{}.json",
        checkpoint_key.trim_end_matches(".json"),
        upload_tag(upload_id)
    )
}

/// The key of a fanned-out copy's completion claim, beside its checkpoint:
/// `<checkpoint>.claim-<upload tag>.json`, created only if absent, by the range job that
/// completes the upload. Named by the upload, so a claim left by a range job of an upload
/// discarded since (written late, or after the discard removed the claims it knew of) never
/// stands in the way of the upload that replaced it.
pub fn claim_key(checkpoint_key: &str, upload_id: &str) -> String {
    format!(
        "{}.claim-{}.json",
        checkpoint_key.trim_end_matches(".json"),
        upload_tag(upload_id)
    )
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
    plan_parts(cp, &cp.parts, listed, 1..=cp.parts_total())
}

/// [`plan_resume`] for the parts `numbers` of `cp`'s object, `done` being what a checkpoint or
/// range record says of them. Pure.
pub fn plan_parts(
    cp: &Checkpoint,
    done: &[DonePart],
    listed: &[ListedPart],
    numbers: std::ops::RangeInclusive<u32>,
) -> (Vec<DonePart>, Vec<u32>) {
    let listed: BTreeMap<u32, &ListedPart> = listed.iter().map(|p| (p.number, p)).collect();
    let mut kept = Vec::new();
    let mut todo = Vec::new();
    let by_number: BTreeMap<u32, &DonePart> = done.iter().map(|p| (p.number, p)).collect();
    for n in numbers {
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

/// The parts of `todo` that ListParts shows with the size their range needs although no record
/// vouches for them: a part dropped at the cut-off after OSS had received it, or uploaded by a
/// job killed before its save. Their ETags (OSS's MD5 of the part) are checked against the
/// source range when it is read again, so such a part is kept, not sent twice. Pure.
pub fn landed_unrecorded(
    cp: &Checkpoint,
    listed: &[ListedPart],
    todo: &[u32],
) -> BTreeMap<u32, String> {
    let listed: BTreeMap<u32, &ListedPart> = listed.iter().map(|p| (p.number, p)).collect();
    todo.iter()
        .filter_map(|n| {
            let there = listed.get(n)?;
            (there.size == cp.range(*n).1).then(|| (*n, there.etag.clone()))
        })
        .collect()
}

/// Whether `etag` (as OSS gives a part's, quoted upper-case hex) is the MD5 of `data`.
fn etag_is_md5_of(etag: &str, data: &[u8]) -> bool {
    etag.trim_matches('"')
        .eq_ignore_ascii_case(&hex::encode(md5::Md5::digest(data)))
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
        /// Parts still in flight at the drop time, dropped: in doubt (one may land after the
        /// next run has listed the upload's parts, and then be sent twice).
        dropped: u32,
    },
    /// The source is no longer the pinned version (the upload was aborted and the checkpoint
    /// removed), or no longer the version the job holds (a copy of a newer one is in progress,
    /// left as it is): the copy must start over on the current version.
    StartOver,
    /// The copy failed; parts finished before the failure are in the checkpoint.
    Failed(Failure),
    /// The copy was split into range jobs, sent to the queue; the one that finishes last
    /// completes the object.
    FannedOut {
        /// Range jobs in all.
        ranges: usize,
        /// Range jobs sent now (the ranges not yet uploaded).
        sent: usize,
        /// The upload id.
        upload_id: String,
    },
    /// A range job uploaded its range; another range job completes (or completed) the object.
    RangeUploaded {
        /// Bytes uploaded by this run.
        moved: u64,
    },
    /// A range job has nothing to do: its copy is over or its source changed (why).
    RangeOver(String),
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
    /// The write-ahead before the completion could not be left (see [`crate::sync::copy`]).
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
    /// part of this run, or the process's [`PartPace`]; one part is tried in every run that has
    /// time); parts still running are dropped at `drop_at`.
    pub stop_at: Option<Instant>,
    /// The completion (and the write-ahead before it) starts only before this instant; a run
    /// whose parts are all done later pauses, and the next completes at once.
    pub complete_by: Option<Instant>,
    /// When parts still running are dropped (in doubt next time) and the progress saved: after
    /// the stop time, so a part started in time is rarely lost.
    pub drop_at: Option<Instant>,
    /// Whether (and how) a new copy of a large object is split into range jobs.
    pub fan_out: Option<FanOut<'a>>,
    /// For a range job: the parts it uploads.
    pub range: Option<&'a RangeJob>,
    /// Where the bytes of each part uploaded are added as it lands (read by the handler when it
    /// stops the job at the cut-off).
    pub progress: Option<&'a std::sync::atomic::AtomicU64>,
}

/// Sends range jobs to the task queue.
pub trait RangeSender: Sync {
    /// Sends one message per range job (each carrying the job's message and its range).
    fn send<'a>(&'a self, ranges: &'a [RangeJob]) -> BoxFuture<'a, Result<(), String>>;
}

/// How a new copy of a large object fans out to range jobs.
#[derive(Clone, Copy)]
pub struct FanOut<'a> {
    /// Objects larger than this are split.
    pub threshold: u64,
    /// Bytes per range job (whole parts; at least one).
    pub range_bytes: u64,
    /// Where range jobs go.
    pub sender: &'a dyn RangeSender,
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
        to: &SaveTo,
        target: &Checkpoint,
        parts: &mut [DonePart],
    ) -> Result<(), Failure> {
        parts.sort_by_key(|p| p.number);
        let (key, body) = match to {
            SaveTo::Checkpoint(key) => {
                let cp = Checkpoint {
                    updated_at: now_text(),
                    parts: parts.to_vec(),
                    ..target.clone()
                };
                (key, cp.to_bytes())
            }
            SaveTo::Range(key, first, last) => {
                let r = RangeRecord {
                    version: CHECKPOINT_VERSION,
                    upload_id: target.upload_id.clone(),
                    first: *first,
                    last: *last,
                    updated_at: now_text(),
                    parts: parts.to_vec(),
                };
                (
                    key,
                    Bytes::from(serde_json::to_vec_pretty(&r).unwrap_or_default()),
                )
            }
        };
        self.resume
            .store
            .save(key, body)
            .await
            .map_err(Failure::Checkpoint)
    }

    async fn discard(&self, key: &str, cp: &Checkpoint) -> Result<(), Failure> {
        discard(self.resume.store, self.dest, key, cp).await
    }

    async fn forget(&self, key: &str, cp: &Checkpoint) -> Result<(), Failure> {
        forget(self.resume.store, key, cp).await
    }

    async fn load(&self, key: &str) -> Result<Option<Checkpoint>, Failure> {
        load(self.resume.store, key).await
    }

    /// Whether the version this job holds is still the source's, so that `cp`, a copy in
    /// progress pinned to another version, is of an older one and may be discarded. The job's
    /// HEAD may predate the copy: a newer version written since, whose job began the copy (and
    /// may have fanned it out, its message acknowledged), must not be discarded by a job holding
    /// the version it replaced, so the source is read again.
    async fn holds_latest(&self, cp: &Checkpoint) -> Result<bool, Failure> {
        if cp.dest_key != self.dest_key {
            return Ok(true);
        }
        let now = self
            .source
            .head(self.source_key)
            .await
            .map_err(Failure::Source)?;
        Ok(now.is_some_and(|now| {
            let fingerprint = crate::sync::metadata::metadata_fingerprint(&now.metadata);
            now.etag == self.head.etag
                && now.size == self.head.size
                && now.version_id == self.head.version_id
                && fingerprint == self.fingerprint
                && !cp.pinned_to(&now, &fingerprint)
        }))
    }

    /// The checkpoint to continue from and the parts still to upload, or a new upload (with its
    /// ranges, when it fans out).
    async fn start(&self, key: &str) -> Result<Start, Failure> {
        // Two jobs may start a copy of the key at once: the checkpoint is created only if absent,
        // and the job that finds one there gives up its upload and continues the other's.
        let mut tries = 0;
        loop {
            tries += 1;
            match self.start_once(key).await? {
                Some(start) => return Ok(start),
                None if tries < 3 => continue,
                None => {
                    return Err(Failure::Checkpoint(SourceError::Transport {
                        op: "PutObject",
                        key: key.to_owned(),
                        source: "another copy of this key kept starting at the same time".into(),
                        transient: true,
                    }))
                }
            }
        }
    }

    /// One try of [`Self::start`]: `None` when another job created the checkpoint first.
    async fn start_once(&self, key: &str) -> Result<Option<Start>, Failure> {
        if let Some(cp) = self.load(key).await? {
            if cp.dest_key == self.dest_key && cp.pinned_to(self.head, self.fingerprint) {
                match self.dest.list_parts(&cp.dest_key, &cp.upload_id).await {
                    Ok(Some(_)) if !cp.ranges.is_empty() => {
                        return Ok(Some(Start::FannedOut(cp, false)))
                    }
                    Ok(Some(listed)) => {
                        let (kept, todo) = plan_resume(&cp, &listed);
                        let landed = landed_unrecorded(&cp, &listed, &todo);
                        tracing::info!(
                            key = cp.dest_key,
                            upload_id = cp.upload_id,
                            kept = kept.len(),
                            todo = todo.len(),
                            to_verify = landed.len(),
                            "resuming a copy"
                        );
                        let cp = Checkpoint { parts: kept, ..cp };
                        return Ok(Some(Start::Parts(cp, todo, landed)));
                    }
                    // The upload is gone (completed by another job, aborted, swept).
                    Ok(None) => self.forget(key, &cp).await?,
                    Err(e) => return Err(Failure::Dest(e)),
                }
            } else if self.holds_latest(&cp).await? {
                self.discard(key, &cp).await?;
            } else {
                return Ok(Some(Start::Stale));
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
        let mut cp = Checkpoint {
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
            ranges: Vec::new(),
        };
        if let Some(f) = self.fan_out.filter(|f| self.head.size > f.threshold) {
            let per_range = (f.range_bytes / part_size).max(1) as u32;
            cp.ranges = split_ranges(cp.parts_total(), per_range);
        }
        match self.resume.store.create(key, cp.to_bytes()).await {
            Ok(true) => {}
            created => {
                // Without its checkpoint nobody would find the upload again.
                let _ = self.dest.abort(&cp.dest_key, &cp.upload_id).await;
                return match created {
                    Ok(_) => Ok(None),
                    Err(e) => Err(Failure::Checkpoint(e)),
                };
            }
        }
        if !cp.ranges.is_empty() {
            return Ok(Some(Start::FannedOut(cp, true)));
        }
        let todo = (1..=cp.parts_total()).collect();
        Ok(Some(Start::Parts(cp, todo, BTreeMap::new())))
    }

    /// Sends the range jobs of a fanned-out copy whose range is not uploaded: all of them for a
    /// new one; for one found, only if they are not known to be sent (the note at [`sent_key`]
    /// is written once they are). A copy whose initiator failed or was killed before it had sent
    /// them all is so carried on by the next job that finds it, whatever its message: the
    /// initiator's own chain may end without another look (a marker may settle its event). A
    /// job that finds the copy between its creation and that write sends them again: a range
    /// job sent twice costs a duplicate upload of its parts, never a wrong object. (A duplicate
    /// event of a copy whose range jobs were sent sends nothing: they carry it.)
    async fn fan_out(&self, key: &str, cp: Checkpoint, fresh: bool) -> Ended {
        let Some(f) = self.fan_out else {
            return Ended::Failed(Failure::NotQueued(
                "a copy split into range jobs, but this job cannot send them".into(),
            ));
        };
        let quiet = Ended::FannedOut {
            ranges: cp.ranges.len(),
            sent: 0,
            upload_id: cp.upload_id.clone(),
        };
        let sent_at = sent_key(key, &cp.upload_id);
        if !fresh {
            // The initiator notes the range jobs sent right after sending them: a job that finds
            // the copy in between (a duplicate event delivered at once to another instance)
            // waits a little for the note rather than sending every range job again, and sends
            // them itself only if the note does not come (the initiator failed or was killed).
            let mut waits = 0;
            loop {
                let note = match waits {
                    0 => self.resume.store.load(&sent_at).await,
                    _ => self.resume.store.load_after(&sent_at, SENT_NOTE_WAIT).await,
                };
                match note {
                    Ok(Some(_)) => return quiet,
                    Ok(None) => {}
                    Err(e) => return Ended::Failed(Failure::Checkpoint(e)),
                }
                let next = Instant::now() + SENT_NOTE_WAIT;
                if waits == SENT_NOTE_WAITS || self.stop_at.is_some_and(|stop| next >= stop) {
                    break;
                }
                waits += 1;
            }
        }
        let records = match self.range_records(key, &cp).await {
            Ok(r) => r,
            Err(e) => return Ended::Failed(e),
        };
        let jobs: Vec<RangeJob> = cp
            .ranges
            .iter()
            .zip(&records)
            .filter(|(_, r)| !r.as_ref().is_some_and(RangeRecord::complete))
            .map(|([first, last], _)| RangeJob {
                first: *first,
                last: *last,
                upload_id: cp.upload_id.clone(),
            })
            .collect();
        if let Err(why) = f.sender.send(&jobs).await {
            return Ended::Failed(Failure::NotQueued(format!(
                "the range jobs could not be sent: {why}"
            )));
        }
        tracing::info!(
            key = cp.dest_key,
            upload_id = cp.upload_id,
            ranges = cp.ranges.len(),
            sent = jobs.len(),
            "copy fanned out to range jobs"
        );
        let note = Bytes::from(cp.upload_id.clone());
        if let Err(e) = self.resume.store.save(&sent_at, note).await {
            // Sent all the same; the next job that finds the copy sends them again.
            tracing::warn!(checkpoint = key, error = ?e, "could not note that the range jobs were sent");
        }
        Ended::FannedOut {
            ranges: cp.ranges.len(),
            sent: jobs.len(),
            upload_id: cp.upload_id.clone(),
        }
    }

    /// Each range's record (`None` where there is none yet, or it is for another upload).
    async fn range_records(
        &self,
        key: &str,
        cp: &Checkpoint,
    ) -> Result<Vec<Option<RangeRecord>>, Failure> {
        let mut out = Vec::with_capacity(cp.ranges.len());
        for [first, last] in &cp.ranges {
            let body = self
                .resume
                .store
                .load(&range_record_key(key, &cp.upload_id, *first, *last))
                .await
                .map_err(Failure::Checkpoint)?;
            out.push(
                body.and_then(|b| serde_json::from_slice::<RangeRecord>(&b).ok())
                    .filter(|r| r.upload_id == cp.upload_id),
            );
        }
        Ok(out)
    }

    /// Reads part `number` of the pinned version and uploads it; returns it as done.
    /// Reads part `number` (pinned) and uploads it, unless `landed` is the ETag of a part OSS
    /// already holds for it and that ETag is the MD5 of the bytes read: then the part is kept as
    /// it is. Says whether the part was sent.
    async fn part(
        &self,
        cp: &Checkpoint,
        number: u32,
        landed: Option<&String>,
    ) -> Result<(DonePart, bool), PartError> {
        let (start, len) = cp.range(number);
        let _memory = self.plan.budget.acquire(len).await;
        let mut attempt = 1;
        let data = loop {
            match self.read_range(cp, start, len).await {
                Ok(d) => break d,
                Err(PartError::Source(e)) if e.is_transient() && attempt < PART_READ_ATTEMPTS => {
                    tracing::warn!(key = self.source_key, number, attempt, error = %crate::errors::error_chain(&e), "part read failed; reading it again");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let crc = crc64(&data);
        let done = |etag| DonePart {
            number,
            size: len,
            etag,
            crc64: format!("{crc:016x}"),
        };
        if let Some(etag) = landed.filter(|etag| etag_is_md5_of(etag, &data)) {
            tracing::info!(
                key = cp.dest_key,
                number,
                "part already on OSS with the source's bytes (its ETag is their MD5); kept, not sent again"
            );
            return Ok((done(etag.clone()), false));
        }
        let etag = self
            .dest
            .upload_part(&cp.dest_key, &cp.upload_id, number, data, crc)
            .await
            .map_err(PartError::Dest)?;
        Ok((done(etag), true))
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
                    source: Box::new(crate::errors::Context::new(
                        format!("reading bytes {start}-{}", start + len - 1),
                        e,
                    )),
                    transient: true,
                })
            })?;
            if (buf.len() + chunk.len()) as u64 > len {
                return Err(PartError::Source(SourceError::Transport {
                    op: "GetObject",
                    key: self.source_key.to_owned(),
                    source: format!("the range at {start} gave more than {len} bytes").into(),
                    transient: true,
                }));
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() as u64 != len {
            return Err(PartError::Source(SourceError::Transport {
                op: "GetObject",
                key: self.source_key.to_owned(),
                source: format!("the range at {start} gave {} of {len} bytes", buf.len()).into(),
                transient: true,
            }));
        }
        Ok(buf.freeze())
    }

    /// Reads and uploads the parts `todo` into `parts`, saving to `to` at most every
    /// [`SAVE_EVERY`] and at the end, until they are done, the stop time, a failure, or the
    /// source moving.
    async fn upload_parts(
        &self,
        target: &Checkpoint,
        todo: Vec<u32>,
        landed: &BTreeMap<u32, String>,
        parts: &mut Vec<DonePart>,
        to: &SaveTo,
    ) -> Run {
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
        let mut dropped = 0u32;
        let mut started = 0u32;
        loop {
            while running.len() < in_flight && failure.is_none() {
                let Some(&n) = todo.front() else { break };
                if let Some(stop) = self.stop_at {
                    let needs = slowest.max(paced).map(|d| d.mul_f64(1.25));
                    let now = Instant::now();
                    // One part is tried in every run that has time at all, whatever the pace
                    // says: a pace measured under load must not stop a copy for good.
                    if now + needs.unwrap_or_default() > stop && (started > 0 || now >= stop) {
                        stopped = true;
                        break;
                    }
                }
                started += 1;
                todo.pop_front();
                running.push(async move {
                    let began = Instant::now();
                    (self.part(target, n, landed.get(&n)).await, began.elapsed())
                });
            }
            if running.is_empty() {
                break;
            }
            let next = match self.drop_at.or(self.stop_at) {
                Some(at) => tokio::select! {
                    r = running.next() => r,
                    () = tokio::time::sleep_until(at) => None,
                },
                None => running.next().await,
            };
            let Some((result, took)) = next else {
                // The stop time: parts still running are dropped (in doubt next time).
                stopped = true;
                dropped = running.len() as u32;
                break;
            };
            match result {
                Ok((done, sent)) => {
                    moved += done.size;
                    if sent {
                        if let Some(p) = self.progress {
                            p.fetch_add(done.size, std::sync::atomic::Ordering::Relaxed);
                        }
                        self.plan.pace.observe(done.size, target.part_size, took);
                        slowest = Some(slowest.map_or(took, |s| s.max(took)));
                    }
                    parts.push(done);
                    dirty = true;
                }
                Err(PartError::Moved) => return Run::Moved,
                // The parts in flight may finish; no new one starts.
                Err(PartError::Source(e)) => failure = failure.or(Some(Failure::Source(e))),
                Err(PartError::Dest(e)) => failure = failure.or(Some(Failure::Dest(e))),
            }
            if dirty && last_save.elapsed() >= SAVE_EVERY && failure.is_none() {
                if let Err(f) = self.save(to, target, parts).await {
                    return Run::Failed(f);
                }
                (last_save, dirty) = (Instant::now(), false);
            }
        }
        drop(running);
        if dirty {
            if let Err(f) = self.save(to, target, parts).await {
                return Run::Failed(failure.unwrap_or(f));
            }
        }
        match failure {
            Some(f) => Run::Failed(f),
            None if stopped || !todo.is_empty() => Run::Stopped { moved, dropped },
            None => Run::Done(moved),
        }
    }

    /// Whether the completion may start now: before `complete_by`, and with the slowest finish
    /// this process has seen (half again) fitting before the drop time. Otherwise the run
    /// pauses with every part done, and the next delivery completes at once.
    fn may_finish(&self) -> bool {
        let now = Instant::now();
        let fits = match (self.drop_at, self.plan.pace.expect_finish()) {
            (Some(at), Some(finish)) => now + finish.mul_f64(1.5) <= at,
            _ => true,
        };
        fits && self.complete_by.is_none_or(|by| now < by)
    }

    /// Completes the upload from `parts` (all of them), the write-ahead first; then forgets the
    /// copy's checkpoint. A completion that ends well teaches the process's [`PartPace`] how
    /// long a finish takes.
    async fn finish(
        &self,
        key: &str,
        target: &Checkpoint,
        parts: &mut [DonePart],
        moved: u64,
        before_complete: impl std::future::Future<Output = Result<(), String>>,
    ) -> Ended {
        parts.sort_by_key(|p| p.number);
        let whole = parts.iter().fold(0, |acc, p| {
            crc64_combine(acc, p.crc().unwrap_or_default(), p.size)
        });
        let began = Instant::now();
        if let Err(why) = before_complete.await {
            return Ended::Failed(Failure::NotQueued(why));
        }
        let etags: Vec<(u32, String)> = parts.iter().map(|p| (p.number, p.etag.clone())).collect();
        let outcome = match self
            .dest
            .complete(&target.dest_key, &target.upload_id, &etags, whole)
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                // Another job may have completed the same upload (the same bytes) first.
                match self.dest.head(&target.dest_key).await {
                    Ok(Some(h)) if h.crc64 == Some(whole) && h.size == target.size => {
                        UploadOutcome {
                            etag: h.etag,
                            crc64: whole,
                            requests: 1,
                            parts: parts.len() as u32,
                            request_id: h.request_id,
                        }
                    }
                    _ => return Ended::Failed(Failure::Dest(e)),
                }
            }
        };
        self.plan.pace.observe_finish(began.elapsed());
        if let Err(e) = self.forget(key, target).await {
            // Found again later: its upload is gone, so it is removed then.
            tracing::warn!(checkpoint = key, error = ?e, "could not remove a finished copy's checkpoint");
        }
        Ended::Complete { outcome, moved }
    }

    /// Runs the copy until it is complete, paused at the stop time, fanned out, or failed.
    /// `before_complete` runs just before the completion (the write-ahead: the completion is the
    /// only request that changes the destination key); its error ends the run with the parts
    /// kept.
    pub async fn run(
        &self,
        before_complete: impl std::future::Future<Output = Result<(), String>>,
    ) -> Ended {
        let key = self.key();
        if let Some(range) = self.range {
            return self.run_range(&key, range, before_complete).await;
        }
        let (cp, todo, landed) = match self.start(&key).await {
            Ok(Start::Parts(cp, todo, landed)) => (cp, todo, landed),
            Ok(Start::FannedOut(cp, fresh)) => return self.fan_out(&key, cp, fresh).await,
            Ok(Start::Stale) => return Ended::StartOver,
            Err(f) => return Ended::Failed(f),
        };
        let target = Checkpoint {
            parts: Vec::new(),
            ..cp.clone()
        };
        let mut parts = cp.parts;
        let to = SaveTo::Checkpoint(key.clone());
        let moved = match self
            .upload_parts(&target, todo, &landed, &mut parts, &to)
            .await
        {
            Run::Done(moved) => moved,
            Run::Stopped { moved, dropped } => return self.paused(&target, &parts, moved, dropped),
            Run::Moved => return self.moved(&key, &target).await,
            Run::Failed(f) => return Ended::Failed(f),
        };
        if !self.may_finish() {
            return self.paused(&target, &parts, moved, 0);
        }
        self.finish(&key, &target, &mut parts, moved, before_complete)
            .await
    }

    fn paused(&self, target: &Checkpoint, parts: &[DonePart], moved: u64, dropped: u32) -> Ended {
        Ended::Paused {
            done: parts.iter().map(|p| p.size).sum(),
            parts_done: parts.len() as u32,
            parts_total: target.parts_total(),
            moved,
            upload_id: target.upload_id.clone(),
            dropped,
        }
    }

    async fn moved(&self, key: &str, target: &Checkpoint) -> Ended {
        match self.discard(key, target).await {
            Ok(()) => Ended::StartOver,
            Err(f) => Ended::Failed(f),
        }
    }

    /// A range job: uploads its parts, then, if every range is uploaded, claims the completion
    /// (a conditional create: exactly one range job completes) and completes the object.
    async fn run_range(
        &self,
        key: &str,
        range: &RangeJob,
        before_complete: impl std::future::Future<Output = Result<(), String>>,
    ) -> Ended {
        let cp = match self.load(key).await {
            Ok(Some(cp)) if cp.upload_id == range.upload_id => cp,
            Ok(_) => {
                return Ended::RangeOver(format!(
                    "upload {} is no longer this key's copy in progress (completed, or replaced by a copy of a newer version)",
                    range.upload_id
                ))
            }
            Err(f) => return Ended::Failed(f),
        };
        if !cp.pinned_to(self.head, self.fingerprint) {
            return match self.discard(key, &cp).await {
                Ok(()) => Ended::RangeOver(
                    "the source changed since the copy began; its upload was aborted, and the new version's event copies it"
                        .into(),
                ),
                Err(f) => Ended::Failed(f),
            };
        }
        let last = range.last.min(cp.parts_total());
        let target = Checkpoint {
            parts: Vec::new(),
            ..cp.clone()
        };
        let record_key = range_record_key(key, &cp.upload_id, range.first, range.last);
        let recorded = match self.resume.store.load(&record_key).await {
            Ok(body) => body
                .and_then(|b| serde_json::from_slice::<RangeRecord>(&b).ok())
                .filter(|r| r.upload_id == cp.upload_id)
                .map(|r| r.parts)
                .unwrap_or_default(),
            Err(e) => return Ended::Failed(Failure::Checkpoint(e)),
        };
        let listed = match self.dest.list_parts(&cp.dest_key, &cp.upload_id).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Ended::RangeOver(format!(
                    "upload {} no longer exists (completed or aborted)",
                    cp.upload_id
                ))
            }
            Err(e) => return Ended::Failed(Failure::Dest(e)),
        };
        let (mut parts, todo) = plan_parts(&cp, &recorded, &listed, range.first..=last);
        let landed = landed_unrecorded(&cp, &listed, &todo);
        let to = SaveTo::Range(record_key, range.first, range.last);
        let moved = match self.upload_parts(&target, todo, &landed, &mut parts, &to).await {
            Run::Done(moved) => moved,
            Run::Stopped { moved, dropped } => {
                return self.paused(&target, &parts, moved, dropped)
            }
            Run::Moved => {
                return match self.discard(key, &target).await {
                    Ok(()) => Ended::RangeOver(
                        "the source changed during the copy; its upload was aborted, and the new version's event copies it"
                            .into(),
                    ),
                    Err(f) => Ended::Failed(f),
                }
            }
            Run::Failed(f) => return Ended::Failed(f),
        };
        // The record says every part of the range is done (upload_parts saved it) before any
        // range job can see every range done.
        let records = match self.range_records(key, &cp).await {
            Ok(r) => r,
            Err(f) => return Ended::Failed(f),
        };
        if !records
            .iter()
            .all(|r| r.as_ref().is_some_and(RangeRecord::complete))
        {
            return Ended::RangeUploaded { moved };
        }
        let claim = Bytes::from(range.attribute());
        let claim_at = claim_key(key, &cp.upload_id);
        let claimed = match self.resume.store.create(&claim_at, claim.clone()).await {
            Ok(true) => true,
            // Already claimed: by this range (its earlier delivery) or by another.
            Ok(false) => match self.resume.store.load(&claim_at).await {
                Ok(Some(b)) => b == claim,
                Ok(None) => false,
                Err(e) => return Ended::Failed(Failure::Checkpoint(e)),
            },
            Err(e) => return Ended::Failed(Failure::Checkpoint(e)),
        };
        if !claimed {
            return Ended::RangeUploaded { moved };
        }
        if !self.may_finish() {
            // The claim is this range's: its next delivery completes.
            return self.paused(&target, &parts, moved, 0);
        }
        let mut all: Vec<DonePart> = records
            .into_iter()
            .flatten()
            .flat_map(|r| r.parts)
            .collect();
        all.sort_by_key(|p| p.number);
        all.dedup_by_key(|p| p.number);
        self.finish(key, &target, &mut all, moved, before_complete)
            .await
    }
}

/// Drops a checkpoint, its range records and its upload (a stale pin, or a source that
/// moved). The checkpoint is removed only if it still names that upload.
async fn discard<D: DestinationStore>(
    store: &dyn CheckpointStore,
    dest: &D,
    key: &str,
    cp: &Checkpoint,
) -> Result<(), Failure> {
    dest.abort(&cp.dest_key, &cp.upload_id)
        .await
        .map_err(Failure::Dest)?;
    tracing::info!(
        key = cp.dest_key,
        upload_id = cp.upload_id,
        "resumable copy discarded: the source is no longer the version it was pinned to"
    );
    forget(store, key, cp).await
}

/// Removes a finished or discarded copy's checkpoint, range records, claim and sent note (if the
/// checkpoint still names its upload: another copy may have replaced it).
async fn forget(store: &dyn CheckpointStore, key: &str, cp: &Checkpoint) -> Result<(), Failure> {
    for [first, last] in &cp.ranges {
        store
            .remove(&range_record_key(key, &cp.upload_id, *first, *last))
            .await
            .map_err(Failure::Checkpoint)?;
    }
    if !cp.ranges.is_empty() {
        for note in [claim_key(key, &cp.upload_id), sent_key(key, &cp.upload_id)] {
            store.remove(&note).await.map_err(Failure::Checkpoint)?;
        }
    }
    let same = load(store, key)
        .await?
        .is_some_and(|c| c.upload_id == cp.upload_id);
    if same {
        store.remove(key).await.map_err(Failure::Checkpoint)?;
    }
    Ok(())
}

/// The checkpoint at `key`, if there is a readable one.
async fn load(store: &dyn CheckpointStore, key: &str) -> Result<Option<Checkpoint>, Failure> {
    let stored = store.load(key).await.map_err(Failure::Checkpoint)?;
    Ok(stored.and_then(|body| match Checkpoint::parse(&body) {
        Ok(cp) => Some(cp),
        Err(why) => {
            tracing::warn!(checkpoint = key, why, "unreadable checkpoint replaced");
            None
        }
    }))
}

/// Gives up a range job's copy: if the copy in progress of `dest_key` is still the upload
/// `upload_id`, the upload is aborted and the checkpoint, range records and claim removed. A
/// range job that will not upload its range (the source is gone, or is a version the copy is
/// not of, or the destination already holds it) calls this before it looks at the key afresh,
/// so that no copy is left that other jobs take to be carried on by range jobs that have ended.
pub async fn give_up_copy<D: DestinationStore>(
    resume: Resume<'_>,
    dest: &D,
    dest_key: &str,
    upload_id: &str,
) -> Result<(), Failure> {
    let key = checkpoint_key(resume.results_prefix, resume.task, dest.bucket(), dest_key);
    match load(resume.store, &key).await? {
        Some(cp) if cp.upload_id == upload_id => discard(resume.store, dest, &key, &cp).await,
        _ => Ok(()),
    }
}

/// Whether the copy in parts of `dest_key` pinned to `head` (whose metadata has fingerprint
/// `fingerprint`), which the destination is known to hold, was completed by a job that could not
/// record it: its checkpoint is still there and its upload is gone. A completion in flight when
/// the invocation's cut-off stopped its job may land after the job was recorded `deferred`; the
/// next job for the key then finds the destination holding the version, and records the copy
/// instead of a skip. The checkpoint (and, for a copy fanned out, its range records, claim and
/// note) is removed. A checkpoint of another version, or whose upload is still open, is left to
/// the copy that owns it.
pub async fn completed_unrecorded<D: DestinationStore>(
    resume: Resume<'_>,
    dest: &D,
    dest_key: &str,
    head: &SourceObject,
    fingerprint: &str,
) -> Result<bool, Failure> {
    let key = checkpoint_key(resume.results_prefix, resume.task, dest.bucket(), dest_key);
    let Some(cp) = load(resume.store, &key).await? else {
        return Ok(false);
    };
    if cp.dest_key != dest_key || !cp.pinned_to(head, fingerprint) {
        return Ok(false);
    }
    match dest.list_parts(&cp.dest_key, &cp.upload_id).await {
        Ok(Some(_)) => Ok(false),
        Ok(None) => {
            tracing::info!(
                key = cp.dest_key,
                upload_id = cp.upload_id,
                "a copy in parts completed by a job stopped at its cut-off: recorded now"
            );
            forget(resume.store, &key, &cp).await?;
            Ok(true)
        }
        Err(e) => Err(Failure::Dest(e)),
    }
}

/// Where a run's progress is saved.
enum SaveTo {
    /// The copy's checkpoint (a copy not fanned out).
    Checkpoint(String),
    /// A range job's record: key, first and last part.
    Range(String, u32, u32),
}

/// How a copy begins.
enum Start {
    /// The parts still to upload, from a new or resumed checkpoint, and those of them OSS may
    /// already hold ([`landed_unrecorded`]).
    Parts(Checkpoint, Vec<u32>, BTreeMap<u32, String>),
    /// A copy fanned out to range jobs: new (its range jobs to send), or found.
    FannedOut(Checkpoint, bool),
    /// The source is no longer the version the job holds (a copy of a newer one is in
    /// progress): the job must read it again.
    Stale,
}

/// How uploading a set of parts ended.
enum Run {
    Done(u64),
    Stopped { moved: u64, dropped: u32 },
    Moved,
    Failed(Failure),
}
