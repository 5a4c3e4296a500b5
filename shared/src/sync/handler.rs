//! The sync handler: an SQS batch in, a partial batch response out. Every event gets exactly one
//! outcome record; the records are written to the results store before anything is acknowledged.
//!
//! Within an invocation's deadline: no job starts at or after the cut-off (the deadline less a
//! margin kept for the results write, the aborts and the answer), no copy starts that could not
//! finish before it, and jobs still running at the cut-off are stopped there (their multipart
//! uploads aborted) and recorded `deferred`, so every event of the batch has a record, finished
//! messages are acknowledged and the rest come again.
//!
//! Rechecks ([`crate::sync::recheck`]): a job's first write waits until its message has left a delayed
//! recheck on the queue (another delivery of the message may acknowledge it while this write is
//! still to land), and a later delivery of a message (receive count above 1) hands its events to
//! a delayed recheck instead of working on them while an earlier delivery may still run.

use crate::event::{parse_message, EventKind, Message, ObjectEvent};
use crate::outcome::{format_time, Outcome, OutcomeKind};
use crate::store::checkpoints::CheckpointStore;
use crate::store::destination::DestinationStore;
use crate::store::results::{results_key, to_json_lines, ResultsStore};
use crate::store::source::SourceStore;
use crate::sync::copy::{
    Copier, CopyOptions, Job, JobKind, JobReport, Limits, WriteAhead, FANNED_OUT, RANGE_UPLOADED,
    RECHECK_NOT_QUEUED,
};
use crate::sync::decide::{self, verdict, Verdict};
use crate::sync::plan::{newest_first, Evidence};
use crate::sync::recheck::{self, Recheck, RecheckQueue};
use crate::sync::resume::{RangeJob, Resume};
use crate::task::TaskBinding;
use crate::telemetry::{metrics_line, outcome_line, LineSink};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The copy rate assumed before this process has measured one: 25 MiB/s.
pub const ASSUMED_BYTES_PER_SEC: f64 = 25.0 * 1024.0 * 1024.0;

/// The copy rate this process has seen (an exponentially weighted average over copies of at least
/// 1 MiB), used to decide whether a copy can finish before an invocation's cut-off.
#[derive(Debug)]
pub struct Throughput(Mutex<f64>);

impl Default for Throughput {
    fn default() -> Self {
        Self(Mutex::new(ASSUMED_BYTES_PER_SEC))
    }
}

impl Throughput {
    /// Bytes per second expected of the next copy.
    pub fn bytes_per_sec(&self) -> f64 {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Learns from one copy.
    pub fn observe(&self, bytes: u64, took: Duration) {
        if bytes < 1 << 20 || took.is_zero() {
            return;
        }
        let rate = bytes as f64 / took.as_secs_f64();
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *r = 0.7 * *r + 0.3 * rate;
    }
}

/// What this process has learned from its own work on the destination: the keys it copied lately
/// (the last [`RecentWrites::CAPACITY`] distinct ones), and whether the destination has accepted
/// its requests since it started or last refused them for the configuration.
///
/// [`decide::reads_dest_first`] lets a small object's first delivery write without reading the
/// destination first, its write-ahead recheck sent just before the write. That is only a cost
/// rule, and a job reads the destination first after all
/// - for a key this process copied lately: S3's duplicate of an event it just copied is settled by
///   one HEAD instead of copied again;
/// - until the destination has accepted a request of this process (a fresh instance), and again
///   after it refused one for the credentials, the permissions or the bucket: the HEAD is then
///   what is refused, before any recheck is sent, so a wrong secret leaves one failed message per
///   event (not the event's and its write-ahead's).
#[derive(Debug)]
pub struct RecentWrites {
    capacity: usize,
    keys: Mutex<(
        std::collections::HashSet<String>,
        std::collections::VecDeque<String>,
    )>,
    accepted: std::sync::atomic::AtomicBool,
}

impl Default for RecentWrites {
    fn default() -> Self {
        Self::new(Self::CAPACITY)
    }
}

impl RecentWrites {
    /// Keys remembered by default (about half a MiB of keys).
    pub const CAPACITY: usize = 4096;

