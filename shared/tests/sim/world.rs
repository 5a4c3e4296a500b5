//! The simulated world every actor shares: the S3 source with its versions and sequencers, the
//! OSS destination, the results store, the fault plan, the virtual clock and the trace.

use super::rng::Rng;
use bytes::Bytes;
use md5::{Digest, Md5};
use s3_oss_sync::checksum::crc64_combine;
use s3_oss_sync::event::sequencer_cmp;
use s3_oss_sync::store::object::{ObjectHead, ObjectMetadata};
use s3_oss_sync::store::source::{SourceMetadata, SourceObject};
use s3_oss_sync::sync::metadata::read_marker;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

/// The world, shared by the stores, the writers and the executor.
pub type Shared = Arc<Mutex<World>>;

/// Locks the world (a panic elsewhere does not hide it).
pub fn lock(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// The kinds of store call, for fault rates, scripted faults and the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// S3 HeadObject.
    SourceHead,
    /// S3 GetObject (the request; the body is read in chunks).
    SourceGet,
    /// One chunk of an S3 body.
    SourceBody,
    /// OSS HeadObject.
    DestHead,
    /// OSS PutObject, failing before it commits.
    DestUpload,
    /// OSS PutObject whose answer is lost after it committed.
    DestUploadLost,
    /// OSS DeleteObject.
    DestDelete,
    /// OSS InitiateMultipartUpload (half of the failures after the upload was made).
    DestInitiate,
    /// OSS UploadPart (half of the failures after the part was stored).
    DestPart,
    /// OSS ListParts.
    DestList,
    /// OSS CompleteMultipartUpload, failing before it commits.
    DestComplete,
    /// OSS CompleteMultipartUpload whose answer is lost after it committed.
    DestCompleteLost,
    /// OSS AbortMultipartUpload.
    DestAbort,
    /// The checkpoint store (S3, the results bucket): a read, or a write (half of the failures
    /// after it took effect).
    Checkpoint,
    /// The results store's PutObject.
    Results,
    /// SQS SendMessageBatch of rechecks.
    Recheck,
    /// A user's write to S3, or the operator's event.
    User,
    /// The queue and the Lambda poller.
    Sqs,
    /// An invocation's answer.
    Answer,
}

/// One source version: what S3 holds for a key after a PUT or a CopyObject onto itself.
#[derive(Debug, Clone)]
pub struct Version {
    /// The bytes.
    pub bytes: Bytes,
    /// ETag: the MD5 of the bytes, hex.
    pub etag: String,
    /// Metadata.
    pub meta: SourceMetadata,
    /// The sequencer of the write that made it.
    pub sequencer: String,
}

impl Version {
    /// HEAD's view of it.
    pub fn head(&self) -> SourceObject {
        SourceObject {
            size: self.bytes.len() as u64,
            etag: self.etag.clone(),
            version_id: None,
            tag_count: 0,
            etag_is_md5: true,
            metadata: self.meta.clone(),
        }
    }
}

/// The MD5 of bytes, lower-case hex, as an S3 ETag.
pub fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// A short name for an ETag in traces.
pub fn short(etag: &str) -> &str {
    &etag[..etag.len().min(6)]
}

/// Fault probabilities per store call (0 = never).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// S3 HEAD answers 503.
    pub source_head: f64,
    /// S3 GET answers 503.
    pub source_get: f64,
    /// A body chunk fails (connection reset).
    pub source_body: f64,
    /// OSS HEAD answers 503.
    pub dest_head: f64,
    /// An upload fails before it commits.
    pub dest_upload: f64,
    /// An upload commits, then its answer is lost.
    pub dest_upload_lost: f64,
    /// OSS DELETE answers 503.
    pub dest_delete: f64,
    /// The results store answers 503.
    pub results: f64,
    /// SQS refuses to send rechecks.
    pub recheck: f64,
    /// InitiateMultipartUpload fails.
    pub dest_initiate: f64,
    /// UploadPart fails.
    pub dest_part: f64,
    /// ListParts fails.
    pub dest_list: f64,
    /// CompleteMultipartUpload fails before it commits.
    pub dest_complete: f64,
    /// CompleteMultipartUpload commits, then its answer is lost.
    pub dest_complete_lost: f64,
    /// AbortMultipartUpload fails.
    pub dest_abort: f64,
    /// A checkpoint read or write fails.
    pub checkpoint: f64,
}

