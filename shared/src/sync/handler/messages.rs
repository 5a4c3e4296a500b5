//! A batch's messages: what each says of itself (receive count, the message it stands for, a
//! recheck's wait, a range job's parts), the [`SyncService`] operation that parses their events
//! into records and slots, and the job for a slot.

use super::SyncService;
use crate::event::{parse_message, EventKind, Message, ObjectEvent};
use crate::outcome::{Outcome, OutcomeKind};
use crate::store::destination::DestinationStore;
use crate::store::results::ResultsStore;
use crate::store::source::SourceStore;
use crate::sync::copy::{Job, JobKind};
use crate::sync::decide;
use crate::sync::recheck::{self, Recheck, RecheckQueue};
use crate::sync::resume::RangeJob;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use std::collections::BTreeMap;
use std::time::Duration;

/// One parsed event with its place in the batch.
pub(super) struct Slot {
    pub(super) message: usize,
    pub(super) position: usize,
    pub(super) event: ObjectEvent,
    pub(super) dest_key: String,
}

pub(super) struct MessageInfo<'a> {
    pub(super) id: &'a str,
    pub(super) receive_count: u32,
    /// The message this one stands for: the original when it is a recheck, else itself. Jobs
    /// answer for it (markers written for it are not trusted) and write it into markers.
    pub(super) stands_for: &'a str,
    /// For a recheck: the message it stands for.
    pub(super) recheck_of: Option<&'a str>,
    /// Seconds a recheck must still wait before it runs.
    pub(super) wait: u64,
    /// Deliveries of a recheck's chain before it.
    pub(super) attempts_before: u32,
    /// For a range job: its parts.
    pub(super) range: Option<RangeJob>,
}

impl MessageInfo<'_> {
    /// Whether this is the message's first delivery from its source: received once, not a
    /// recheck or a continuation, not a range job. A message without a receive count (Lambda and
    /// SQS always give one) is not taken for a first delivery.
    fn first_delivery(&self) -> bool {
        self.receive_count == 1 && self.recheck_of.is_none() && self.range.is_none()
    }

    /// A recheck of this delivery's message `m`, delayed by `after`: it stands for what the message
    /// stands for, counts the chain's deliveries so far, and deletes this delivery once sent.
    pub(super) fn recheck(&self, m: &SqsMessage, after: Duration) -> Recheck {
        Recheck {
            body: m.body.clone().unwrap_or_default(),
            of: self.stands_for.to_owned(),
            after,
            queue_arn: m.event_source_arn.clone(),
            attempts: self.attempts_before + self.receive_count.saturating_sub(1),
            receipt: m.receipt_handle.clone(),
            range: self.range.as_ref().map(RangeJob::attribute),
        }
    }
}

pub(super) fn message_info(m: &SqsMessage) -> MessageInfo<'_> {
    let id = m.message_id.as_deref().unwrap_or_default();
    let recheck_of = recheck::recheck_of(m);
    MessageInfo {
        id,
        receive_count: m
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        stands_for: recheck_of.unwrap_or(id),
        recheck_of,
        wait: recheck::still_to_wait(m),
        attempts_before: recheck::attempts_before(m),
        range: recheck::range_of(m).and_then(RangeJob::parse),
    }
}

/// The job for a slot's event, answering for `answers_for`; `read_first` when this process reads
/// the destination first for its key whatever the delivery (it is then not taken for a first
/// delivery: see [`RecentWrites`](super::RecentWrites)).
pub(super) fn job_of<'a>(
    slot: &'a Slot,
    info: &'a MessageInfo<'a>,
    answers_for: &'a [&'a str],
    read_first: bool,
) -> Job<'a> {
    Job {
        kind: if slot.event.kind == EventKind::Removed {
            JobKind::Remove
        } else {
            JobKind::Create
        },
        source_key: &slot.event.key,
        dest_key: &slot.dest_key,
        etag: slot.event.etag.as_deref(),
        size: slot.event.size,
        sequencer: slot.event.sequencer.as_deref(),
        message_id: Some(info.stands_for).filter(|id| !id.is_empty()),
        answers_for,
        range: info.range.as_ref(),
        first_delivery: info.first_delivery() && !from_ctl(&slot.event.name) && !read_first,
    }
}

