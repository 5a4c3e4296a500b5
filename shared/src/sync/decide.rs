//! The sync core's decisions, as plain functions of what was read: what the destination's sync
//! marker settles, what the source's state asks for, whether a copy or a delete is confirmed,
//! whether a job may start or a copy can finish before the invocation's cut-off, and what a failure
//! means for its message. No I/O and no clock: callers pass what they read and the time.
//! [`crate::sync::copy`] executes these decisions; its module doc gives the argument that they converge.

use crate::event::sequencer_cmp;
use crate::outcome::OutcomeKind;
use crate::store::source::SourceObject;
use crate::sync::metadata::Marker;
use std::cmp::Ordering;
use std::time::Duration;

/// What the event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// The object was created or overwritten.
    Create,
    /// The object was removed.
    Remove,
}

/// One key's job: the newest event of the key in a batch.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// What the event asks for.
    pub kind: JobKind,
    /// Source key.
    pub source_key: &'a str,
    /// Destination key.
    pub dest_key: &'a str,
    /// The event's ETag, if it gave one.
    pub etag: Option<&'a str>,
    /// The event's size, if it gave one.
    pub size: Option<u64>,
    /// The event's S3 sequencer, if it gave one.
    pub sequencer: Option<&'a str>,
    /// The SQS message carrying the event (written into the sync marker of a copy).
    pub message_id: Option<&'a str>,
    /// Every message of the batch with an event for this key: acknowledged when this job ends
    /// well, so this job answers for their writes.
    pub answers_for: &'a [&'a str],
    /// For a range job of a copy fanned out: its parts.
    pub range: Option<&'a crate::sync::resume::RangeJob>,
    /// Whether the event is in its first delivery from S3: a message received for the first
    /// time, not a recheck, a continuation or a range job, and not an event `ctl` sent (a
    /// backfill or a retry, which expect to find most keys current). See [`reads_dest_first`].
    pub first_delivery: bool,
}

/// An outcome decided, with the note that says why.
pub type Decided = (OutcomeKind, String);

/// What the destination's HEAD alone settles, before the source is read: `Some` when the event
/// needs nothing.
///
/// - A marker whose sequencer is **strictly above** the event's: the destination holds a copy
///   written for a later event of the key (its bytes are at least that new), so this event is
///   history. A create or a delete alike.
/// - A marker with the **same** sequencer, ETag and size, written by a message this job does not
///   answer for: the same event came twice (S3 delivers at least once) and the other message's job
///   wrote it. If that write was not confirmed against the source, that message was not
///   acknowledged and its next delivery confirms it.
/// - Anything else, including the same sequencer written by a message this job answers for (its
///   own earlier delivery, whose write may never have been confirmed): the source decides.
pub fn settled_by_marker(job: &Job<'_>, marker: Option<&Marker>) -> Option<Decided> {
    let marker = marker?;
    let (ours, theirs) = (job.sequencer?, marker.sequencer.as_deref()?);
    let same_version = job.kind == JobKind::Create
        && job.etag == Some(&marker.etag)
        && job.size == Some(marker.size);
    match sequencer_cmp(theirs, ours) {
        Ordering::Greater if same_version => Some((
            OutcomeKind::Skipped,
            format!("the destination holds this version, copied for a later event (sequencer {theirs})"),
        )),
        Ordering::Greater => Some((
            OutcomeKind::Superseded,
            format!("the destination holds a newer version (sequencer {theirs} is after this event's {ours})"),
        )),
        Ordering::Equal if same_version => {
            let writer = marker.message_id.as_deref()?;
            (!job.answers_for.contains(&writer)).then(|| {
                (
                    OutcomeKind::Skipped,
                    format!("a duplicate of an event message {writer} copied"),
                )
            })
        }
        _ => None,
    }
}

/// The largest object (by the event's size) a first delivery copies without reading the
/// destination first ([`reads_dest_first`]): for objects this small the long link's round trip,
/// not the bytes, is the copy's time, and a needless copy of a duplicate costs at most this much
/// egress.
pub const WRITE_FIRST_MAX: u64 = 1 << 20;

