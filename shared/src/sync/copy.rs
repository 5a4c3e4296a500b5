//! The convergent copy: the job for an event is "make the destination match the source now".
//! The decisions are pure functions in [`crate::sync::decide`]; this module reads, writes, and follows
//! them.
//!
//! ## The protocol
//! 1. HEAD the destination. Its sync marker (the source ETag, size and metadata fingerprint of the
//!    version it holds, and the sequencer and SQS message of the event it was written for) may
//!    settle the event at once ([`decide::settled_by_marker`]). Not for the first delivery of a
//!    small object's creation ([`decide::reads_dest_first`]), which a marker almost never settles:
//!    it goes to step 2 with no marker, and reads the destination only if the source turns out
//!    gone or too large for one PUT. Skipping a skip is always safe (see below).
//! 2. A round observes the source and acts. When the destination holds a marked copy, a source HEAD
//!    first: if the copy is of the current version (ETag, size, metadata fingerprint), skip.
//!    Otherwise a GET, whose body is the copy's body; every later read of that copy is pinned to
//!    its ETag (`If-Match`), so a copy is never torn across two versions. An object above the
//!    destination's multipart threshold is copied in parts instead, each read by a ranged GET
//!    pinned the same way, with progress that outlives the invocation ([`crate::sync::resume`]); its
//!    only write to the key is the completion.
//! 3. After a copy, a source HEAD confirms the source is still the version copied. If it is not, a
//!    slower job for an older version may have written over a faster job's newer copy, so another
//!    round runs (bounded by `max_rounds`, then a transient failure). A delete is confirmed the same
//!    way. The destination is changed destructively only after a GET said `NoSuchKey`, never on a
//!    bare 404 from HEAD (which a missing bucket also gives).
//!
//! ## Why it converges
//! Claim: once every message has been handled and acknowledged, the destination equals the
//! source's final state. Every write (copy or delete) of a job happens before its confirmation,
//! and a job's message is acknowledged only after its confirmation succeeded (a failed, killed or
//! cut-off job's message is delivered again). So a write that is not the current version when the
//! queue drains would need a confirmation that saw the source unchanged after the write: then the
//! source changed later, and that change's own event is delivered after it, and its job reads the
//! source. What remains is that no *skip* ends a message while its key is wrong with nothing
//! pending to repair it. A skip happens in three places:
//! - The source said the destination holds its current version (step 2): true at that instant;
//!   any later change of the source brings its own event, and any later write by a slower job is
//!   that job's to confirm.
//! - The marker's sequencer is strictly above the event's: the marked copy was written for a later
//!   event, so its bytes are at least that new and this event's version is history. If that copy is
//!   itself stale, the job that wrote it has not confirmed it, so its message is still pending.
//! - The marker has the event's own sequencer, ETag and size, written by a message this job does
//!   not answer for (an S3 duplicate delivered in another message): the writer's message is pending
//!   until its write is confirmed. A job never trusts a marker written by its own message or by a
//!   message acknowledged with it (the same batch), because that write may be the unconfirmed one:
//!   this was the permanent divergence of an earlier version, which trusted any marker whose
//!   sequencer was not below the event's.
//!
//! One more case is not covered by "its message is still pending": SQS may hand the same message
//! to two invocations at once (a second receive while the first still runs, or Lambda's poller
//! invoking one batch twice, both with the same receive count), and one may acknowledge it while
//! the other's write is still to land; if that other is then killed before it checks, nothing
//! brings the key back. So **every write leaves a recheck first**: before a job's first write (a
//! copy or a delete), the handler sends the job's message again as a recheck ([`crate::sync::recheck`],
//! through [`WriteAhead`]), delayed until the writing invocation is surely over (an invocation
//! ends by its deadline: the function's timeout, the batching window and slack). If it cannot be
//! sent, the job writes nothing and fails, and the message comes again. The recheck stands for
//! the message: it trusts no marker written for it, reads the source, and repairs a stale write
//! (leaving its own recheck first). Now take the last write to land on a key: its recheck runs
//! after its writer is gone, sees that write's marker (no later write landed), does not trust it,
//! and finds or makes the source's state, unless it fails for good and ends in the DLQ, where the
//! guarantee becomes the operator's redrive (a redriven message is a recheck of the same message).
//!
//! Besides, a later delivery of a message (receive count above 1) does not work on it while an
//! earlier delivery may still be running: it hands the events to a recheck delayed the same way
//! and acknowledges without writing, so two deliveries do not copy the same object at once. A
//! chain of such hand-overs ends at `maxReceiveCount` deliveries: the rest are worked on in place
//! and end in the DLQ if they keep failing. And a job that wrote, or may have written, checks the
//! source up to [`CONFIRM_ATTEMPTS`] times and repairs a stale write itself, so a recheck rarely
//! has work to do.
//!
//! A copy in parts fits the argument: its completion is its write (the write-ahead is left just
//! before it), the parts before it change nothing a reader sees, and the message that initiated
//! its upload (named in the object's marker) stays pending, through continuations and range jobs,
//! until the completed object has been checked ([`crate::sync::resume`]).
//!
//! Cost: one delayed SQS message per message that writes, and a source and a destination HEAD per
//! key when it comes back; nothing for events that skip.
//!
//! The argument is checked by a seeded simulation (`shared/tests/simulation.rs`) that interleaves
//! jobs at every await point with failures, kills and redeliveries.