    /// Remembers up to `capacity` keys (0: none); the destination is not taken as accepting yet.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            keys: Mutex::default(),
            accepted: Default::default(),
        }
    }

    /// The same, with the destination taken as accepting this process's requests (a warm
    /// instance's state after its first write).
    pub fn accepting(self) -> Self {
        self.accepted
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// Whether the destination accepted this process's requests since it started or last
    /// refused one for the configuration.
    pub fn destination_accepts(&self) -> bool {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Learns from a finished job: what it wrote, and what the destination said.
    fn observe(&self, dest_key: &str, report: &JobReport) {
        use std::sync::atomic::Ordering::Relaxed;
        match report.outcome {
            OutcomeKind::Copied => {
                self.add(dest_key);
                self.accepted.store(true, Relaxed);
            }
            OutcomeKind::Skipped | OutcomeKind::Deleted | OutcomeKind::InProgress => {
                self.accepted.store(true, Relaxed);
            }
            OutcomeKind::Failed
                if report
                    .error
                    .as_ref()
                    .is_some_and(|e| crate::oss::error::refuses_configuration(&e.code)) =>
            {
                self.accepted.store(false, Relaxed);
            }
            _ => {}
        }
    }

    /// Whether a first delivery for `key` reads the destination first after all.
    fn reads_first(&self, key: &str) -> bool {
        !self.destination_accepts() || self.contains(key)
    }

    /// Whether `key` was copied lately.
    pub fn contains(&self, key: &str) -> bool {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.0.contains(key)
    }

    fn add(&self, key: &str) {
        if self.capacity == 0 {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = &mut *keys;
        if set.insert(key.to_owned()) {
            order.push_back(key.to_owned());
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }
}

/// Everything the handler needs, built once per process.
pub struct SyncService<S, D, R, Q> {
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
    /// The queue's `maxReceiveCount` (from its redrive policy), if known: a failure on the last
    /// delivery is recorded as final.
    pub max_receive_count: Option<u32>,
    /// The copy rate seen so far.
    pub throughput: Throughput,
    /// The source bucket.
    pub source: S,
    /// The destination bucket.
    pub dest: D,
    /// The results store.
    pub results: R,
    /// Where rechecks go (the task queue).
    pub rechecks: Q,
    /// How long an earlier delivery of a message may still run (the function's timeout, the
    /// batching window and slack): the delay of a recheck when the invocation does not say.
    pub recheck_after: Duration,
    /// Where log and metric lines go.
    pub sink: LineSink,
    /// Where copies in parts keep their checkpoints (the results bucket), so a copy stopped by
    /// the deadline continues in the next delivery; `None` copies every object within one
    /// invocation.
    pub checkpoints: Option<Box<dyn CheckpointStore>>,
    /// Keys this process copied lately.
    pub recent_writes: RecentWrites,
}

/// The code on an `in_progress` record whose continuation could not be sent: the message is
/// reported failed instead and comes again.
pub const CONTINUATION_NOT_QUEUED: &str = "ContinuationNotQueued";

/// One invocation: its id (names the results object) and its deadline, if it has one.
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The Lambda request id (or the local poller's batch id).
    pub id: &'a str,
    /// When the invocation must have answered (Lambda's deadline, or `sync poll
    /// --invocation-timeout`); `None` for no limit.
    pub deadline: Option<tokio::time::Instant>,
    /// How long an earlier delivery of a message may still run, if this invocation knows better
    /// than the service's `recheck_after` (the local poller: its invocation timeout).
    pub recheck_after: Option<Duration>,
}

/// Whether a write-ahead recheck was sent (once, by the first job of its message that writes).
type SentOnce = tokio::sync::OnceCell<Result<(), String>>;

/// The write-ahead rechecks of a batch: one per message whose jobs write, sent before the first
/// write (see [`crate::sync::copy`], "Why it converges"), shared by the message's jobs.
struct WriteAheads<'a, Q> {
    queue: &'a Q,
    /// The invocation's deadline, when the delay must also outlast it (in Lambda the configured
    /// timeout could be set lower than the function's real one): at least the time left to it
    /// plus [`recheck::SLACK`].
    outlast: Option<tokio::time::Instant>,
    /// By the message the jobs stand for.
    rechecks: BTreeMap<&'a str, (Recheck, SentOnce)>,
    /// Messages with a job that writes without reading the destination first
    /// ([`decide::reads_dest_first`]): it almost surely writes, so their write-aheads go in one
    /// send (SQS: one `SendMessageBatch` per ten) when the first of them is needed, instead of
    /// one request each.
    together: BTreeSet<&'a str>,
    /// The outcome of that one send, by message.
    together_sent: tokio::sync::OnceCell<BTreeMap<&'a str, Result<(), String>>>,
}

impl<Q> WriteAheads<'_, Q> {
    /// The recheck to send now: its delay outlasts the invocation's deadline where it must.
    fn prepared(&self, recheck: &Recheck) -> Recheck {
        let mut recheck = recheck.clone();
        if let Some(deadline) = self.outlast {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            recheck.after = recheck.after.max(left + recheck::SLACK);
        }
        recheck
    }
}

impl<Q: RecheckQueue> WriteAhead for WriteAheads<'_, Q> {
    fn before_write<'a>(&'a self, job: &'a Job<'_>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let id = job.message_id.unwrap_or_default();
            let Some((recheck, sent)) = self.rechecks.get(id) else {
                return Err(format!(
                    "no message to recheck is known for the job of {}",
                    job.dest_key
                ));
            };
            // No timeout of their own: the job around a send is stopped at the cut-off, and
            // recorded so (`InvocationDeadline`); another job then sends what it left.
            if self.together.contains(id) {
                let sent = self
                    .together_sent
                    .get_or_init(|| async {
                        let (ids, list): (Vec<&str>, Vec<Recheck>) = self
                            .together
                            .iter()
                            .filter_map(|m| {
                                self.rechecks.get(m).map(|(r, _)| (*m, self.prepared(r)))
                            })
                            .unzip();
                        let results = send_by(self.queue, &list, None).await;
                        ids.into_iter().zip(results).collect()
                    })
                    .await;
                if let Some(Ok(())) = sent.get(id) {
                    return Ok(());
                }
                // Its entry failed (or was not answered): it is sent on its own below, so one
                // refused request does not stop every job of the batch.
            }
            sent.get_or_init(|| async {
                let recheck = self.prepared(recheck);
                send_by(self.queue, std::slice::from_ref(&recheck), None)
                    .await
                    .pop()
                    .unwrap_or_else(|| Err("the recheck queue answered nothing".to_owned()))
            })
            .await
            .clone()
        })
    }

    fn send_ranges<'a>(
        &'a self,
        job: &'a Job<'_>,
        ranges: &'a [RangeJob],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let Some((base, _)) = self.rechecks.get(job.message_id.unwrap_or_default()) else {
                return Err(format!(
                    "no message is known for the job of {}",
                    job.dest_key
                ));
            };
            // Each range job is the message again, with its range, to run at once; it starts its
            // own chain of deliveries.
            let jobs: Vec<Recheck> = ranges
                .iter()
                .map(|r| Recheck {
                    after: Duration::ZERO,
                    attempts: 0,
                    range: Some(r.attribute()),
                    ..base.clone()
                })
                .collect();
            let failed: Vec<String> = send_by(self.queue, &jobs, None)
                .await
                .into_iter()
                .zip(ranges)
                .filter_map(|(sent, r)| sent.err().map(|e| format!("{}: {e}", r.attribute())))
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            }
        })
    }
}