/// Whether a job reads the destination (a HEAD over the long link, for its sync marker) before
/// the source. Not for the first delivery of an S3 creation event of at most [`WRITE_FIRST_MAX`]
/// bytes: its key is almost never settled by a marker (only an S3 duplicate delivered in another
/// message, or a later event already copied, would be), so the job reads the source and writes,
/// one long-link round trip instead of two.
///
/// Safe because the marker only ever lets a job *skip*; a job that does not read it writes the
/// source's current version, behind the write-ahead recheck and confirmed by a source HEAD, like
/// any other write (see [`crate::sync::copy`], "Why it converges": no argument there rests on a skip).
/// The cost is on the rare duplicate: a copy (a GET, a PUT, a recheck) instead of one HEAD.
/// Redeliveries, rechecks, continuations, range jobs, `ctl`'s events, deletes, objects of
/// unknown or larger size read the destination first, so their common outcome, a skip, stays
/// one request.
pub fn reads_dest_first(job: &Job<'_>) -> bool {
    !(job.first_delivery
        && job.kind == JobKind::Create
        && job.range.is_none()
        && job.size.is_some_and(|s| s <= WRITE_FIRST_MAX))
}

/// Whether the source's current version is what the destination's marker says it holds.
pub fn holds_current(marker: Option<&Marker>, source: &SourceObject, fingerprint: &str) -> bool {
    marker.is_some_and(|m| m.holds(source, fingerprint))
}

/// What to do when a GET says the source object does not exist (`NoSuchKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhenGone {
    /// Delete the destination object, then confirm the source is still gone.
    Delete,
    /// Nothing to delete: confirm the source is still gone.
    Confirm,
    /// Delete sync is off: the job ends so.
    Done(Decided),
}

/// The source is gone (a GET said `NoSuchKey`): delete the destination only with delete sync on.
pub fn when_gone(sync_deletes: bool, dest_exists: bool) -> WhenGone {
    match (sync_deletes, dest_exists) {
        (false, _) => WhenGone::Done((
            OutcomeKind::Superseded,
            "the source object no longer exists".to_owned(),
        )),
        (true, true) => WhenGone::Delete,
        (true, false) => WhenGone::Confirm,
    }
}

/// The next step after a check of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The job is done.
    Done(Decided),
    /// The source changed: read it again and act on what it is now.
    AnotherRound,
}

/// After the destination was made absent for a gone source, the source's HEAD says whether that
/// still holds (`None`: still gone).
pub fn after_gone(kind: JobKind, deleted: bool, now: Option<&SourceObject>) -> Next {
    if now.is_some() {
        // Re-created meanwhile: copy it.
        return Next::AnotherRound;
    }
    Next::Done(match (kind, deleted) {
        (JobKind::Remove, true) => (OutcomeKind::Deleted, String::new()),
        (JobKind::Remove, false) => (
            OutcomeKind::Skipped,
            "the destination object was already absent".to_owned(),
        ),
        (JobKind::Create, _) => (
            OutcomeKind::Superseded,
            "the source object was deleted; the destination matches".to_owned(),
        ),
    })
}

/// After a copy of `copied` (metadata `fingerprint`), the source's HEAD says whether the copy is
/// still the current version. A slower job for an older version may have written after a faster
/// job for a newer one; only this check, by the job that wrote, can see it.
pub fn after_copy(
    copied: &SourceObject,
    fingerprint: &str,
    now: Option<&SourceObject>,
    fingerprint_now: Option<&str>,
    sync_deletes: bool,
) -> Next {
    match now {
        Some(now) if now.etag == copied.etag && fingerprint_now == Some(fingerprint) => {
            Next::Done((OutcomeKind::Copied, String::new()))
        }
        Some(_) => Next::AnotherRound,
        None if !sync_deletes => Next::Done((
            OutcomeKind::Superseded,
            "copied, but the source object was deleted meanwhile".to_owned(),
        )),
        // Confirmed by the next round's GET before anything is deleted.
        None => Next::AnotherRound,
    }
}

/// The share of the time left that a job keeps for itself at the cut-off: the results write, the
/// aborts of uploads cut short, and the answer to Lambda.
pub fn margin(invocation_timeout: Duration) -> Duration {
    (invocation_timeout / 5).clamp(Duration::from_millis(300), Duration::from_secs(5))
}

/// Whether a job may start with `left` until the cut-off: it needs at least a few round trips.
pub fn may_start(left: Duration) -> bool {
    left >= Duration::from_millis(200)
}

