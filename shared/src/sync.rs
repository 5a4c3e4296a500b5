//! The sync handler: an SQS batch in, a partial batch response out. Every event gets exactly one
//! outcome record; the records are written to the results store before anything is acknowledged.

use crate::copy::{Copier, CopyOptions, Job, JobKind, JobReport};
use crate::destination::DestinationStore;
use crate::event::{parse_message, sequencer_cmp, EventKind, Message, ObjectEvent};
use crate::outcome::{format_time, Outcome, OutcomeKind};
use crate::results::{results_key, to_json_lines, ResultsStore};
use crate::source::SourceStore;
use crate::task::TaskBinding;
use crate::telemetry::{metrics_line, outcome_line, LineSink};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use time::OffsetDateTime;

/// Everything the handler needs, built once per process.
pub struct SyncService<S, D, R> {
    /// Task id.
    pub task_id: String,
    /// Which events are the task's and where they land.
    pub binding: TaskBinding,
    /// How copies are made.
    pub options: CopyOptions,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Results store prefix.
    pub results_prefix: String,
    /// The source bucket.
    pub source: S,
    /// The destination bucket.
    pub dest: D,
    /// The results store.
    pub results: R,
    /// Where log and metric lines go.
    pub sink: LineSink,
}

/// What one batch came to.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// The answer for SQS: the messages to deliver again.
    pub response: SqsBatchResponse,
    /// Every record, in message order.
    pub outcomes: Vec<Outcome>,
    /// Where the records were written.
    pub results_key: String,
    /// Why the records could not be written (then every message is reported failed).
    pub results_error: Option<String>,
}

/// One parsed event with its place in the batch.
struct Slot {
    message: usize,
    position: usize,
    event: ObjectEvent,
    dest_key: String,
}

/// Newest first: by sequencer when both have one, then by event time, then by position.
fn newest_first(a: &Slot, b: &Slot) -> Ordering {
    let by_sequencer = match (&a.event.sequencer, &b.event.sequencer) {
        (Some(x), Some(y)) => sequencer_cmp(y, x),
        _ => Ordering::Equal,
    };
    by_sequencer
        .then_with(|| b.event.time.cmp(&a.event.time))
        .then_with(|| b.position.cmp(&a.position))
}

struct MessageInfo<'a> {
    id: &'a str,
    receive_count: u32,
}