/// Sends rechecks, each failed if the cut-off comes first.
async fn send_by<Q: RecheckQueue>(
    queue: &Q,
    rechecks: &[Recheck],
    by: Option<tokio::time::Instant>,
) -> Vec<Result<(), String>> {
    let late = || vec![Err("the invocation's cut-off came first".to_owned()); rechecks.len()];
    let mut results = match by {
        None => queue.send(rechecks).await,
        Some(by) => tokio::time::timeout_at(by, queue.send(rechecks))
            .await
            .unwrap_or_else(|_| late()),
    };
    results.resize_with(rechecks.len(), || {
        Err("the recheck queue answered for fewer rechecks than it was given".to_owned())
    });
    results
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

struct MessageInfo<'a> {
    id: &'a str,
    receive_count: u32,
    /// The message this one stands for: the original when it is a recheck, else itself. Jobs
    /// answer for it (markers written for it are not trusted) and write it into markers.
    stands_for: &'a str,
    /// For a recheck: the message it stands for.
    recheck_of: Option<&'a str>,
    /// Seconds a recheck must still wait before it runs.
    wait: u64,
    /// Deliveries of a recheck's chain before it.
    attempts_before: u32,
    /// For a range job: its parts.
    range: Option<RangeJob>,
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
    fn recheck(&self, m: &SqsMessage, after: Duration) -> Recheck {
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

fn message_info(m: &SqsMessage) -> MessageInfo<'_> {
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
/// delivery: see [`RecentWrites`]).
fn job_of<'a>(
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
fn tokio_now(deadline: Option<tokio::time::Instant>) -> Option<tokio::time::Instant> {
    deadline.map(|_| tokio::time::Instant::now())
}

impl<S: SourceStore, D: DestinationStore, R: ResultsStore, Q: RecheckQueue>
    SyncService<S, D, R, Q>
{
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
            is_final: true,
            requests: 0,
            duration_ms: 0,
            request_ids: Vec::new(),
            message_id: m.id.to_owned(),
            receive_count: m.receive_count,
            recheck_of: m.recheck_of.map(str::to_owned),
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
                .filter(|(slot, _)| crate::oss::client::check_key(&slot.dest_key).is_ok())
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

    /// Sends back, at once, every message with a copy in progress that is not coming again anyway,
    /// so the next delivery continues the copy (a continuation: a recheck of the message without
    /// delay). The message itself is acknowledged: a redelivery would raise its receive count
    /// until a long copy ended in the DLQ while making progress. A continuation that cannot be
    /// sent leaves its message reported failed (it comes again and resumes after the hand-over's
    /// delay), and its record says so.
    async fn send_continuations<'m>(
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
    async fn leave_rechecks(
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

    /// Parses every message into records (for what needs no job) and slots (for what does).
    fn parse(
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
        if o.outcome == OutcomeKind::Deferred {
            o.error_code = Some("InvocationDeadline".to_owned());
        }
        if let Some(code) = r.code {
            o.error_code = Some(code.to_owned());
        }
        o.processed_at = format_time(OffsetDateTime::now_utc());
        o
    }
}