use crate::errors::error_chain;
use crate::oss;
use crate::outcome::OutcomeKind;
use crate::store::destination::DestinationStore;
use crate::store::object::ByteStream;
use crate::store::source::{SourceError, SourceObject, SourceStore};
use crate::store::upload::{BodySource, PartPlan, UploadRequest};
use crate::sync::decide::{self, Next, WhenGone};
pub use crate::sync::decide::{Job, JobKind};
use crate::sync::metadata::{map_metadata, metadata_fingerprint, read_marker, Marker, WrittenFor};
use crate::sync::resume::{
    self, Ended, Failure, FanOut, RangeJob, RangeSender, ResumableCopy, Resume,
};
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How copies are made.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Whether deletes are synced (otherwise removal events are ignored).
    pub sync_deletes: bool,
    /// Whether tags are copied (one more source request when an object has tags).
    pub sync_tags: bool,
    /// S3 storage class → OSS storage class.
    pub storage_classes: Vec<(String, String)>,
    /// Rounds before giving up on a source that keeps changing.
    pub max_rounds: u32,
    /// Objects larger than this are copied by range jobs on several function instances
    /// ([`crate::sync::resume`]); `None` copies each object in one job.
    pub fan_out_threshold: Option<u64>,
    /// Bytes per range job when a copy fans out.
    pub fan_out_range: u64,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            sync_deletes: false,
            sync_tags: false,
            storage_classes: Vec::new(),
            max_rounds: 3,
            fan_out_threshold: None,
            fan_out_range: 1 << 30,
        }
    }
}

/// How long a job has: the invocation's cut-off, and the copy rate to expect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No work starts after this instant, and copies that could not finish by then do not start.
    pub cutoff: Option<tokio::time::Instant>,
    /// Bytes per second a copy is expected to move (what this process has seen).
    pub bytes_per_sec: f64,
}

impl Limits {
    /// No cut-off.
    pub fn none() -> Self {
        Self {
            cutoff: None,
            bytes_per_sec: 0.0,
        }
    }

    fn left(&self) -> Option<Duration> {
        self.cutoff
            .map(|c| c.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// When a copy in parts stops starting parts and saves its checkpoint: before the cut-off by
    /// a tenth of the time left (at least 50 ms, at most 2 s), kept for that save.
    fn stop_parts_at(&self) -> Option<tokio::time::Instant> {
        self.before_cutoff(10, Duration::from_millis(50), Duration::from_secs(2))
    }

    /// When a copy in parts drops the parts still running and saves its progress: before the
    /// cut-off by a fortieth of the time left (25 to 500 ms), kept for that one write.
    fn drop_parts_at(&self) -> Option<tokio::time::Instant> {
        self.before_cutoff(40, Duration::from_millis(25), Duration::from_millis(500))
    }

    /// The last instant a copy in parts may start its completion: before the cut-off by a quarter
    /// of the time left (at least 200 ms, at most 30 s), kept for the completion, which OSS may
    /// take seconds over for many parts, and the source check after it.
    fn complete_by(&self) -> Option<tokio::time::Instant> {
        self.before_cutoff(4, Duration::from_millis(200), Duration::from_secs(30))
    }

    fn before_cutoff(
        &self,
        share: u32,
        least: Duration,
        most: Duration,
    ) -> Option<tokio::time::Instant> {
        let reserve = (self.left()? / share).clamp(least, most);
        self.cutoff.map(|c| c.checked_sub(reserve).unwrap_or(c))
    }
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// Error code (OSS, S3, or ours).
    pub code: String,
    /// What happened, with the error's causes.
    pub message: String,
    /// Whether a later attempt may succeed.
    pub transient: bool,
}

/// What a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    /// The outcome.
    pub outcome: OutcomeKind,
    /// Source ETag of the version acted on.
    pub source_etag: Option<String>,
    /// Source version id of the version acted on.
    pub version_id: Option<String>,
    /// Size of the version acted on.
    pub size: Option<u64>,
    /// Bytes written to the destination.
    pub bytes_moved: u64,
    /// CRC-64 of the destination object, when known.
    pub crc64: Option<u64>,
    /// Rounds run.
    pub rounds: u32,
    /// Requests made to the source and destination (retries inside the clients included where
    /// they are counted).
    pub requests: u32,
    /// Destination request ids.
    pub request_ids: Vec<String>,
    /// Metadata names that could not be carried.
    pub dropped_metadata: Vec<String>,
    /// A note on why this outcome (for `superseded`, `skipped` and failures).
    pub note: Option<String>,
    /// The failure, for `failed`.
    pub error: Option<JobError>,
    /// A code for an outcome that is not a failure (`in_progress` of a fanned-out copy).
    pub code: Option<&'static str>,
}

impl JobReport {
    fn new() -> Self {
        Self {
            outcome: OutcomeKind::Failed,
            source_etag: None,
            version_id: None,
            size: None,
            bytes_moved: 0,
            crc64: None,
            rounds: 0,
            requests: 0,
            request_ids: Vec::new(),
            dropped_metadata: Vec::new(),
            note: None,
            error: None,
            code: None,
        }
    }

    fn done(mut self, outcome: OutcomeKind, note: impl Into<Option<String>>) -> Self {
        self.outcome = outcome;
        self.note = note.into();
        self
    }

    /// The report of a job stopped at the invocation's cut-off after `ran`, having moved `moved`
    /// bytes in parts of a resumable copy (kept for the next delivery; a completion in flight may
    /// still land, and the next delivery then records the copy: [`resume::completed_unrecorded`]).
    /// The rest of what it had done is lost with it, and its single upload, if any, is aborted by
    /// the handler.
    pub fn cut_off(ran: Duration, moved: u64) -> Self {
        let mut r = Self::new().done(
            OutcomeKind::Deferred,
            format!(
                "stopped at the invocation's cut-off after {} ms{}; the event comes again",
                ran.as_millis(),
                match moved {
                    0 => String::new(),
                    n => format!(", {n} bytes moved in parts kept for the next delivery"),
                }
            ),
        );
        r.bytes_moved = moved;
        r
    }

