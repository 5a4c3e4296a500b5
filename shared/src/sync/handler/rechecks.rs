//! The [`SyncService`] operations that send a batch's messages back: before any job runs, a
//! message this delivery was not the first to receive is handed to a recheck; after the jobs, a
//! message with a copy in progress is sent back as a continuation.

use super::messages::{MessageInfo, Slot};
use super::write_ahead::send_by;
use super::{SyncService, CONTINUATION_NOT_QUEUED};
use crate::outcome::{Outcome, OutcomeKind};
use crate::store::destination::DestinationStore;
use crate::store::results::ResultsStore;
use crate::store::source::SourceStore;
use crate::sync::copy::{FANNED_OUT, RANGE_UPLOADED, RECHECK_NOT_QUEUED};
use crate::sync::decide;
use crate::sync::recheck::{self, Recheck, RecheckQueue};
use aws_lambda_events::event::sqs::SqsEvent;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

impl<S: SourceStore, D: DestinationStore, R: ResultsStore, Q: RecheckQueue>
    SyncService<S, D, R, Q>
{
    /// Sends back, at once, every message with a copy in progress that is not coming again anyway,
    /// so the next delivery continues the copy (a continuation: a recheck of the message without
    /// delay). The message itself is acknowledged: a redelivery would raise its receive count
    /// until a long copy ended in the DLQ while making progress. A continuation that cannot be
    /// sent leaves its message reported failed (it comes again and resumes after the hand-over's
    /// delay), and its record says so.
    pub(super) async fn send_continuations<'m>(
        &self,
        event: &SqsEvent,
        messages: &[MessageInfo<'m>],
        records: &mut BTreeMap<(usize, usize), Outcome>,
        failed: &mut BTreeSet<&'m str>,
    ) {
        // A fanned-out copy's message and a range job that uploaded its range are done: the
        // range jobs carry the copy on.
        let wanted: BTreeSet<usize> = records
            .iter()
            .filter(|(_, o)| {
                o.outcome == OutcomeKind::InProgress
                    && !matches!(o.error_code.as_deref(), Some(FANNED_OUT | RANGE_UPLOADED))
            })
            .map(|(&(mi, _), _)| mi)
            .filter(|&mi| !failed.contains(messages[mi].id))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let continuations: Vec<Recheck> = wanted
            .iter()
            .map(|&mi| {
                let mut c = messages[mi].recheck(&event.records[mi], Duration::ZERO);
                c.receipt = None;
                c
            })
            .collect();
        let sent = self.rechecks.send(&continuations).await;
        for (&mi, result) in wanted.iter().zip(sent) {
            let Err(why) = result else { continue };
            failed.insert(messages[mi].id);
            for ((m, _), o) in records.iter_mut() {
                if *m == mi && o.outcome == OutcomeKind::InProgress {
                    o.error_code = Some(CONTINUATION_NOT_QUEUED.to_owned());
                    o.error_message = Some(format!(
                        "{}; the continuation could not be queued ({why}), so the message comes again",
                        o.error_message.as_deref().unwrap_or("copy in progress")
                    ));
                }
            }
        }
    }

    /// Hands over to a recheck, before any job runs, every message this delivery was not the first
    /// to receive: it is sent again, delayed until every earlier delivery is over, and
    /// acknowledged here without work (recorded `deferred`, `Rechecking`); a recheck still waiting
    /// is sent on for its next hop. If they cannot be sent, those messages' events are recorded
    /// failed (`RecheckNotQueued`) and come again. A message whose chain has had
    /// `maxReceiveCount` deliveries (or [`recheck::CHAIN_LIMIT`] when that is unknown) is worked on
    /// where it is, and ends in the DLQ if it fails.
    pub(super) async fn leave_rechecks(
        &self,
        event: &SqsEvent,
        messages: &[MessageInfo<'_>],
        slots: Vec<Slot>,
        records: &mut BTreeMap<(usize, usize), Outcome>,
        by: Option<tokio::time::Instant>,
        after: Option<Duration>,
    ) -> Vec<Slot> {
        let with_jobs: BTreeSet<usize> = slots.iter().map(|s| s.message).collect();
        let after = after.unwrap_or(self.recheck_after);
        let rechecks: Vec<(usize, Recheck)> = event
            .records
            .iter()
            .enumerate()
            .filter_map(|(mi, m)| {
                let info = &messages[mi];
                if info.wait > 0 {
                    // The next hop: the chain's count stays (this delivery did no work).
                    let mut r = info.recheck(m, Duration::from_secs(info.wait));
                    r.attempts = info.attempts_before;
                    return Some((mi, r));
                }
                let r = info.recheck(m, after);
                let hand_over = info.receive_count > 1
                    && with_jobs.contains(&mi)
                    && r.attempts + 1 < self.max_receive_count.unwrap_or(recheck::CHAIN_LIMIT);
                hand_over.then_some((mi, r))
            })
            .collect();
        if rechecks.is_empty() {
            return slots;
        }
        let list: Vec<Recheck> = rechecks.iter().map(|(_, r)| r.clone()).collect();
        let sent = send_by(&self.rechecks, &list, by).await;
        // Per message handed over: its delay, or why its recheck could not be queued.
        let handed: BTreeMap<usize, Result<Duration, String>> = rechecks
            .iter()
            .zip(sent)
            .map(|((mi, r), sent)| {
                let result = sent.map(|()| r.after).map_err(|why| {
                    format!("the recheck this delivery must leave could not be queued, so the message comes again: {why}")
                });
                (*mi, result)
            })
            .collect();
        for (&(mi, _), o) in records.iter_mut() {
            if let Some(Err(why)) = handed.get(&mi) {
                if o.error_code.as_deref() == Some(decide::RECHECK_WAITING) {
                    o.outcome = OutcomeKind::Failed;
                    o.error_code = Some(RECHECK_NOT_QUEUED.to_owned());
                    o.error_message = Some(why.clone());
                }
            }
        }
        let (held, kept): (Vec<Slot>, Vec<Slot>) = slots
            .into_iter()
            .partition(|s| handed.contains_key(&s.message));
        for s in held {
            let info = &messages[s.message];
            let (kind, code, why) = match &handed[&s.message] {
                Err(why) => (OutcomeKind::Failed, RECHECK_NOT_QUEUED, why.clone()),
                Ok(after) => (
                    OutcomeKind::Deferred,
                    decide::RECHECKING,
                    format!(
                        "delivered again (receive count {}): handed to a recheck of message {} that runs in {} s, once every earlier delivery is over",
                        info.receive_count,
                        info.stands_for,
                        after.as_secs()
                    ),
                ),
            };
            let mut o = self.event_record(info, &s.event, kind);
            o.dest_key = Some(s.dest_key.clone());
            records.insert((s.message, s.position), Self::with_reason(o, code, why));
        }
        kept
    }
}