impl Faults {
    fn rate(&self, op: Op) -> f64 {
        match op {
            Op::SourceHead => self.source_head,
            Op::SourceGet => self.source_get,
            Op::SourceBody => self.source_body,
            Op::DestHead => self.dest_head,
            Op::DestUpload => self.dest_upload,
            Op::DestUploadLost => self.dest_upload_lost,
            Op::DestDelete => self.dest_delete,
            Op::Results => self.results,
            Op::Recheck => self.recheck,
            Op::DestInitiate => self.dest_initiate,
            Op::DestPart => self.dest_part,
            Op::DestList => self.dest_list,
            Op::DestComplete => self.dest_complete,
            Op::DestCompleteLost => self.dest_complete_lost,
            Op::DestAbort => self.dest_abort,
            Op::Checkpoint => self.checkpoint,
            Op::User | Op::Sqs | Op::Answer => 0.0,
        }
    }
}

/// A destination object: OSS's head (metadata, CRC-64) and bytes.
#[derive(Debug, Clone)]
pub struct DestObject {
    /// What OSS HEAD answers.
    pub head: ObjectHead,
    /// The bytes.
    pub bytes: Bytes,
}

/// A message an invocation sent to the queue (a recheck).
#[derive(Debug, Clone)]
pub struct Sent {
    /// The body.
    pub body: String,
    /// Its message attributes.
    pub attributes: Vec<(String, String)>,
    /// The message it stands for.
    pub of: String,
    /// When it becomes visible.
    pub at: u64,
}

/// One part of an open multipart upload.
#[derive(Debug, Clone)]
pub struct SimPart {
    /// The bytes.
    pub bytes: Bytes,
    /// The ETag OSS gave it (from its content, as OSS's MD5 is).
    pub etag: String,
    /// Its CRC-64, as OSS computed it.
    pub crc: u64,
    /// The invocation that uploaded it.
    pub by: String,
}

/// An open multipart upload.
#[derive(Debug, Clone)]
pub struct OpenUpload {
    /// The destination key.
    pub key: String,
    /// The metadata it was initiated with (the object's, marker included).
    pub metadata: ObjectMetadata,
    /// Parts by number.
    pub parts: BTreeMap<u32, SimPart>,
}

/// What a write sent to a store does when it takes effect.
#[derive(Debug, Clone)]
pub enum Effect {
    /// An OSS PutObject of this object.
    Put(Box<DestObject>),
    /// An OSS DeleteObject.
    Delete,
    /// An OSS UploadPart.
    Part {
        /// The upload.
        upload: String,
        /// Part number.
        number: u32,
        /// The part.
        part: SimPart,
    },
    /// An OSS CompleteMultipartUpload from these `(number, ETag)` parts.
    Complete {
        /// The upload.
        upload: String,
        /// The parts listed.
        parts: Vec<(u32, String)>,
    },
    /// An OSS AbortMultipartUpload.
    Abort {
        /// The upload.
        upload: String,
    },
    /// A checkpoint PutObject.
    CheckpointSave(Bytes),
    /// A checkpoint PutObject with `If-None-Match: *`.
    CheckpointCreate(Bytes),
    /// A checkpoint DeleteObject.
    CheckpointRemove,
}

impl Effect {
    /// Whether it changes a destination object (a PUT, a DELETE or a completion).
    fn writes_object(&self) -> bool {
        matches!(self, Self::Put(_) | Self::Delete | Self::Complete { .. })
    }
}

/// A write a store has received whole: it takes effect even if its sender dies now.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The invocation that sent it.
    pub by: String,
    /// The destination key (the checkpoint's key for checkpoint writes).
    pub key: String,
    /// What it does.
    pub effect: Effect,
}

/// Why a completion did not commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCompleted {
    /// The upload is not open (completed, aborted, or never made).
    NoSuchUpload,
    /// A part listed is not there with that ETag.
    InvalidPart(u32),
}