    fn failed(mut self, code: &str, message: String, transient: bool) -> Self {
        self.outcome = OutcomeKind::Failed;
        self.error = Some(JobError {
            code: code.to_owned(),
            message,
            transient,
        });
        self
    }

    fn oss_failed(mut self, e: &oss::Error) -> Self {
        if let Some(id) = e.request_id() {
            self.request_ids.push(id.to_owned());
        }
        self.failed(e.code(), error_chain(e), e.is_transient())
    }

    fn source_failed(self, e: &SourceError) -> Self {
        self.failed(e.code(), error_chain(e), e.is_transient())
    }

    fn in_progress(
        self,
        done: u64,
        size: u64,
        parts: (u32, u32),
        upload_id: &str,
        dropped: u32,
    ) -> Self {
        let dropped = match dropped {
            0 => String::new(),
            n => format!("; {n} part(s) in flight at the stop time dropped, in doubt: checked (and sent again only if OSS does not hold them) next time"),
        };
        self.done(
            OutcomeKind::InProgress,
            format!(
                "copy in progress: {done} of {size} bytes in {} of {} parts (upload {upload_id}); it continues in the next delivery{dropped}",
                parts.0, parts.1
            ),
        )
    }

    /// A resumable copy's failure other than the destination's (whose completion may have landed
    /// and is checked by the caller first).
    fn resume_failed(self, f: Failure) -> Self {
        match f {
            Failure::Source(e) => self.source_failed(&e),
            Failure::NotQueued(why) => self.not_written(why),
            Failure::Checkpoint(e) => self.failed(
                CHECKPOINT_FAILED,
                format!(
                    "the copy's checkpoint could not be kept: {}",
                    error_chain(&e)
                ),
                e.is_transient(),
            ),
            Failure::Dest(e) => self.oss_failed(&e),
        }
    }

    fn not_written(self, why: String) -> Self {
        self.failed(
            RECHECK_NOT_QUEUED,
            format!("nothing was written: the recheck that must precede a write could not be queued: {why}"),
            true,
        )
    }
}

/// Marks a body-source error meaning "the pinned source version is gone or replaced".
#[derive(Debug, thiserror::Error)]
#[error("the source object {0} since the copy began")]
struct SourceMoved(&'static str);

fn moved(e: &oss::Error) -> bool {
    matches!(e, oss::Error::Source { source, .. }
        if source.get_ref().is_some_and(|inner| inner.is::<SourceMoved>()))
}

/// A copy's body: the stream of the first GET, then, for retries, GETs pinned to its ETag.
struct PinnedBody<'a, S> {
    source: &'a S,
    key: &'a str,
    etag: &'a str,
    first: Mutex<Option<ByteStream>>,
    reopens: AtomicU32,
}

impl<S: SourceStore> BodySource for PinnedBody<'_, S> {
    fn open(&self) -> BoxFuture<'_, Result<ByteStream, oss::Error>> {
        Box::pin(async move {
            let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(stream) = first {
                return Ok(stream);
            }
            self.reopens.fetch_add(1, Ordering::Relaxed);
            let moved = |what| oss::Error::Source {
                key: self.key.to_owned(),
                transient: false,
                source: std::io::Error::other(SourceMoved(what)),
            };
            match self.source.get(self.key, Some(self.etag)).await {
                Ok(Some((_, stream))) => Ok(stream),
                Ok(None) => Err(moved("was deleted")),
                Err(SourceError::Changed { .. }) => Err(moved("changed")),
                Err(e) => Err(oss::Error::Source {
                    key: self.key.to_owned(),
                    transient: e.is_transient(),
                    source: std::io::Error::other(e),
                }),
            }
        })
    }
}

/// What must happen before a job first changes the destination: the handler leaves a delayed
/// recheck of the job's message on the queue (see "Why it converges"), so that whatever this
/// write does, the key is looked at again once the writer is surely gone.
pub trait WriteAhead: Sync {
    /// Makes sure the write-ahead of the job's message is done (once per message, however many
    /// of its jobs write); an error stops the job before it writes.
    fn before_write<'a>(&'a self, job: &'a Job<'_>) -> BoxFuture<'a, Result<(), String>>;

    /// Sends range jobs for the job's message ([`crate::sync::resume`], fan-out): each is the message
    /// again, carrying its range. The default cannot, and the copy is then made by one job.
    fn send_ranges<'a>(
        &'a self,
        _job: &'a Job<'_>,
        _ranges: &'a [RangeJob],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("range jobs cannot be sent from here".to_owned()) })
    }
}

/// A job's range jobs, sent through its handler's [`WriteAhead`].
struct JobRanges<'a, 'j> {
    queue: &'a dyn WriteAhead,
    job: &'a Job<'j>,
}

impl RangeSender for JobRanges<'_, '_> {
    fn send<'a>(&'a self, ranges: &'a [RangeJob]) -> BoxFuture<'a, Result<(), String>> {
        self.queue.send_ranges(self.job, ranges)
    }
}

