//! A batch handled: the [`SyncService`] operations that plan its jobs (one per destination key,
//! for the newest event), run them under the invocation's cut-off, record them, write the
//! records and answer SQS; and the aborts of uploads a cut-off left open.

use super::messages::{job_of, message_info, tokio_now, MessageInfo, Slot};
use super::write_ahead::{SentOnce, WriteAheads};
use super::{BatchReport, Invocation, SyncService};
use crate::outcome::{Outcome, OutcomeKind};
use crate::store::destination::DestinationStore;
use crate::store::results::{results_key, to_json_lines, ResultsStore};
use crate::store::source::SourceStore;
use crate::sync::copy::{Copier, JobReport, Limits};
use crate::sync::decide::{self, verdict, Verdict};
use crate::sync::plan::{newest_first, Evidence};
use crate::sync::recheck::RecheckQueue;
use crate::sync::resume::{RangeJob, Resume};
use crate::telemetry::{metrics_line, outcome_line};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use time::OffsetDateTime;

impl<S: SourceStore, D: DestinationStore, R: ResultsStore, Q: RecheckQueue>
    SyncService<S, D, R, Q>
{
    /// Handles one SQS batch with no deadline. `invocation` names the results object.
    pub async fn handle(&self, event: &SqsEvent, invocation: &str) -> BatchReport {
        self.handle_within(
            event,
            Invocation {
                id: invocation,
                deadline: None,
                recheck_after: None,
            },
        )
        .await
    }

    /// Handles one SQS batch within an invocation's deadline.
    pub async fn handle_within(&self, event: &SqsEvent, inv: Invocation<'_>) -> BatchReport {
        let started = tokio_now(inv.deadline);
        let cutoff = inv.deadline.zip(started).map(|(d, now)| {
            d.checked_sub(decide::margin(d.saturating_duration_since(now)))
                .unwrap_or(now)
        });
        // The margin after the cut-off: three quarters for aborts, then the results write, which
        // must be done with an eighth of it still to spare for the answer.
        let share = |eighths: u32| {
            inv.deadline
                .zip(cutoff)
                .map(|(d, c)| c + d.saturating_duration_since(c) * eighths / 8)
        };
        let (abort_by, write_by) = (share(6), share(7));
        // What an earlier invocation's cut-off left open and could not abort.
        self.abort_abandoned_uploads(cutoff).await;
        let messages: Vec<MessageInfo<'_>> = event.records.iter().map(message_info).collect();
        // Records are kept per message and position so the output follows the input.
        let mut records: BTreeMap<(usize, usize), Outcome> = BTreeMap::new();
        // Superseded events and the job that answers for them: if that job's message comes
        // again, so do theirs (their writes may be the ones it had to confirm).
        let mut superseded_by: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
        let slots = self.parse(event, &messages, &mut records);
        let slots = self
            .leave_rechecks(
                event,
                &messages,
                slots,
                &mut records,
                cutoff,
                inv.recheck_after,
            )
            .await;

        // One job per destination key, for the newest event; the others are superseded by it.
        // A range job is a job of its own (one per range: the ranges of a fanned-out copy are
        // often delivered together, and each must upload its own), never grouped with the
        // key's events.
        let mut by_key: BTreeMap<(&str, Option<String>), Vec<&Slot>> = BTreeMap::new();
        for s in &slots {
            let range = messages[s.message].range.as_ref().map(RangeJob::attribute);
            by_key
                .entry((s.dest_key.as_str(), range))
                .or_default()
                .push(s);
        }
        let mut jobs: Vec<(&Slot, Vec<&str>)> = Vec::new();
        for group in by_key.values() {
            let evidence: Vec<Evidence<'_>> = group
                .iter()
                .map(|s| Evidence::of(&s.event, (s.message, s.position)))
                .collect();
            let order = newest_first(&evidence);
            let chosen = group[order[0]];
            let answers_for: BTreeSet<&str> = group
                .iter()
                .map(|s| messages[s.message].stands_for)
                .collect();
            jobs.push((chosen, answers_for.into_iter().collect()));
            for &i in &order[1..] {
                let older = group[i];
                let mut o = self.event_record(
                    &messages[older.message],
                    &older.event,
                    OutcomeKind::Superseded,
                );
                o.dest_key = Some(older.dest_key.clone());
                o.error_message = Some(match &messages[older.message].range {
                    Some(r) => format!(
                        "the same range job ({}) came twice in this batch; message {} uploads it",
                        r.attribute(),
                        messages[chosen.message].id
                    ),
                    None => format!(
                        "a newer event for this key in the same batch was handled (message {})",
                        messages[chosen.message].id
                    ),
                });
                records.insert((older.message, older.position), o);
                superseded_by.insert(
                    (older.message, older.position),
                    (chosen.message, chosen.position),
                );
            }
        }

        let write_aheads = WriteAheads {
            // Not a key OSS cannot hold: its job fails before any request, and a write-ahead
            // sent with the others would only fail the same way again.
            together: jobs
                .iter()
                .filter(|(slot, _)| crate::oss::limits::check_key(&slot.dest_key).is_ok())
                .filter(|(slot, answers_for)| {
                    let read_first = self.recent_writes.reads_first(&slot.dest_key);
                    !decide::reads_dest_first(&job_of(
                        slot,
                        &messages[slot.message],
                        answers_for,
                        read_first,
                    ))
                })
                .map(|(slot, _)| messages[slot.message].stands_for)
                .collect(),
            together_sent: tokio::sync::OnceCell::new(),
            queue: &self.rechecks,
            outlast: inv.deadline.filter(|_| inv.recheck_after.is_none()),
            rechecks: jobs
                .iter()
                .map(|(slot, _)| {
                    let info = &messages[slot.message];
                    let after = inv.recheck_after.unwrap_or(self.recheck_after);
                    let mut recheck = info.recheck(&event.records[slot.message], after);
                    // The message itself stays: it is acknowledged, or comes again, by how its
                    // jobs end. A write-ahead is a plain recheck, even of a range job: it looks at
                    // the key, not at a range.
                    recheck.receipt = None;
                    recheck.range = None;
                    (info.stands_for, (recheck, SentOnce::new()))
                })
                .collect(),
        };
        let copier = Copier {
            source: &self.source,
            dest: &self.dest,
            options: &self.options,
            write_ahead: Some(&write_aheads),
            resume: self.checkpoints.as_deref().map(|store| Resume {
                store,
                task: &self.task_id,
                results_prefix: &self.results_prefix,
                source_bucket: &self.binding.source_bucket,
            }),
        };
        let limits = Limits {
            cutoff,
            bytes_per_sec: self.throughput.bytes_per_sec(),
        };
        let done: Vec<((usize, usize), Outcome, bool)> = futures_util::stream::iter(&jobs)
            .map(|(slot, answers_for)| {
                let copier = &copier;
                let info = &messages[slot.message];
                async move {
                    let started = Instant::now();
                    let read_first = self.recent_writes.reads_first(&slot.dest_key);
                    let job = job_of(slot, info, answers_for, read_first);
                    let moved = std::sync::atomic::AtomicU64::new(0);
                    let run = copier.run_counted(&job, &limits, &moved);
                    let (report, cut) = match cutoff {
                        None => (run.await, false),
                        Some(at) => match tokio::time::timeout_at(at, run).await {
                            Ok(r) => (r, false),
                            Err(_) => {
                                let moved = moved.load(std::sync::atomic::Ordering::Relaxed);
                                (JobReport::cut_off(started.elapsed(), moved), true)
                            }
                        },
                    };
                    if matches!(
                        report.outcome,
                        OutcomeKind::Copied | OutcomeKind::InProgress
                    ) {
                        self.throughput
                            .observe(report.bytes_moved, started.elapsed());
                    }
                    self.recent_writes.observe(&slot.dest_key, &report);
                    let o = self.job_record(info, slot, report, started);
                    ((slot.message, slot.position), o, cut)
                }
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        let any_cut = done.iter().any(|(_, _, cut)| *cut);
        records.extend(done.into_iter().map(|(at, e, _)| (at, e)));
        if any_cut {
            self.abort_abandoned_uploads(abort_by).await;
        }

        let mut verdicts: BTreeMap<(usize, usize), Verdict> = records
            .iter()
            .map(|(&(mi, pi), o)| {
                let v = verdict(
                    o.outcome,
                    o.error_code.as_deref(),
                    messages[mi].receive_count,
                    self.max_receive_count,
                );
                ((mi, pi), v)
            })
            .collect();
        let last_delivery = |mi: usize| {
            self.max_receive_count
                .is_some_and(|max| messages[mi].receive_count >= max)
        };
        for (older, chosen) in &superseded_by {
            if verdicts.get(chosen).is_some_and(|v| v.redeliver) {
                let is_final = last_delivery(older.0);
                verdicts.insert(
                    *older,
                    Verdict {
                        redeliver: true,
                        is_final,
                    },
                );
            }
        }
        let mut failed: BTreeSet<&str> = verdicts
            .iter()
            .filter(|(_, v)| v.redeliver)
            .map(|(&(mi, _), _)| messages[mi].id)
            .collect();
        self.send_continuations(event, &messages, &mut records, &mut failed)
            .await;
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(records.len());
        for ((mi, pi), mut outcome) in records {
            // A message that comes again brings all its events again: none has its last word yet.
            let again = failed.contains(messages[mi].id) && !last_delivery(mi);
            outcome.is_final = verdicts[&(mi, pi)].is_final && !again;
            outcomes.push(outcome);
        }
        let now = OffsetDateTime::now_utc();
        let key = results_key(&self.results_prefix, &self.task_id, now, inv.id);
        let put = self.results.put(&key, to_json_lines(&outcomes));
        let written = match write_by {
            None => put.await.map_err(|e| crate::errors::error_chain(&e)),
            Some(by) => match tokio::time::timeout_at(by, put).await {
                Ok(r) => r.map_err(|e| crate::errors::error_chain(&e)),
                Err(_) => Err("the invocation's deadline came during the write".to_owned()),
            },
        };
        let results_error = match written {
            Ok(()) => None,
            Err(e) => {
                failed = messages.iter().map(|m| m.id).collect();
                Some(e)
            }
        };
        for o in &outcomes {
            (self.sink)(&outcome_line(o));
        }
        if let Some(e) = &results_error {
            (self.sink)(
                &serde_json::json!({
                    "level": "ERROR",
                    "message": "the outcome records could not be written; every message of the batch is reported failed",
                    "task": self.task_id,
                    "results_key": key,
                    "error": e,
                    "messages": messages.len(),
                })
                .to_string(),
            );
        }
        (self.sink)(&metrics_line(
            &self.task_id,
            &outcomes,
            failed.len(),
            (now.unix_timestamp_nanos() / 1_000_000) as i64,
        ));
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failed
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.to_owned();
                failure
            })
            .collect();
        BatchReport {
            response,
            outcomes,
            results_key: key,
            results_error,
        }
    }

    /// Aborts the multipart uploads left open by jobs stopped at a cut-off (this invocation's, or
    /// an earlier one's whose aborts did not all succeed), before the deadline. Failures stay on
    /// the list for the next invocation; the upload sweep catches what a killed process left.
    async fn abort_abandoned_uploads(&self, deadline: Option<tokio::time::Instant>) {
        let abort = self.dest.abort_abandoned_uploads();
        let out = match deadline {
            None => abort.await,
            Some(d) => match tokio::time::timeout_at(d, abort).await {
                Ok(out) => out,
                Err(_) => {
                    tracing::warn!("the deadline came while aborting abandoned uploads; the rest wait for the next invocation");
                    return;
                }
            },
        };
        if out.aborted > 0 || !out.failed.is_empty() {
            let failed: Vec<String> = out
                .failed
                .iter()
                .map(|(u, e)| format!("{} ({}): {e}", u.key, u.upload_id))
                .collect();
            (self.sink)(
                &serde_json::json!({
                    "level": if failed.is_empty() { "INFO" } else { "WARN" },
                    "message": "abandoned multipart uploads aborted",
                    "task": self.task_id,
                    "aborted": out.aborted,
                    "failed": failed,
                })
                .to_string(),
            );
        }
    }
}