/// The CRC-64 of a source version's bytes, computed once per process for each.
fn version_crc(bytes: &Bytes) -> u64 {
    static CRCS: std::sync::OnceLock<Mutex<BTreeMap<(usize, usize), u64>>> =
        std::sync::OnceLock::new();
    if bytes.len() <= 4096 {
        return s3_oss_sync::checksum::crc64(bytes);
    }
    // Large bodies are made once per process and kept ([`super::users::big_bytes_of`]), so
    // their address names them.
    let key = (bytes.as_ptr() as usize, bytes.len());
    let mut crcs = CRCS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *crcs
        .entry(key)
        .or_insert_with(|| s3_oss_sync::checksum::crc64(bytes))
}

/// What the resumable copies did in a schedule (counted by the stores).
#[derive(Debug, Clone, Default)]
pub struct ResumeCounts {
    /// Multipart uploads initiated.
    pub initiated: u64,
    /// Parts stored (UploadPart requests that took effect).
    pub parts: u64,
    /// ListParts that found a copy's upload open (not fanned out): resumptions.
    pub resumed: u64,
    /// Parts of completed uploads (not fanned out) that an earlier invocation had uploaded: kept
    /// on resumption.
    pub parts_kept: u64,
    /// Completions that committed.
    pub completed: u64,
    /// Of them, of uploads fanned out to range jobs.
    pub completed_fanned: u64,
    /// Completions that committed after their invocation was gone.
    pub completed_late: u64,
    /// Completions that committed but whose answer was lost.
    pub completed_lost: u64,
    /// Uploads aborted.
    pub aborted: u64,
    /// Checkpoint writes (saves, creates, removes) that took effect.
    pub checkpoint_writes: u64,
    /// Completion claims created (exactly one per fanned-out copy that completes).
    pub claims: u64,
    /// Claims refused because one was there.
    pub claims_refused: u64,
    /// Writes other than object writes (parts, aborts, checkpoint writes) that took effect after
    /// their invocation was gone.
    pub late_other: u64,
}

/// How the destination takes objects in parts, for a schedule (`None` in [`World`]: every copy
/// is a single PutObject).
#[derive(Debug, Clone, Copy)]
pub struct PartSettings {
    /// Objects larger than this are copied in parts.
    pub threshold: u64,
    /// Preferred part size (the copy raises it to OSS's least, 100 KiB).
    pub part_size: u64,
    /// Parts in flight per copy.
    pub in_flight: usize,
}

/// One line of the trace.
#[derive(Debug, Clone)]
pub struct TraceLine {
    /// Virtual time.
    pub now: u64,
    /// Who acted (`user`, `sqs`, an invocation id).
    pub actor: String,
    /// The key concerned, if one.
    pub key: Option<String>,
    /// What kind of step.
    pub op: Op,
    /// What happened.
    pub text: String,
}