/// Runs jobs against a source and a destination.
pub struct Copier<'a, S, D> {
    /// The source bucket.
    pub source: &'a S,
    /// The destination bucket.
    pub dest: &'a D,
    /// How copies are made.
    pub options: &'a CopyOptions,
    /// Called before each write (a copy or a delete); `None` writes without one (tests, tools
    /// whose writes are confirmed in the same process).
    pub write_ahead: Option<&'a dyn WriteAhead>,
    /// Where copies in parts keep their checkpoints, so that a copy the invocation's cut-off
    /// stops continues in a later one ([`crate::sync::resume`]); `None` copies every object within one
    /// run.
    pub resume: Option<Resume<'a>>,
}

/// The code of a job stopped because its copy's checkpoint could not be read or written.
pub const CHECKPOINT_FAILED: &str = "CheckpointFailed";
/// The code of an `in_progress` record whose copy was split into range jobs (its message is
/// done: the range jobs carry the copy on).
pub const FANNED_OUT: &str = "FannedOut";
/// The code of an `in_progress` record of a range job that uploaded its range while others are
/// still uploading theirs (the last one completes the object).
pub const RANGE_UPLOADED: &str = "RangeUploaded";

/// The code of a job stopped before its write because the write-ahead recheck could not be left.
pub const RECHECK_NOT_QUEUED: &str = "RecheckNotQueued";

/// Attempts of a source HEAD once the job has written (each attempt is itself retried by the S3
/// client): the check of its own write must not be lost to a passing error.
pub const CONFIRM_ATTEMPTS: u32 = 4;

/// The marker of the copy this job just wrote of `head` (its metadata fingerprinted), as the
/// next round compares it with the source.
fn written(job: &Job<'_>, head: &SourceObject, fingerprint: &str) -> Marker {
    Marker {
        etag: head.etag.clone(),
        size: head.size,
        fingerprint: Some(fingerprint.to_owned()),
        sequencer: job.sequencer.map(str::to_owned),
        message_id: job.message_id.map(str::to_owned),
    }
}

/// What a destination HEAD says: the sync marker, whether the object exists, its CRC-64.
fn dest_state(
    head: Option<&crate::store::object::ObjectHead>,
) -> (Option<Marker>, bool, Option<u64>) {
    (
        head.and_then(read_marker),
        head.is_some(),
        head.and_then(|h| h.crc64),
    )
}

/// What a round's source read found.
enum Observed {
    /// The source's current version, with a stream of its body when it was read by a GET.
    Present(Box<SourceObject>, Option<ByteStream>),
    /// A GET said `NoSuchKey`.
    Gone,
}

