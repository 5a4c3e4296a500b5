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
//!
//! The parts of this module:
//! - `batch`: a batch handled ([`SyncService::handle_within`]): jobs planned, run and recorded.
//! - `messages`: what a message says of itself, and its events parsed into records and jobs.
//! - `rechecks`: messages handed to a recheck before any job runs, and continuations sent after.
//! - `write_ahead`: the write-ahead rechecks of a batch's jobs, and the range jobs they send.
//! - `record`: the outcome records.
//! - `learned`: what a process learns across batches ([`Throughput`], [`RecentWrites`]).

mod batch;
mod learned;
mod messages;
mod rechecks;
mod record;
mod write_ahead;

pub use learned::{RecentWrites, Throughput, ASSUMED_BYTES_PER_SEC};

use crate::outcome::Outcome;
use crate::store::checkpoints::CheckpointStore;
use crate::sync::copy::CopyOptions;
use crate::task::TaskBinding;
use crate::telemetry::LineSink;
use aws_lambda_events::event::sqs::SqsBatchResponse;
use std::collections::BTreeSet;
use std::time::Duration;

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

/// The ids of the messages a partial batch response reports failed (to be delivered again).
pub fn failed_ids(response: &SqsBatchResponse) -> BTreeSet<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
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