/// Everything the actors share.
#[derive(Debug)]
pub struct World {
    /// The schedule's chance.
    pub rng: Rng,
    /// Fault rates.
    pub faults: Faults,
    /// Faults armed by a script: the next call of this kind for this key fails.
    pub armed: Vec<(Op, String)>,
    /// Most `Pending`s before a store call takes effect (each call draws 0..=this).
    pub max_delay: u32,
    /// Bytes per chunk of a source body (each chunk is an await point).
    pub chunk: usize,
    /// Chunks a large body (over 4 KiB: a part of a copy in parts) is read in.
    pub big_reads: usize,
    /// When set, every store call is `Pending` exactly this many times (scripted scenarios).
    pub fixed_delay: Option<u32>,
    /// The S3 source: the current version of each key.
    pub source: BTreeMap<String, Version>,
    /// The last sequencer number given per key (every PUT and DELETE takes the next).
    pub sequencers: BTreeMap<String, u64>,
    /// The OSS destination.
    pub dest: BTreeMap<String, DestObject>,
    /// The results store's objects, in order of writing.
    pub results: Vec<(String, Bytes)>,
    /// Rechecks sent by invocations, for the executor to put on the queue.
    pub outbox: Vec<Sent>,
    /// Messages invocations deleted themselves (handed over to rechecks).
    pub deleted: Vec<String>,
    /// Uploads committed (request ids).
    pub uploads: u64,
    /// Writes sent to OSS and not yet taken effect, by ticket: if their invocation is killed now,
    /// they still land (OSS has the whole request).
    pub in_flight: BTreeMap<u64, InFlight>,
    /// Writes of killed invocations that land later: when, and what.
    pub landing: Vec<(u64, InFlight)>,
    /// The last ticket given.
    pub tickets: u64,
    /// Writes that landed after their invocation was gone.
    pub landed_late: u64,
    /// Who is acting now.
    pub actor: String,
    /// Virtual time (milliseconds).
    pub now: u64,
    /// Whether the trace is kept (schedules run without it, and are replayed with it on failure).
    pub tracing: bool,
    /// The trace.
    pub trace: Vec<TraceLine>,
    /// Broken rules seen while running (a torn copy, a lost wake-up).
    pub violations: Vec<String>,
    /// How the destination takes objects in parts (`None`: it does not).
    pub parts: Option<PartSettings>,
    /// Open multipart uploads, by id.
    pub open_uploads: BTreeMap<String, OpenUpload>,
    /// Uploads whose checkpoint split them into range jobs: their key and ranges.
    pub fanned: BTreeMap<String, (String, Vec<[u32; 2]>)>,
    /// Deliveries of range jobs recorded superseded (by another job for the key in the same
    /// batch) and acknowledged: invocation, message, range.
    pub ranges_superseded: Vec<(String, String, String)>,
    /// The checkpoint store (the results bucket's checkpoint objects).
    pub checkpoints: BTreeMap<String, Bytes>,
    /// The bytes of every source version ever written, by ETag (a completed object must be one).
    pub versions: BTreeMap<String, Bytes>,
    /// What the resumable copies did.
    pub resume: ResumeCounts,
    /// Messages sent to run at once (continuations and range jobs): the invocation that sent it,
    /// the message it stands for, and its range.
    pub immediate: Vec<(String, String, Option<String>)>,
    /// While set, no store call moves on (its await point stays `Pending`): during the first
    /// poll of an invocation after the virtual clock moved, and after a checkpoint call ends in a
    /// poll (see [`Self::hold_after_checkpoints`]). With deadlines, a copy in parts waits in a
    /// `select!` between its parts and its stop time, and tokio picks the branch to poll first
    /// at random: the two must never be ready in the same poll, or a seed would not replay. A
    /// stop time passes only when the clock moves, and then the copy is either waiting in that
    /// `select!` (its first poll is stalled: only the timer can fire) or saving its checkpoint
    /// (the rest of the poll that ends the save is stalled: only the timer can fire).
    pub stalled: Arc<AtomicBool>,
    /// Whether a checkpoint call ending stalls the rest of its poll (schedules with deadlines).
    pub hold_after_checkpoints: bool,
    /// The invocations that initiated or listed a multipart upload (their copies in parts may
    /// wait on a timer).
    pub in_parts: BTreeSet<String>,
}

impl World {
    /// An empty world.
    pub fn new(seed: u64, tracing: bool) -> Self {
        Self {
            rng: Rng::new(seed),
            faults: Faults::default(),
            armed: Vec::new(),
            max_delay: 0,
            chunk: 8,
            big_reads: 4,
            fixed_delay: None,
            source: BTreeMap::new(),
            sequencers: BTreeMap::new(),
            dest: BTreeMap::new(),
            results: Vec::new(),
            outbox: Vec::new(),
            deleted: Vec::new(),
            uploads: 0,
            in_flight: BTreeMap::new(),
            landing: Vec::new(),
            tickets: 0,
            landed_late: 0,
            actor: String::new(),
            now: 0,
            tracing,
            trace: Vec::new(),
            violations: Vec::new(),
            parts: None,
            open_uploads: BTreeMap::new(),
            fanned: BTreeMap::new(),
            ranges_superseded: Vec::new(),
            checkpoints: BTreeMap::new(),
            versions: BTreeMap::new(),
            resume: ResumeCounts::default(),
            immediate: Vec::new(),
            stalled: Arc::default(),
            hold_after_checkpoints: false,
            in_parts: BTreeSet::new(),
        }
    }

