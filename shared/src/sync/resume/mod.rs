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
//! slowest part seen so far and the process's [`PartPace`](crate::store::upload::PartPace); one part is tried in every run that
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
//!
//! The parts of this module:
//! - `checkpoint`: the checkpoint, its finished parts, where it is kept, and which of its parts
//!   are kept on resumption.
//! - `ranges`: range jobs, their records and the keys beside the checkpoint; a copy's fan-out
//!   and a range job's run.
//! - `run`: [`ResumableCopy`], how a copy starts (new, resumed, or found fanned out) and its run.
//! - `parts`: reading and uploading parts under the deadlines, and the completion.
//! - `cleanup`: loading, forgetting and discarding a copy; [`give_up_copy`] and
//!   [`completed_unrecorded`].

mod checkpoint;
mod cleanup;
mod parts;
mod ranges;
mod run;

pub use checkpoint::{
    checkpoint_key, checkpoint_prefix, landed_unrecorded, plan_parts, plan_resume, Checkpoint,
    DonePart, CHECKPOINT_VERSION, PART_READ_ATTEMPTS, SAVE_EVERY,
};
pub use cleanup::{completed_unrecorded, give_up_copy};
pub use ranges::{
    claim_key, range_record_key, sent_key, split_ranges, RangeJob, RangeRecord, SENT_NOTE_WAIT,
    SENT_NOTE_WAITS,
};
pub use run::{Ended, Failure, FanOut, RangeSender, ResumableCopy, Resume};
