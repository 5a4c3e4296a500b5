//! The simulated world every actor shares: the S3 source with its versions and sequencers, the
//! OSS destination, the results store, the fault plan, the virtual clock and the trace.

use super::rng::Rng;
use bytes::Bytes;
pub use s3_oss_sync::checksum::md5_hex;
use s3_oss_sync::event::sequencer_cmp;
use s3_oss_sync::store::object::{ObjectHead, ObjectMetadata};
use s3_oss_sync::store::source::{SourceMetadata, SourceObject};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

mod uploads;
mod writes;

pub use uploads::ResumeCounts;

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