    /// Notes an object write (a PUT, or a DELETE for `None`) sent whole by the acting invocation;
    /// its ticket.
    pub fn send_write(&mut self, key: &str, object: Option<DestObject>) -> u64 {
        self.send(
            key,
            object.map_or(Effect::Delete, |o| Effect::Put(Box::new(o))),
        )
    }

    /// Notes a write sent whole by the acting invocation; its ticket.
    pub fn send(&mut self, key: &str, effect: Effect) -> u64 {
        self.tickets += 1;
        let w = InFlight {
            by: self.actor.clone(),
            key: key.to_owned(),
            effect,
        };
        self.in_flight.insert(self.tickets, w);
        self.tickets
    }

    /// The acting invocation's write, taking effect now (its sender lives).
    pub fn arrive(&mut self, ticket: u64) {
        self.in_flight.remove(&ticket);
    }

    /// Invocation `by` is killed: its writes in flight land within `within` virtual seconds.
    pub fn orphan_writes(&mut self, by: &str, within: u64) {
        let tickets: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, w)| w.by == by)
            .map(|(&t, _)| t)
            .collect();
        for t in tickets {
            if let Some(w) = self.in_flight.remove(&t) {
                let at = self.now + self.rng.below(within + 1);
                self.landing.push((at, w));
            }
        }
    }

    /// Applies the orphaned writes whose time has come.
    pub fn land_orphans(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.landing)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.landing = later;
        for (_, w) in due {
            if w.effect.writes_object() {
                self.landed_late += 1;
            } else {
                self.resume.late_other += 1;
            }
            let key = w.key.clone();
            match w.effect {
                Effect::Put(o) => {
                    self.note(Op::DestUpload, Some(&key), || {
                        format!(
                            "OSS PUT commits {} marker {:?} (sent by {} before it was killed)",
                            short(&md5_hex(&o.bytes)),
                            o.head.metadata.user,
                            w.by
                        )
                    });
                    self.dest.insert(key, *o);
                }
                Effect::Delete => {
                    self.note(Op::DestDelete, Some(&key), || {
                        format!("OSS DELETE (sent by {} before it was killed)", w.by)
                    });
                    self.dest.remove(&key);
                }
                Effect::Part {
                    upload,
                    number,
                    part,
                } => {
                    let stored = self.store_part(&upload, number, part).is_ok();
                    self.note(Op::DestPart, Some(&key), || {
                        format!(
                            "OSS UploadPart {number} of {upload} (sent by {} before it was killed): {}",
                            w.by,
                            if stored { "stored" } else { "NoSuchUpload" }
                        )
                    });
                }
                Effect::Complete { upload, parts } => {
                    let done = self.complete_upload(&key, &upload, &parts, &w.by);
                    if done.is_ok() {
                        self.resume.completed_late += 1;
                    }
                    self.note(Op::DestComplete, Some(&key), || match &done {
                        Ok(o) => format!(
                            "OSS completes {upload}: {} marker {:?} (sent by {} before it was killed)",
                            short(&md5_hex(&o.bytes)),
                            o.head.metadata.user,
                            w.by
                        ),
                        Err(e) => format!(
                            "OSS completion of {upload} (sent by {} before it was killed) → {e:?}",
                            w.by
                        ),
                    });
                }
                Effect::Abort { upload } => {
                    let had = self.abort_upload(&upload);
                    self.note(Op::DestAbort, Some(&key), || {
                        format!(
                            "OSS aborts {upload} (open: {had}; sent by {} before it was killed)",
                            w.by
                        )
                    });
                }
                Effect::CheckpointSave(body) => {
                    self.resume.checkpoint_writes += 1;
                    self.note_fanned(&key, &body);
                    self.checkpoints.insert(key, body);
                }
                Effect::CheckpointCreate(body) => {
                    self.create_checkpoint(&key, body);
                }
                Effect::CheckpointRemove => {
                    self.resume.checkpoint_writes += 1;
                    self.checkpoints.remove(&key);
                }
            }
        }
    }

    /// Stores a part in an open upload.
    pub fn store_part(
        &mut self,
        upload: &str,
        number: u32,
        part: SimPart,
    ) -> Result<(), NotCompleted> {
        let open = self
            .open_uploads
            .get_mut(upload)
            .ok_or(NotCompleted::NoSuchUpload)?;
        open.parts.insert(number, part);
        self.resume.parts += 1;
        Ok(())
    }

    /// Commits a multipart upload from `parts` as invocation `by` asked: the object is stored
    /// and the upload closed. Checks that the object is the bytes of the source version its
    /// marker names (a torn copy otherwise).
    pub fn complete_upload(
        &mut self,
        key: &str,
        upload: &str,
        parts: &[(u32, String)],
        by: &str,
    ) -> Result<DestObject, NotCompleted> {
        let open = self
            .open_uploads
            .get(upload)
            .filter(|u| u.key == key)
            .ok_or(NotCompleted::NoSuchUpload)?;
        let mut chosen: Vec<&SimPart> = Vec::with_capacity(parts.len());
        for (n, etag) in parts {
            match open.parts.get(n) {
                Some(p) if p.etag.trim_matches('"') == etag.trim_matches('"') => chosen.push(p),
                _ => return Err(NotCompleted::InvalidPart(*n)),
            }
        }
        let fanned = self.fanned.contains_key(upload);
        let kept = chosen.iter().filter(|p| p.by != by).count() as u64;
        let mut metadata = open.metadata.clone();
        metadata.tagging = None;
        // The bytes of the version the marker names, when the parts are exactly those (the
        // object then shares them, and their CRC-64 is computed once per version).
        let named = metadata
            .user
            .iter()
            .find(|(k, _)| k == s3_oss_sync::sync::metadata::MARKER_ETAG)
            .and_then(|(_, etag)| self.versions.get(etag.trim_matches('"')))
            .filter(|v| {
                let mut at = 0;
                chosen.iter().all(|p| {
                    let end = at + p.bytes.len();
                    let same = v.get(at..end) == Some(&p.bytes[..]);
                    at = end;
                    same
                }) && at == v.len()
            })
            .cloned();
        let (bytes, crc) = match &named {
            Some(v) => (v.clone(), version_crc(v)),
            None => {
                let mut bytes = Vec::with_capacity(chosen.iter().map(|p| p.bytes.len()).sum());
                let mut crc = 0;
                for p in &chosen {
                    bytes.extend_from_slice(&p.bytes);
                    crc = crc64_combine(crc, p.crc, p.bytes.len() as u64);
                }
                (Bytes::from(bytes), crc)
            }
        };
        self.uploads += 1;
        let object = DestObject {
            head: ObjectHead {
                size: bytes.len() as u64,
                etag: format!("\"{crc:016X}-{}\"", parts.len()),
                crc64: Some(crc),
                last_modified: None,
                object_type: Some("Multipart".into()),
                tagging_count: 0,
                metadata,
                request_id: format!("sim-{}", self.uploads),
            },
            bytes,
        };
        self.open_uploads.remove(upload);
        self.resume.completed += 1;
        if fanned {
            self.resume.completed_fanned += 1;
        } else {
            self.resume.parts_kept += kept;
        }
        if named.is_none() {
            self.violations.push(format!(
                "{key}: upload {upload} completed {} bytes that are not the source version its marker names ({:?}): a torn copy",
                object.bytes.len(),
                read_marker(&object.head).map(|m| m.etag)
            ));
        }
        self.dest.insert(key.to_owned(), object.clone());
        Ok(object)
    }

    /// Aborts an upload; whether it was open.
    pub fn abort_upload(&mut self, upload: &str) -> bool {
        let had = self.open_uploads.remove(upload).is_some();
        if had {
            self.resume.aborted += 1;
        }
        had
    }

    /// Notes a checkpoint that splits its upload into range jobs.
    pub fn note_fanned(&mut self, key: &str, body: &Bytes) {
        if key.contains(".range-") || key.contains(".claim-") || key.contains(".sent-") {
            return;
        }
        // Only a checkpoint with ranges names them (an empty list is left out).
        if !body.windows(8).any(|w| w == b"\"ranges\"") {
            return;
        }
        if let Ok(cp) = s3_oss_sync::sync::resume::Checkpoint::parse(body) {
            if !cp.ranges.is_empty() {
                self.fanned.insert(cp.upload_id, (cp.dest_key, cp.ranges));
            }
        }
    }

    /// A conditional create (`If-None-Match: *`): whether it created the object.
    pub fn create_checkpoint(&mut self, key: &str, body: Bytes) -> bool {
        let claim = key.contains(".claim-");
        if self.checkpoints.contains_key(key) {
            if claim {
                self.resume.claims_refused += 1;
            }
            return false;
        }
        self.resume.checkpoint_writes += 1;
        if claim {
            self.resume.claims += 1;
        }
        self.note_fanned(key, &body);
        self.checkpoints.insert(key.to_owned(), body);
        true
    }

    /// What went wrong with the fanned-out copies of `key` (for a failure's description): range
    /// jobs superseded in a batch and acknowledged, and ranges whose jobs were never sent.
    pub fn fan_out_findings(&self, key: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        for (upload, (dest_key, ranges)) in &self.fanned {
            if key.is_some_and(|k| k != dest_key) {
                continue;
            }
            let sent: Vec<String> = ranges
                .iter()
                .filter(|[first, last]| {
                    let attr = format!("{first}-{last} {upload}");
                    self.immediate
                        .iter()
                        .any(|(_, _, r)| r.as_deref() == Some(attr.as_str()))
                })
                .map(|[first, last]| format!("{first}-{last}"))
                .collect();
            if sent.len() < ranges.len() {
                out.push(format!(
                    "{dest_key}: upload {upload} was split into ranges {ranges:?}, but only the range jobs {sent:?} were ever sent"
                ));
            }
            for (by, m, range) in &self.ranges_superseded {
                if range.ends_with(&format!(" {upload}")) {
                    out.push(format!(
                        "{dest_key}: {by} acknowledged the range job {m} of range {range} without uploading it"
                    ));
                }
            }
        }
        out
    }

    /// Into the shared handle.
    pub fn shared(self) -> Shared {
        Arc::new(Mutex::new(self))
    }

    /// Adds a trace line (the text is built only when tracing).
    pub fn note(&mut self, op: Op, key: Option<&str>, text: impl FnOnce() -> String) {
        if self.tracing {
            self.trace.push(TraceLine {
                now: self.now,
                actor: self.actor.clone(),
                key: key.map(str::to_owned),
                op,
                text: text(),
            });
        }
    }

    /// How many times the next store call is `Pending`.
    pub fn delay(&mut self) -> u32 {
        match self.fixed_delay {
            Some(n) => n,
            None => self.rng.below(u64::from(self.max_delay) + 1) as u32,
        }
    }

    /// Whether this call of `op` on `key` fails: a scripted fault, or chance.
    pub fn fault(&mut self, op: Op, key: &str) -> bool {
        if let Some(i) = self.armed.iter().position(|(o, k)| *o == op && k == key) {
            self.armed.remove(i);
            return true;
        }
        let p = self.faults.rate(op);
        self.rng.chance(p)
    }

    /// The next sequencer for a key: per key and increasing, upper-case hex as S3 writes it,
    /// sometimes without its trailing zeros (S3's lengths vary; they compare right-padded).
    pub fn next_sequencer(&mut self, key: &str) -> String {
        let start = 0x0055_AED6_DCD9_0000 + self.rng.below(1 << 12) * 0x100;
        let n = self.sequencers.entry(key.to_owned()).or_insert(start);
        *n += 1 + self.rng.below(3) * 0x10;
        let n = *n;
        let full = format!("{n:016X}");
        let s = if self.rng.chance(0.3) {
            full.trim_end_matches('0').to_owned()
        } else {
            full
        };
        let before = format!("{:016X}", n - 1);
        assert_eq!(
            sequencer_cmp(&s, &before),
            std::cmp::Ordering::Greater,
            "the model's sequencers must increase per key as S3's do"
        );
        s
    }
}