/// Whether a copy of `size` bytes can finish in `left` at `bytes_per_sec` (the rate this process
/// has seen, or an assumption before it has seen one), keeping for its other requests a second,
/// or half of what is left when that is less (a short invocation still copies small objects).
pub fn copy_fits(size: u64, bytes_per_sec: f64, left: Duration) -> bool {
    let left = left.as_secs_f64();
    let needs = size as f64 / bytes_per_sec.max(1.0) + (left / 2.0).min(1.0);
    needs <= left
}

/// What a job's failure means for its message and record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Report the message failed, so SQS delivers it again (or, after `maxReceiveCount`, moves it
    /// to the DLQ).
    pub redeliver: bool,
    /// The record is the event's last word.
    pub is_final: bool,
}

/// Error codes that say this object can never be copied as it is, whatever is fixed elsewhere:
/// a key OSS cannot hold, an object larger than OSS takes, an archived source object.
pub fn object_cannot_be_copied(code: &str) -> bool {
    matches!(
        code,
        "InvalidObjectName" | "EntityTooLarge" | "InvalidObjectState" | "KeyTooLongError"
    )
}

/// The error code of a recheck still to wait, sent on for its next hop (acknowledged; the next hop
/// does the work).
pub const RECHECK_WAITING: &str = "RecheckWaiting";

/// The error code of a delivery handed over to a recheck (acknowledged; the recheck does the work).
pub const RECHECKING: &str = "Rechecking";

