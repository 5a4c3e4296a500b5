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
//!
//! The parts of this module:
//! - `options`: how copies are made ([`CopyOptions`]) and how long a job has ([`Limits`]).
//! - `report`: what a job did ([`JobReport`]).
//! - `copier`: the [`Copier`], the write-ahead ([`WriteAhead`]), a copy's pinned body, and the
//!   reads of the source and the destination a round makes.
//! - `run`: a job's rounds ([`Copier::run`]).
//!
//! [`decide::settled_by_marker`]: crate::sync::decide::settled_by_marker
//! [`decide::reads_dest_first`]: crate::sync::decide::reads_dest_first

mod copier;
mod options;
mod report;
mod run;
#[cfg(test)]
mod tests;

pub use crate::sync::decide::{Job, JobKind};
pub use copier::{Copier, WriteAhead};
pub use options::{CopyOptions, Limits};
pub use report::{JobError, JobReport};

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