impl<S: SourceStore, D: DestinationStore> Copier<'_, S, D> {
    async fn write_ahead(&self, job: &Job<'_>) -> Result<(), String> {
        match self.write_ahead {
            Some(w) => w.before_write(job).await,
            None => Ok(()),
        }
    }

    /// A HEAD of the destination key, counted in the report.
    async fn head_dest(
        &self,
        job: &Job<'_>,
        r: &mut JobReport,
    ) -> Result<Option<crate::store::object::ObjectHead>, oss::Error> {
        r.requests += 1;
        let head = self.dest.head(job.dest_key).await?;
        if let Some(h) = &head {
            r.request_ids.push(h.request_id.clone());
        }
        Ok(head)
    }

    /// Makes the destination key match the source key, as far as the job allows and within its
    /// limits.
    pub async fn run(&self, job: &Job<'_>, limits: &Limits) -> JobReport {
        self.run_counted(job, limits, &AtomicU64::new(0)).await
    }

    /// [`Self::run`], adding to `progress` the bytes of every part of a resumable copy as it lands,
    /// so that a job stopped at the cut-off (its future dropped) still tells what it moved.
    pub async fn run_counted(
        &self,
        job: &Job<'_>,
        limits: &Limits,
        progress: &AtomicU64,
    ) -> JobReport {
        let mut r = JobReport::new();
        r.source_etag = job.etag.map(str::to_owned);
        r.size = job.size;
        if job.kind == JobKind::Remove && !self.options.sync_deletes {
            return r.done(OutcomeKind::Ignored, "delete sync is off".to_owned());
        }
        if limits.left().is_some_and(|left| !decide::may_start(left)) {
            return r.done(
                OutcomeKind::Deferred,
                "the invocation's cut-off came before the job could start".to_owned(),
            );
        }
        // A key OSS cannot hold fails here, before any request: a job that writes first would
        // otherwise leave its write-ahead recheck, and the recheck fail the same way again.
        if let Err(e) = crate::oss::client::check_key(job.dest_key) {
            return r.oss_failed(&e);
        }
        // The first delivery of a small creation does not read the destination first
        // ([`decide::reads_dest_first`]): it reads it only if the source turns out gone or too
        // large for one PUT, where what the destination holds decides what is done.
        let mut dest_read =
            decide::reads_dest_first(job) || self.resumable(job.size.unwrap_or(0)).is_some();
        let (mut marker, mut dest_exists, mut dest_crc) = if dest_read {
            match self.head_dest(job, &mut r).await {
                Ok(h) => dest_state(h.as_ref()),
                Err(e) => return r.oss_failed(&e),
            }
        } else {
            (None, false, None)
        };
        // A range job is not its event's job: it uploads parts of a copy that another job began,
        // perhaps of a newer version than the event's (a job reads the source, not the event),
        // so the marker's verdict on the event says nothing of it. Its copy in progress does.
        let settled = job
            .range
            .is_none()
            .then(|| decide::settled_by_marker(job, marker.as_ref()))
            .flatten();
        if let Some((kind, note)) = settled {
            r.crc64 = dest_crc;
            return r.done(kind, note);
        }
        // Once this job has written, its own reads of the source are all that can see its write
        // is stale (its message may be acknowledged by another delivery meanwhile), so they are
        // retried harder.
        let mut wrote = false;
        // A range job's parts, until it takes over (below).
        let mut range = job.range;
        let (mut round, mut take_over) = (0, false);
        while take_over || round < self.options.max_rounds {
            if take_over {
                (range, round, take_over) = (None, 0, false);
                let dest_head = match self.head_dest(job, &mut r).await {
                    Ok(h) => h,
                    Err(e) => return r.oss_failed(&e),
                };
                (marker, dest_exists, dest_crc) = dest_state(dest_head.as_ref());
            }
            round += 1;
            r.rounds += 1;
            // A copy in parts reads its parts by range: its first read is a HEAD, not a GET.
            let head_first = range.is_some()
                || marker.is_some()
                || self.resumable(job.size.unwrap_or(0)).is_some();
            let observed = match self.observe(job, head_first, wrote, &mut r).await {
                Ok(o) => o,
                Err(e) => return r.source_failed(&e),
            };
            // The source gone, or larger than a write-first copy may be: what the destination
            // holds decides. After a write of its own the job knows what it may hold (a read
            // now could miss a write still landing).
            let needs_dest = match &observed {
                Observed::Gone => true,
                Observed::Present(head, _) => {
                    head.size > decide::WRITE_FIRST_MAX || self.resumable(head.size).is_some()
                }
            };
            if needs_dest && !dest_read {
                dest_read = true;
                if !wrote {
                    match self.head_dest(job, &mut r).await {
                        Ok(h) => (marker, dest_exists, dest_crc) = dest_state(h.as_ref()),
                        Err(e) => return r.oss_failed(&e),
                    }
                }
            }
            // A range job that will not upload its range (the source is gone, or too small to be
            // copied in parts, or the destination already holds it) gives up its copy; one whose
            // copy is over, replaced or discarded ends below (`RangeOver`). Either way it then
            // takes over: other jobs may have been acknowledged trusting its copy to be carried
            // on (a job that finds a fanned-out copy of the current version leaves it to its
            // range jobs), so it looks at the key afresh, from a new destination HEAD, as its
            // message's own job, and copies, deletes or skips accordingly.
            if let Some(rj) = range {
                let keeps = match &observed {
                    Observed::Gone => false,
                    Observed::Present(head, _) => {
                        let fingerprint = metadata_fingerprint(&head.metadata);
                        !decide::holds_current(marker.as_ref(), head, &fingerprint)
                            && self.resumable(head.size).is_some()
                    }
                };
                if !keeps {
                    if let Some(resume) = self.resume {
                        let given_up =
                            resume::give_up_copy(resume, self.dest, job.dest_key, &rj.upload_id);
                        if let Err(f) = given_up.await {
                            return r.resume_failed(f);
                        }
                    }
                    take_over = true;
                    continue;
                }
            }
            let (head, stream) = match observed {
                Observed::Gone => {
                    let deleted = match decide::when_gone(self.options.sync_deletes, dest_exists) {
                        WhenGone::Done((kind, note)) => return r.done(kind, note),
                        WhenGone::Confirm => false,
                        WhenGone::Delete => {
                            if let Err(why) = self.write_ahead(job).await {
                                return r.not_written(why);
                            }
                            r.requests += 1;
                            if let Err(e) = self.dest.delete(job.dest_key).await {
                                return r.oss_failed(&e);
                            }
                            (dest_exists, marker) = (false, None);
                            true
                        }
                    };
                    wrote |= deleted;
                    let now = match self.head_after_write(job, wrote, &mut r).await {
                        Ok(now) => now,
                        Err(e) => return r.source_failed(&e),
                    };
                    match decide::after_gone(job.kind, deleted, now.as_ref()) {
                        Next::AnotherRound => continue,
                        Next::Done((kind, note)) => {
                            r.crc64 = None;
                            return r.done(kind, Some(note).filter(|n| !n.is_empty()));
                        }
                    }
                }
                Observed::Present(head, stream) => (*head, stream),
            };
            r.source_etag = Some(head.etag.clone());
            r.version_id = head.version_id.clone();
            r.size = Some(head.size);
            let fingerprint = metadata_fingerprint(&head.metadata);
            if decide::holds_current(marker.as_ref(), &head, &fingerprint) {
                r.crc64 = dest_crc;
                // A copy in parts whose completion landed after its job was stopped at the
                // cut-off left its checkpoint: the copy is recorded now, and the checkpoint goes.
                if let Some((_, resume)) = self.resumable(head.size) {
                    match resume::completed_unrecorded(resume, self.dest, job.dest_key, &head, &fingerprint).await {
                        Ok(false) => {}
                        Ok(true) => {
                            return r.done(
                                OutcomeKind::Copied,
                                "the copy in parts was completed by an earlier delivery that its invocation's cut-off stopped before it could record it; confirmed now (its parts' bytes are in the earlier records)".to_owned(),
                            )
                        }
                        Err(f) => return r.resume_failed(f),
                    }
                }
                return r.done(
                    OutcomeKind::Skipped,
                    "the destination already holds the current version".to_owned(),
                );
            }
            if let Some((plan, resume)) = self.resumable(head.size) {
                drop(stream);
                let written_for = WrittenFor {
                    sequencer: job.sequencer,
                    message_id: job.message_id,
                };
                let tags = match self.tags(job, &head, &mut r).await {
                    Ok(t) => t,
                    Err(e) => return r.source_failed(&e),
                };
                let mapped = map_metadata(&head, &tags, &self.options.storage_classes, written_for);
                r.dropped_metadata = mapped.dropped;
                let ranges = self.write_ahead.map(|queue| JobRanges { queue, job });
                let fan_out = self
                    .options
                    .fan_out_threshold
                    .zip(ranges.as_ref())
                    .filter(|_| range.is_none())
                    .map(|(threshold, sender)| FanOut {
                        threshold,
                        range_bytes: self.options.fan_out_range,
                        sender,
                    });
                let copy = ResumableCopy {
                    source: self.source,
                    dest: self.dest,
                    resume,
                    plan: &plan,
                    source_key: job.source_key,
                    dest_key: job.dest_key,
                    head: &head,
                    fingerprint: &fingerprint,
                    metadata: &mapped.metadata,
                    message_id: job.message_id,
                    stop_at: limits.stop_parts_at(),
                    complete_by: limits.complete_by(),
                    drop_at: limits.drop_parts_at(),
                    fan_out,
                    range,
                    progress: Some(progress),
                };
                match copy.run(self.write_ahead(job)).await {
                    Ended::Complete { outcome, moved } => {
                        r.requests += outcome.requests;
                        r.bytes_moved += moved;
                        r.request_ids.push(outcome.request_id);
                        r.crc64 = Some(outcome.crc64);
                        (wrote, dest_exists, dest_crc) = (true, true, Some(outcome.crc64));
                        marker = Some(written(job, &head, &fingerprint));
                    }
                    Ended::Paused {
                        done,
                        parts_done,
                        parts_total,
                        moved,
                        upload_id,
                        dropped,
                    } => {
                        if moved == 0 {
                            // Nothing to continue from this run: it comes again as any deferral.
                            return r.done(
                                OutcomeKind::Deferred,
                                format!(
                                    "the invocation's cut-off came before a part could be copied ({done} of {} bytes are in upload {upload_id})",
                                    head.size
                                ),
                            );
                        }
                        r.bytes_moved += moved;
                        return r.in_progress(
                            done,
                            head.size,
                            (parts_done, parts_total),
                            &upload_id,
                            dropped,
                        );
                    }
                    Ended::StartOver => continue,
                    Ended::FannedOut {
                        ranges,
                        sent,
                        upload_id,
                    } => {
                        let mut r = r.done(
                            OutcomeKind::InProgress,
                            format!(
                                "copy split into {ranges} range jobs ({sent} sent now) uploading into upload {upload_id}; the one that finishes last completes the object"
                            ),
                        );
                        r.code = Some(FANNED_OUT);
                        return r;
                    }
                    Ended::RangeUploaded { moved } => {
                        r.bytes_moved += moved;
                        let range = range.map(RangeJob::attribute).unwrap_or_default();
                        let mut r = r.done(
                            OutcomeKind::InProgress,
                            format!("range {range} uploaded; the range job that finishes last completes the object"),
                        );
                        r.code = Some(RANGE_UPLOADED);
                        return r;
                    }
                    Ended::RangeOver(why) => {
                        // Its copy is over, replaced or discarded: it takes over (see above).
                        tracing::info!(key = job.dest_key, why, "a range job takes over its key");
                        take_over = true;
                        continue;
                    }
                    Ended::Failed(Failure::Dest(e)) => {
                        // The completion may have landed with its answer lost: check as a
                        // failed single upload does.
                        (wrote, dest_exists, marker) = (true, true, None);
                        match self.check_copy(job, &head, &fingerprint, &mut r).await {
                            Ok(Next::AnotherRound) => continue,
                            Ok(Next::Done(_)) | Err(_) => return r.oss_failed(&e),
                        }
                    }
                    Ended::Failed(f) => return r.resume_failed(f),
                }
                match self.check_copy(job, &head, &fingerprint, &mut r).await {
                    Ok(Next::Done((kind, note))) => {
                        return r.done(kind, Some(note).filter(|n| !n.is_empty()))
                    }
                    Ok(Next::AnotherRound) => continue,
                    Err(e) => return r.source_failed(&e),
                }
            }
            if let Some(left) = limits.left() {
                if !decide::copy_fits(head.size, limits.bytes_per_sec, left) {
                    return r.done(
                        OutcomeKind::Deferred,
                        format!(
                            "a copy of {} bytes would not finish before the invocation's cut-off ({} ms left)",
                            head.size,
                            left.as_millis()
                        ),
                    );
                }
            }
            let (head, fingerprint, stream) = match stream {
                Some(s) => (head, fingerprint, s),
                None => {
                    r.requests += 1;
                    match self.source.get(job.source_key, Some(&head.etag)).await {
                        // The GET's headers are the copy's: the metadata may have changed since
                        // the HEAD while the ETag did not.
                        Ok(Some((got, s))) => {
                            let fingerprint = metadata_fingerprint(&got.metadata);
                            (got, fingerprint, s)
                        }
                        Ok(None) | Err(SourceError::Changed { .. }) => continue,
                        Err(e) => return r.source_failed(&e),
                    }
                }
            };
            let tags = match self.tags(job, &head, &mut r).await {
                Ok(t) => t,
                Err(e) => return r.source_failed(&e),
            };
            let written_for = WrittenFor {
                sequencer: job.sequencer,
                message_id: job.message_id,
            };
            let mapped = map_metadata(&head, &tags, &self.options.storage_classes, written_for);
            r.dropped_metadata = mapped.dropped;
            let body = PinnedBody {
                source: self.source,
                key: job.source_key,
                etag: &head.etag,
                first: Mutex::new(Some(stream)),
                reopens: AtomicU32::new(0),
            };
            let req = UploadRequest {
                bucket: self.dest.bucket(),
                key: job.dest_key,
                size: head.size,
                metadata: &mapped.metadata,
                content_md5: head.md5(),
            };
            if let Err(why) = self.write_ahead(job).await {
                return r.not_written(why);
            }
            let uploaded = self.dest.upload(&req, &body).await;
            r.requests += body.reopens.load(Ordering::Relaxed);
            match uploaded {
                Ok(up) => {
                    r.requests += up.requests;
                    r.bytes_moved += head.size;
                    r.request_ids.push(up.request_id);
                    r.crc64 = Some(up.crc64);
                    dest_exists = true;
                    wrote = true;
                    dest_crc = Some(up.crc64);
                    marker = Some(written(job, &head, &fingerprint));
                }
                Err(e) => {
                    // A write may have landed with its answer lost (a reopened body means an
                    // earlier attempt sent it all; some errors come after OSS stored it). What
                    // the destination holds is unknown now. If the source moved on, that write
                    // is stale and this job (whose message another delivery may acknowledge)
                    // must repair it; otherwise the failure stands.
                    (wrote, dest_exists, marker) = (true, true, None);
                    if moved(&e) {
                        continue;
                    }
                    match self.check_copy(job, &head, &fingerprint, &mut r).await {
                        Ok(Next::AnotherRound) => continue,
                        Ok(Next::Done(_)) | Err(_) => return r.oss_failed(&e),
                    }
                }
            }
            match self.check_copy(job, &head, &fingerprint, &mut r).await {
                Ok(Next::Done((kind, note))) => {
                    return r.done(kind, Some(note).filter(|n| !n.is_empty()))
                }
                Ok(Next::AnotherRound) => continue,
                Err(e) => return r.source_failed(&e),
            }
        }
        let rounds = self.options.max_rounds;
        r.failed(
            "SourceKeepsChanging",
            format!("the source object changed during each of {rounds} copy rounds"),
            true,
        )
    }

    /// The plan and checkpoint place for a copy of `size` bytes, when it is made in parts,
    /// resumably.
    fn resumable(&self, size: u64) -> Option<(PartPlan, Resume<'_>)> {
        let resume = self.resume?;
        let plan = self.dest.part_plan().filter(|p| size > p.threshold)?;
        Some((plan, resume))
    }

    /// The source version's tags, when they are copied and it has some.
    async fn tags(
        &self,
        job: &Job<'_>,
        head: &SourceObject,
        r: &mut JobReport,
    ) -> Result<Vec<(String, String)>, SourceError> {
        if !(self.options.sync_tags && head.tag_count > 0) {
            return Ok(Vec::new());
        }
        r.requests += 1;
        self.source
            .tags(job.source_key, head.version_id.as_deref())
            .await
    }

    /// After a write of `copied` (metadata `fingerprint`), whether the source is still that
    /// version ([`decide::after_copy`]).
    async fn check_copy(
        &self,
        job: &Job<'_>,
        copied: &SourceObject,
        fingerprint: &str,
        r: &mut JobReport,
    ) -> Result<Next, SourceError> {
        let now = self.head_after_write(job, true, r).await?;
        let fingerprint_now = now.as_ref().map(|n| metadata_fingerprint(&n.metadata));
        Ok(decide::after_copy(
            copied,
            fingerprint,
            now.as_ref(),
            fingerprint_now.as_deref(),
            self.options.sync_deletes,
        ))
    }

    /// A source HEAD; after this job wrote, transient errors are tried again up to
    /// [`CONFIRM_ATTEMPTS`] in all (the S3 client backs off within each attempt).
    async fn head_after_write(
        &self,
        job: &Job<'_>,
        wrote: bool,
        r: &mut JobReport,
    ) -> Result<Option<SourceObject>, SourceError> {
        let attempts = if wrote { CONFIRM_ATTEMPTS } else { 1 };
        let mut attempt = 1;
        loop {
            r.requests += 1;
            match self.source.head(job.source_key).await {
                Err(e) if e.is_transient() && attempt < attempts => {
                    tracing::warn!(key = job.source_key, attempt, error = %error_chain(&e), "the check of a write failed; trying again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Reads the source for a round: a HEAD first when the destination holds a marked copy (a
    /// duplicate or a metadata check then costs no body), otherwise a GET whose body is the copy's.
    /// A HEAD that finds nothing is confirmed by a GET before anything is deleted.
    async fn observe(
        &self,
        job: &Job<'_>,
        dest_marked: bool,
        wrote: bool,
        r: &mut JobReport,
    ) -> Result<Observed, SourceError> {
        if dest_marked {
            if let Some(head) = self.head_after_write(job, wrote, r).await? {
                return Ok(Observed::Present(Box::new(head), None));
            }
        }
        r.requests += 1;
        Ok(match self.source.get(job.source_key, None).await? {
            Some((head, stream)) => Observed::Present(Box::new(head), Some(stream)),
            None => Observed::Gone,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::object::ObjectHead;
    use crate::store::source::{SourceMetadata, SourceObject};
    use crate::store::upload::UploadOutcome;
    use crate::testing::memory::{MemoryDestination, MemorySource};
    use std::sync::atomic::AtomicBool;

    fn job<'a>(kind: JobKind, key: &'a str, etag: Option<&'a str>, size: Option<u64>) -> Job<'a> {
        Job {
            kind,
            source_key: key,
            dest_key: key,
            etag,
            size,
            sequencer: None,
            message_id: None,
            answers_for: &[],
            range: None,
            first_delivery: false,
        }
    }

    /// A source overwritten at every HEAD: a copy can never be confirmed.
    struct Restless(MemorySource, AtomicU32);

    impl SourceStore for Restless {
        async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
            let n = self.1.fetch_add(1, Ordering::SeqCst);
            self.0
                .put(key, format!("version {n}"), SourceMetadata::default());
            self.0.head(key).await
        }
        async fn get(
            &self,
            key: &str,
            if_match: Option<&str>,
        ) -> Result<Option<(SourceObject, ByteStream)>, SourceError> {
            self.0.get(key, if_match).await
        }
        async fn tags(
            &self,
            k: &str,
            v: Option<&str>,
        ) -> Result<Vec<(String, String)>, SourceError> {
            self.0.tags(k, v).await
        }
    }

    #[tokio::test]
    async fn a_source_that_never_settles_fails_transiently_after_the_bound() {
        let source = Restless(MemorySource::default(), AtomicU32::new(0));
        source.0.put("k", "v", SourceMetadata::default());
        let dest = MemoryDestination::default();
        let r = create(&source, &dest, &CopyOptions::default()).await;
        assert_eq!(r.outcome, OutcomeKind::Failed);
        assert_eq!(r.rounds, 3);
        let e = r.error.unwrap();
        assert_eq!(e.code, "SourceKeepsChanging");
        assert!(e.transient);
    }

    /// A destination that reads the body, then (as a retried PutObject does) opens it again; the
    /// source is overwritten in between, once.
    struct Reopening<'a> {
        inner: MemoryDestination,
        source: &'a MemorySource,
        overwritten: AtomicBool,
    }

    impl DestinationStore for Reopening<'_> {
        async fn head(&self, key: &str) -> Result<Option<ObjectHead>, oss::Error> {
            self.inner.head(key).await
        }
        async fn upload(
            &self,
            req: &UploadRequest<'_>,
            body: &dyn BodySource,
        ) -> Result<UploadOutcome, oss::Error> {
            drop(body.open().await?);
            if !self.overwritten.swap(true, Ordering::SeqCst) {
                self.source
                    .put(req.key, "newer bytes", SourceMetadata::default());
            }
            self.inner.upload(req, body).await
        }
        async fn delete(&self, key: &str) -> Result<(), oss::Error> {
            self.inner.delete(key).await
        }
        fn bucket(&self) -> &str {
            "reopening"
        }
    }

    #[tokio::test]
    async fn a_retried_read_is_pinned_to_the_first_etag() {
        let source = MemorySource::default();
        source.put("k", "old", SourceMetadata::default());
        let dest = Reopening {
            inner: MemoryDestination::default(),
            source: &source,
            overwritten: AtomicBool::new(false),
        };
        let r = create(&source, &dest, &CopyOptions::default()).await;
        // Round 1's re-read found a new ETag (412) and gave up rather than mix versions; round 2
        // copied the new version whole.
        assert_eq!((r.outcome, r.rounds), (OutcomeKind::Copied, 2));
        assert_eq!(&dest.inner.get("k").unwrap().1[..], b"newer bytes");
        assert_eq!(r.bytes_moved, 11);
    }

    async fn create<S: SourceStore, D: DestinationStore>(
        source: &S,
        dest: &D,
        options: &CopyOptions,
    ) -> JobReport {
        let c = Copier {
            source,
            dest,
            options,
            write_ahead: None,
            resume: None,
        };
        c.run(&job(JobKind::Create, "k", None, None), &Limits::none())
            .await
    }

    #[tokio::test]
    async fn a_create_for_a_gone_source_is_superseded_and_deletes_only_when_on() {
        let source = MemorySource::default();
        source.put("k", "v", SourceMetadata::default());
        let dest = MemoryDestination::default();
        let on = CopyOptions {
            sync_deletes: true,
            ..CopyOptions::default()
        };
        let off = CopyOptions::default();
        create(&source, &dest, &off).await;
        source.delete("k");
        let r = create(&source, &dest, &off).await;
        assert_eq!(r.outcome, OutcomeKind::Superseded);
        assert!(
            dest.get("k").is_some(),
            "nothing is deleted with delete sync off"
        );
        let r = create(&source, &dest, &on).await;
        assert_eq!(r.outcome, OutcomeKind::Superseded);
        assert!(dest.get("k").is_none());
    }

    #[tokio::test]
    async fn an_event_for_an_older_version_skips_when_the_destination_is_current() {
        let source = MemorySource::default();
        let old = source.put("k", "old", SourceMetadata::default());
        let dest = MemoryDestination::default();
        let options = CopyOptions::default();
        let c = Copier {
            source: &source,
            dest: &dest,
            options: &options,
            write_ahead: None,
            resume: None,
        };
        source.put("k", "new!", SourceMetadata::default());
        assert_eq!(
            c.run(&job(JobKind::Create, "k", None, None), &Limits::none())
                .await
                .outcome,
            OutcomeKind::Copied
        );
        let r = c
            .run(
                &job(JobKind::Create, "k", Some(&old), Some(3)),
                &Limits::none(),
            )
            .await;
        assert_eq!(r.outcome, OutcomeKind::Skipped);
        assert_eq!(
            r.requests, 2,
            "destination HEAD, then a source HEAD (no body is read)"
        );
        assert_eq!(
            source.gets.load(Ordering::SeqCst),
            1,
            "only the copy read a body"
        );
        assert_eq!(dest.uploads.load(Ordering::SeqCst), 1);
    }
}