/// The verdict for an outcome: a failure that only this object has (a key OSS cannot hold, ...)
/// is recorded once, final, and acknowledged; every other failure, a deferral and an invalid
/// message come again (an operator can fix a permission, a bucket, a key, and redrive the DLQ),
/// final on the last delivery; a delivery handed over to a recheck, or a recheck sent on for its
/// next hop, is acknowledged, not final; everything else is done.
pub fn verdict(
    kind: OutcomeKind,
    error_code: Option<&str>,
    receive_count: u32,
    max_receive_count: Option<u32>,
) -> Verdict {
    let last = max_receive_count.is_some_and(|max| receive_count >= max);
    match kind {
        OutcomeKind::Deferred if error_code == Some(RECHECKING) => Verdict {
            redeliver: false,
            is_final: false,
        },
        // Its message was sent back to continue the copy (or, if that failed, it is reported
        // failed by the handler): not the event's last word either way.
        OutcomeKind::InProgress => Verdict {
            redeliver: false,
            is_final: false,
        },
        OutcomeKind::Ignored if error_code == Some(RECHECK_WAITING) => Verdict {
            redeliver: false,
            is_final: false,
        },
        OutcomeKind::Failed if error_code.is_some_and(object_cannot_be_copied) => Verdict {
            redeliver: false,
            is_final: true,
        },
        OutcomeKind::Failed | OutcomeKind::Deferred | OutcomeKind::Invalid => Verdict {
            redeliver: true,
            is_final: last,
        },
        _ => Verdict {
            redeliver: false,
            is_final: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "0055B988C5A8B2A6D8";
    const SEQ: &str = "0055B988C5A8B2A6D9";
    const NEW: &str = "0055B988C5A8B2A6DA";

    fn marker(sequencer: Option<&str>, message_id: Option<&str>) -> Marker {
        Marker {
            etag: "e".into(),
            size: 5,
            fingerprint: Some("f".into()),
            sequencer: sequencer.map(str::to_owned),
            message_id: message_id.map(str::to_owned),
        }
    }

    fn job<'a>(kind: JobKind, seq: Option<&'a str>, answers_for: &'a [&'a str]) -> Job<'a> {
        Job {
            kind,
            source_key: "k",
            dest_key: "k",
            etag: Some("e"),
            size: Some(5),
            sequencer: seq,
            message_id: answers_for.first().copied(),
            answers_for,
            range: None,
            first_delivery: false,
        }
    }

    #[test]
    fn only_small_creations_in_their_first_delivery_write_first() {
        let mut j = job(JobKind::Create, Some(SEQ), &["me"]);
        assert!(reads_dest_first(&j), "a redelivery reads the marker first");
        j.first_delivery = true;
        assert!(!reads_dest_first(&j));
        j.size = Some(WRITE_FIRST_MAX);
        assert!(!reads_dest_first(&j));
        j.size = Some(WRITE_FIRST_MAX + 1);
        assert!(reads_dest_first(&j), "a larger object");
        j.size = None;
        assert!(reads_dest_first(&j), "an unknown size");
        let mut d = job(JobKind::Remove, Some(SEQ), &["me"]);
        d.first_delivery = true;
        assert!(reads_dest_first(&d), "a delete");
        let range = crate::sync::resume::RangeJob::parse("1-2 u1").unwrap();
        let mut rj = job(JobKind::Create, Some(SEQ), &["me"]);
        rj.first_delivery = true;
        rj.range = Some(&range);
        assert!(reads_dest_first(&rj), "a range job");
    }

    #[test]
    fn a_strictly_newer_marker_settles_creates_and_deletes() {
        let m = marker(Some(NEW), Some("other"));
        let (kind, _) =
            settled_by_marker(&job(JobKind::Create, Some(SEQ), &["me"]), Some(&m)).unwrap();
        assert_eq!(kind, OutcomeKind::Skipped);
        let mut other_version = job(JobKind::Create, Some(SEQ), &["me"]);
        other_version.etag = Some("older");
        let (kind, note) = settled_by_marker(&other_version, Some(&m)).unwrap();
        assert_eq!(kind, OutcomeKind::Superseded, "{note}");
        let (kind, _) =
            settled_by_marker(&job(JobKind::Remove, Some(SEQ), &["me"]), Some(&m)).unwrap();
        assert_eq!(
            kind,
            OutcomeKind::Superseded,
            "a late delete must not remove a newer copy"
        );
    }

    #[test]
    fn a_marker_of_the_jobs_own_message_never_settles_it() {
        // Defect 1: a slow job for an older version wrote after the newer version's job finished,
        // then failed its check. Its redelivery must read the source, not trust its own marker.
        let m = marker(Some(SEQ), Some("me"));
        assert_eq!(
            settled_by_marker(&job(JobKind::Create, Some(SEQ), &["me"]), Some(&m)),
            None
        );
        // Nor when a message in the same batch (acknowledged with this job) wrote it.
        let m = marker(Some(SEQ), Some("batch-mate"));
        assert_eq!(
            settled_by_marker(
                &job(JobKind::Create, Some(SEQ), &["me", "batch-mate"]),
                Some(&m)
            ),
            None
        );
        // A marker without a message id (written before markers named one) cannot tell either.
        let m = marker(Some(SEQ), None);
        assert_eq!(
            settled_by_marker(&job(JobKind::Create, Some(SEQ), &["me"]), Some(&m)),
            None
        );
    }

    #[test]
    fn a_duplicate_in_another_message_is_settled_by_the_marker() {
        let m = marker(Some(SEQ), Some("first"));
        let (kind, note) =
            settled_by_marker(&job(JobKind::Create, Some(SEQ), &["second"]), Some(&m)).unwrap();
        assert_eq!(kind, OutcomeKind::Skipped);
        assert!(note.contains("first"), "{note}");
    }

    #[test]
    fn older_markers_and_missing_sequencers_leave_it_to_the_source() {
        let m = marker(Some(OLD), Some("other"));
        assert_eq!(
            settled_by_marker(&job(JobKind::Create, Some(SEQ), &["me"]), Some(&m)),
            None
        );
        let m = marker(None, Some("other"));
        assert_eq!(
            settled_by_marker(&job(JobKind::Create, Some(SEQ), &["me"]), Some(&m)),
            None
        );
        let m = marker(Some(NEW), Some("other"));
        assert_eq!(
            settled_by_marker(&job(JobKind::Create, None, &["me"]), Some(&m)),
            None
        );
        assert_eq!(
            settled_by_marker(&job(JobKind::Create, Some(SEQ), &["me"]), None),
            None
        );
    }

    fn object(etag: &str) -> SourceObject {
        SourceObject {
            size: 5,
            etag: etag.into(),
            ..SourceObject::default()
        }
    }

    #[test]
    fn a_copy_is_confirmed_only_by_the_same_version_and_metadata() {
        let a = object("a");
        assert_eq!(
            after_copy(&a, "f", Some(&a), Some("f"), false),
            Next::Done((OutcomeKind::Copied, String::new()))
        );
        assert_eq!(
            after_copy(&a, "f", Some(&a), Some("g"), false),
            Next::AnotherRound
        );
        assert_eq!(
            after_copy(&a, "f", Some(&object("b")), Some("f"), false),
            Next::AnotherRound
        );
        assert!(matches!(
            after_copy(&a, "f", None, None, false),
            Next::Done((OutcomeKind::Superseded, _))
        ));
        assert_eq!(after_copy(&a, "f", None, None, true), Next::AnotherRound);
    }

    #[test]
    fn gone_sources_delete_only_with_delete_sync_and_confirm() {
        assert!(matches!(
            when_gone(false, true),
            WhenGone::Done((OutcomeKind::Superseded, _))
        ));
        assert_eq!(when_gone(true, true), WhenGone::Delete);
        assert_eq!(when_gone(true, false), WhenGone::Confirm);
        assert_eq!(
            after_gone(JobKind::Remove, true, Some(&object("a"))),
            Next::AnotherRound
        );
        assert!(matches!(
            after_gone(JobKind::Remove, true, None),
            Next::Done((OutcomeKind::Deleted, _))
        ));
        assert!(matches!(
            after_gone(JobKind::Remove, false, None),
            Next::Done((OutcomeKind::Skipped, _))
        ));
        assert!(matches!(
            after_gone(JobKind::Create, true, None),
            Next::Done((OutcomeKind::Superseded, _))
        ));
    }

    #[test]
    fn deadlines_keep_a_margin_and_refuse_copies_that_cannot_finish() {
        assert_eq!(margin(Duration::from_secs(3)), Duration::from_millis(600));
        assert_eq!(margin(Duration::from_secs(900)), Duration::from_secs(5));
        assert_eq!(margin(Duration::from_secs(1)), Duration::from_millis(300));
        assert!(may_start(Duration::from_secs(1)));
        assert!(!may_start(Duration::from_millis(100)));
        let mib = 1024.0 * 1024.0;
        assert!(copy_fits(10 << 20, 20.0 * mib, Duration::from_secs(2)));
        assert!(!copy_fits(100 << 20, 20.0 * mib, Duration::from_secs(2)));
        // A short invocation (a 2 s visibility timeout gives `sync poll` 1 s) copies small objects.
        assert!(copy_fits(50_000, 25.0 * mib, Duration::from_millis(673)));
        assert!(!copy_fits(20 << 20, 25.0 * mib, Duration::from_millis(673)));
    }

    #[test]
    fn verdicts_acknowledge_what_only_the_object_has_and_finish_on_the_last_delivery() {
        let v = verdict(OutcomeKind::Failed, Some("InvalidObjectName"), 1, Some(5));
        assert_eq!(
            v,
            Verdict {
                redeliver: false,
                is_final: true
            }
        );
        // A permission or a bucket can be fixed: it comes again, and ends in the DLQ.
        let v = verdict(OutcomeKind::Failed, Some("AccessDenied"), 1, Some(5));
        assert_eq!(
            v,
            Verdict {
                redeliver: true,
                is_final: false
            }
        );
        let v = verdict(OutcomeKind::Failed, Some("InternalError"), 5, Some(5));
        assert_eq!(
            v,
            Verdict {
                redeliver: true,
                is_final: true
            }
        );
        let v = verdict(OutcomeKind::Deferred, Some("InvocationDeadline"), 9, None);
        assert_eq!(
            v,
            Verdict {
                redeliver: true,
                is_final: false
            },
            "unknown limit: not known to be last"
        );
        let v = verdict(OutcomeKind::Invalid, Some("InvalidMessage"), 2, Some(2));
        assert_eq!(
            v,
            Verdict {
                redeliver: true,
                is_final: true
            }
        );
        let v = verdict(OutcomeKind::Copied, None, 1, Some(5));
        assert_eq!(
            v,
            Verdict {
                redeliver: false,
                is_final: true
            }
        );
        // Work handed on (a hand-over, a recheck's next hop): acknowledged, never final.
        for (kind, code) in [
            (OutcomeKind::Deferred, RECHECKING),
            (OutcomeKind::Ignored, RECHECK_WAITING),
        ] {
            let v = verdict(kind, Some(code), 5, Some(5));
            assert_eq!(
                v,
                Verdict {
                    redeliver: false,
                    is_final: false
                }
            );
        }
    }
}