fn message_info(m: &SqsMessage) -> MessageInfo<'_> {
    MessageInfo {
        id: m.message_id.as_deref().unwrap_or_default(),
        receive_count: m
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

impl<S: SourceStore, D: DestinationStore, R: ResultsStore> SyncService<S, D, R> {
    fn record(&self, m: &MessageInfo<'_>, kind: OutcomeKind) -> Outcome {
        Outcome {
            task: self.task_id.clone(),
            processed_at: format_time(OffsetDateTime::now_utc()),
            event_time: None,
            event_name: None,
            bucket: None,
            source_key: None,
            dest_key: None,
            version_id: None,
            sequencer: None,
            source_etag: None,
            size: None,
            bytes_moved: 0,
            outcome: kind,
            error_code: None,
            error_message: None,
            dropped_metadata: Vec::new(),
            attempts: 0,
            requests: 0,
            duration_ms: 0,
            request_ids: Vec::new(),
            message_id: m.id.to_owned(),
            receive_count: m.receive_count,
            crc64: None,
        }
    }

    fn event_record(&self, m: &MessageInfo<'_>, e: &ObjectEvent, kind: OutcomeKind) -> Outcome {
        Outcome {
            event_time: e.time.clone(),
            event_name: Some(e.name.clone()),
            bucket: Some(e.bucket.clone()),
            source_key: Some(e.key.clone()),
            version_id: e.version_id.clone(),
            sequencer: e.sequencer.clone(),
            source_etag: e.etag.clone(),
            size: e.size,
            ..self.record(m, kind)
        }
    }

    fn with_reason(mut o: Outcome, code: &str, message: String) -> Outcome {
        o.error_code = Some(code.to_owned());
        o.error_message = Some(message);
        o
    }

    /// Handles one SQS batch. `invocation` names the results object (the Lambda request id).
    pub async fn handle(&self, event: &SqsEvent, invocation: &str) -> BatchReport {
        let messages: Vec<MessageInfo<'_>> = event.records.iter().map(message_info).collect();
        // Records are kept per message and position so the output follows the input.
        let mut records: BTreeMap<(usize, usize), Outcome> = BTreeMap::new();
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

        // One job per destination key, for the newest event; the others are superseded by it.
        let mut by_key: BTreeMap<&str, Vec<&Slot>> = BTreeMap::new();
        for s in &slots {
            by_key.entry(s.dest_key.as_str()).or_default().push(s);
        }
        let mut jobs: Vec<&Slot> = Vec::new();
        for group in by_key.values_mut() {
            group.sort_by(|a, b| newest_first(a, b));
            let chosen = group[0];
            jobs.push(chosen);
            for older in &group[1..] {
                let mut o = self.event_record(
                    &messages[older.message],
                    &older.event,
                    OutcomeKind::Superseded,
                );
                o.dest_key = Some(older.dest_key.clone());
                o.error_message = Some(format!(
                    "a newer event for this key in the same batch was handled (message {})",
                    messages[chosen.message].id
                ));
                records.insert((older.message, older.position), o);
            }
        }

        let copier = Copier {
            source: &self.source,
            dest: &self.dest,
            options: &self.options,
        };
        let done: Vec<((usize, usize), Outcome)> = futures_util::stream::iter(jobs)
            .map(|slot| {
                let copier = &copier;
                let info = &messages[slot.message];
                async move {
                    let started = Instant::now();
                    let job = Job {
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
                    };
                    let report = copier.run(&job).await;
                    let o = self.job_record(info, slot, report, started);
                    ((slot.message, slot.position), o)
                }
            })
            .buffer_unordered(self.concurrency.max(1))
            .collect()
            .await;
        records.extend(done);
        let outcomes: Vec<Outcome> = records.into_values().collect();

        let mut failed: BTreeSet<&str> = outcomes
            .iter()
            .filter(|o| o.outcome.fails_message())
            .map(|o| o.message_id.as_str())
            .collect();
        let now = OffsetDateTime::now_utc();
        let key = results_key(&self.results_prefix, &self.task_id, now, invocation);
        let results_error = match self.results.put(&key, to_json_lines(&outcomes)).await {
            Ok(()) => None,
            Err(e) => {
                failed = messages.iter().map(|m| m.id).collect();
                Some(e.to_string())
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
        let response = SqsBatchResponse {
            batch_item_failures: failed
                .into_iter()
                .map(|id| BatchItemFailure {
                    item_identifier: id.to_owned(),
                })
                .collect(),
        };
        BatchReport {
            response,
            outcomes,
            results_key: key,
            results_error,
        }
    }

    fn job_record(
        &self,
        info: &MessageInfo<'_>,
        slot: &Slot,
        r: JobReport,
        started: Instant,
    ) -> Outcome {
        let mut o = self.event_record(info, &slot.event, r.outcome);
        o.dest_key = Some(slot.dest_key.clone());
        if r.source_etag.is_some() {
            o.source_etag = r.source_etag;
        }
        if r.version_id.is_some() {
            o.version_id = r.version_id;
        }
        if r.size.is_some() {
            o.size = r.size;
        }
        o.bytes_moved = r.bytes_moved;
        o.crc64 = r.crc64;
        o.attempts = r.rounds.max(1);
        o.requests = r.requests;
        o.request_ids = r.request_ids;
        o.dropped_metadata = r.dropped_metadata;
        o.duration_ms = started.elapsed().as_millis() as u64;
        match r.error {
            Some(e) => {
                o.error_code = Some(e.code);
                o.error_message = Some(e.message);
            }
            None => o.error_message = r.note,
        }
        o.processed_at = format_time(OffsetDateTime::now_utc());
        o
    }
}