/// Whether an event was sent by `ctl` (a backfill, a verification's repair or a retry) rather
/// than by S3.
fn from_ctl(name: &str) -> bool {
    use crate::event::{BACKFILL_EVENT, RETRY_EVENT, VERIFY_EVENT};
    [BACKFILL_EVENT, VERIFY_EVENT, RETRY_EVENT].contains(&name)
}

/// The tokio clock's now, read only when there is a deadline (so a handler without one touches no
/// timer and runs on any executor).
pub(super) fn tokio_now(deadline: Option<tokio::time::Instant>) -> Option<tokio::time::Instant> {
    deadline.map(|_| tokio::time::Instant::now())
}

impl<S: SourceStore, D: DestinationStore, R: ResultsStore, Q: RecheckQueue>
    SyncService<S, D, R, Q>
{
    /// Parses every message into records (for what needs no job) and slots (for what does).
    pub(super) fn parse(
        &self,
        event: &SqsEvent,
        messages: &[MessageInfo<'_>],
        records: &mut BTreeMap<(usize, usize), Outcome>,
    ) -> Vec<Slot> {
        let mut slots: Vec<Slot> = Vec::new();
        for (mi, msg) in event.records.iter().enumerate() {
            let info = &messages[mi];
            let parsed = match msg.body.as_deref() {
                None => Err("the message has no body".to_owned()),
                Some(body) => parse_message(body).map_err(|e| e.to_string()),
            };
            match parsed {
                Err(why) => {
                    let o = self.record(info, OutcomeKind::Invalid);
                    records.insert((mi, 0), Self::with_reason(o, "InvalidMessage", why));
                }
                Ok(Message::Test { bucket }) => {
                    let mut o = self.record(info, OutcomeKind::Ignored);
                    o.event_name = Some("s3:TestEvent".into());
                    o.bucket = bucket;
                    records.insert((mi, 0), o);
                }
                Ok(Message::Events(events)) => {
                    for (pi, ev) in events.into_iter().enumerate() {
                        let o = match ev {
                            Err(e) => Self::with_reason(
                                self.record(info, OutcomeKind::Invalid),
                                "InvalidRecord",
                                e.to_string(),
                            ),
                            Ok(e) => match self.binding.dest_key(&e.bucket, &e.key) {
                                Err(why) => Self::with_reason(
                                    self.event_record(info, &e, OutcomeKind::Filtered),
                                    why.code(),
                                    why.to_string(),
                                ),
                                Ok(_) if e.kind == EventKind::Other => Self::with_reason(
                                    self.event_record(info, &e, OutcomeKind::Ignored),
                                    "UnhandledEventKind",
                                    format!("{} events are not synced", e.name),
                                ),
                                Ok(_)
                                    if e.kind == EventKind::Removed
                                        && !self.options.sync_deletes =>
                                {
                                    let mut o = self.event_record(info, &e, OutcomeKind::Ignored);
                                    o.error_message = Some("delete sync is off".into());
                                    o
                                }
                                Ok(_) if info.wait > 0 => Self::with_reason(
                                    self.event_record(info, &e, OutcomeKind::Ignored),
                                    decide::RECHECK_WAITING,
                                    format!(
                                        "a recheck of message {}, sent on to run in {} s",
                                        info.stands_for, info.wait
                                    ),
                                ),
                                Ok(dest_key) => {
                                    slots.push(Slot {
                                        message: mi,
                                        position: pi,
                                        event: e,
                                        dest_key,
                                    });
                                    continue;
                                }
                            },
                        };
                        records.insert((mi, pi), o);
                    }
                }
            }
        }
        slots
    }
}
