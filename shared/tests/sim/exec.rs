//! The deterministic executor: no runtime, no threads, no clock. It holds the live invocations
//! (each the handler's future for one SQS batch) and polls the one the schedule picks, once, with
//! a waker it owns; SQS gets each finished invocation's answer, a killed one is simply dropped.

use super::sqs::{Delivered, Queue};
use super::stores::{SimCheckpoints, SimDest, SimRechecks, SimResults, SimSource};
use super::world::{lock, Op, Shared};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use s3_oss_sync::sync::copy::CopyOptions;
use s3_oss_sync::sync::handler::{failed_ids, BatchReport, Invocation as Deadline, SyncService};
use s3_oss_sync::task::TaskBinding;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// The source bucket named in events.
pub const SOURCE_BUCKET: &str = "sim-src";
/// The destination bucket.
pub const DEST_BUCKET: &str = "sim-oss";
/// The task id.
pub const TASK: &str = "sim-task";
/// The results prefix (checkpoints are kept beside it).
pub const RESULTS_PREFIX: &str = "results";

/// Virtual seconds within which a write an invocation sent whole still lands after the invocation
/// is gone (killed; or its job dropped at a cut-off, which invocations without a deadline, as
/// here, do not reach): the slack the function's rechecks allow.
pub const LATE: u64 = s3_oss_sync::sync::recheck::SLACK.as_secs();

/// The service under test, over the simulated stores.
pub type Service = SyncService<SimSource, SimDest, SimResults, SimRechecks>;

/// The sync service as the function builds it, over the simulated world; invocations live at
/// most `lifetime` virtual seconds.
pub fn service(world: &Shared, sync_deletes: bool, concurrency: usize, lifetime: u64) -> Service {
    service_with(world, sync_deletes, concurrency, lifetime, None)
}

/// [`service`], with copies in parts fanned out to range jobs above `fan_out` (threshold, bytes
/// per range job). Checkpoints are kept in every service; copies are made in parts only when the
/// world's destination takes them ([`super::world::World::parts`]).
pub fn service_with(
    world: &Shared,
    sync_deletes: bool,
    concurrency: usize,
    lifetime: u64,
    fan_out: Option<(u64, u64)>,
) -> Service {
    let defaults = CopyOptions::default();
    SyncService {
        task_id: TASK.into(),
        binding: TaskBinding {
            source_bucket: SOURCE_BUCKET.into(),
            source_prefix: String::new(),
            dest_bucket: DEST_BUCKET.into(),
            dest_prefix: String::new(),
            strip_source_prefix: false,
            report_area: Some("reports/".into()),
        },
        options: CopyOptions {
            sync_deletes,
            fan_out_threshold: fan_out.map(|(threshold, _)| threshold),
            fan_out_range: fan_out.map_or(defaults.fan_out_range, |(_, range)| range),
            ..defaults
        },
        concurrency,
        results_prefix: RESULTS_PREFIX.into(),
        max_receive_count: None,
        throughput: Default::default(),
        source: SimSource(world.clone()),
        dest: SimDest::new(world.clone()),
        results: SimResults(world.clone()),
        rechecks: SimRechecks(world.clone()),
        recheck_after: Duration::from_secs(lifetime + LATE),
        sink: Arc::new(|_: &str| {}),
        checkpoints: Some(Box::new(SimCheckpoints(world.clone()))),
        recent_writes: Default::default(),
    }
}

type Invocation<'a> = Pin<Box<dyn Future<Output = BatchReport> + 'a>>;

/// The one call of the handler: when its signature changes, only this line does.
fn invoke(
    svc: &Service,
    event: SqsEvent,
    id: String,
    deadline: Option<tokio::time::Instant>,
) -> Invocation<'_> {
    Box::pin(async move {
        let inv = Deadline {
            id: &id,
            deadline,
            recheck_after: None,
        };
        svc.handle_within(&event, inv).await
    })
}

/// A waker that only records that it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// An invocation in progress.
pub struct Live<'a> {
    /// Its id (the Lambda request id).
    pub id: String,
    fut: Invocation<'a>,
    flag: Arc<Flag>,
    delivered: Vec<Delivered>,
    /// When it started (its batch was received).
    pub started_at: u64,
    /// The range of each message that is a range job, by message id.
    ranges: Vec<(String, String)>,
    /// The virtual time of its last poll.
    polled_at: u64,
}

/// An invocation that ran to its end.
pub struct Finished {
    /// Its id.
    pub id: String,
    /// The messages it was given.
    pub delivered: Vec<Delivered>,
    /// What it answered.
    pub report: BatchReport,
}

/// The executor, the queue and the invocations of one schedule.
pub struct Sim<'a> {
    /// The world.
    pub world: Shared,
    svc: &'a Service,
    /// The queue.
    pub queue: Queue,
    /// Invocations in progress, in the order they started.
    pub live: Vec<Live<'a>>,
    /// Invocations that ended.
    pub finished: Vec<Finished>,
    /// Invocations killed.
    pub killed: u64,
    /// Most time before a failed or abandoned message is visible again.
    pub visibility: u64,
    /// The deadline invocations are given, in virtual seconds after they start (Lambda's
    /// timeout); `None` gives none.
    pub deadline: Option<u64>,
    started: u64,
    /// The tokio clock at virtual time 0: virtual time `t` is `base + t` seconds.
    base: tokio::time::Instant,
    /// The virtual time the tokio clock was last moved to.
    synced: u64,
    /// A runtime whose paused clock is the virtual clock: the handler's deadlines, timers and
    /// `Instant::now()` run on it while an invocation is polled (it runs no task itself). Last,
    /// so the invocations' timers are dropped before it.
    rt: tokio::runtime::Runtime,
}

impl<'a> Sim<'a> {
    /// An executor for a service over a world.
    pub fn new(world: Shared, svc: &'a Service) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime for the virtual clock");
        let base = {
            let _in = rt.enter();
            tokio::time::Instant::now()
        };
        Self {
            world,
            svc,
            queue: Queue::default(),
            live: Vec::new(),
            finished: Vec::new(),
            killed: 0,
            visibility: 30,
            deadline: None,
            started: 0,
            base,
            synced: 0,
            rt,
        }
    }

    /// Moves the tokio clock to the virtual time (the timers due fire).
    fn sync_clock(&mut self) {
        let now = lock(&self.world).now;
        if now > self.synced {
            let by = Duration::from_secs(now - self.synced);
            self.rt.block_on(tokio::time::advance(by));
            self.synced = now;
        }
    }

    /// Starts an invocation for a batch; returns its id.
    pub fn start(&mut self, messages: Vec<SqsMessage>, delivered: Vec<Delivered>) -> String {
        self.started += 1;
        let id = format!("inv-{}", self.started);
        {
            let mut w = lock(&self.world);
            w.actor = "sqs".into();
            for d in &delivered {
                for k in &d.keys {
                    w.note(Op::Sqs, Some(k), || {
                        format!("sqs delivers {}#{} to {id}", d.message_id, d.receive_count)
                    });
                }
            }
        }
        let ranges: Vec<(String, String)> = messages
            .iter()
            .filter_map(|m| {
                let range = s3_oss_sync::sync::recheck::range_of(m)?;
                Some((m.message_id.clone()?, range.to_owned()))
            })
            .collect();
        let started_at = lock(&self.world).now;
        // Half a second off the virtual clock's whole seconds, so that no stop time the copies
        // derive from it falls on a tick (a stop time reached exactly would be both passed and
        // not, see `World::stalled`).
        let deadline = self
            .deadline
            .map(|d| self.base + Duration::from_secs(started_at + d) + Duration::from_millis(500));
        let fut = invoke(
            self.svc,
            s3_oss_sync::aws::sqs_poll::lambda_event(messages),
            id.clone(),
            deadline,
        );
        self.live.push(Live {
            id: id.clone(),
            fut,
            flag: Arc::new(Flag::default()),
            delivered,
            started_at,
            ranges,
            polled_at: started_at,
        });
        id
    }

    /// Starts an invocation with up to `max` visible messages; `None` if none are visible.
    pub fn start_batch(&mut self, max: usize, redeliver: f64) -> Option<String> {
        let (messages, delivered) = {
            let mut w = lock(&self.world);
            let now = w.now;
            self.queue.receive(&mut w.rng, now, max, redeliver)
        };
        if messages.is_empty() {
            return None;
        }
        Some(self.start(messages, delivered))
    }

    /// The index of a live invocation.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.live.iter().position(|l| l.id == id)
    }

    /// Polls live invocation `i` once; true when it finished. With deadlines, when the virtual
    /// clock moved since its last poll, it is first polled once stalled, so its timers act
    /// before any store call moves (see [`super::world::World::stalled`]).
    pub fn poll(&mut self, i: usize) -> bool {
        // The handler reads the clock only for its deadline and in copies in parts (and an
        // invocation's copy in parts has initiated or listed an upload before it reads it): the
        // clock is moved only for them (moving it costs a `block_on`).
        let in_parts = lock(&self.world).in_parts.contains(&self.live[i].id);
        if self.deadline.is_some() || in_parts {
            self.sync_clock();
        }
        let handle = self.rt.handle().clone();
        let _clock = handle.enter();
        let now = self.synced;
        // Only copies in parts wait in a `select!` on a timer.
        let timers_first = self.deadline.is_some() && in_parts && self.live[i].polled_at < now;
        self.live[i].polled_at = now;
        let polled = match timers_first {
            true => match self.poll_once(i, true) {
                Poll::Pending => self.poll_once(i, false),
                ready => ready,
            },
            false => self.poll_once(i, false),
        };
        let live = &mut self.live[i];
        match polled {
            Poll::Pending => {
                if !live.flag.0.load(Ordering::SeqCst) {
                    let id = live.id.clone();
                    lock(&self.world).violations.push(format!(
                        "{id} returned Pending without arranging a wake-up (it would hang)"
                    ));
                }
                false
            }
            Poll::Ready(report) => {
                let live = self.live.remove(i);
                self.note_ranges_superseded(&live, &report);
                self.answer(live.id, live.delivered, report);
                true
            }
        }
    }

    /// One poll of live invocation `i` (stalled: no store call moves); then the rechecks it sent
    /// go on the queue.
    fn poll_once(&mut self, i: usize, stalled: bool) -> Poll<BatchReport> {
        let live = &mut self.live[i];
        let gate = {
            let mut w = lock(&self.world);
            // Always: the stores note which invocation sent a write.
            w.actor.clone_from(&live.id);
            w.stalled.store(stalled, Ordering::Relaxed);
            w.stalled.clone()
        };
        live.flag.0.store(false, Ordering::SeqCst);
        let waker = Waker::from(live.flag.clone());
        let mut cx = Context::from_waker(&waker);
        let polled = live.fut.as_mut().poll(&mut cx);
        gate.store(false, Ordering::Relaxed);
        let by = live.id.clone();
        self.post_rechecks(&by);
        polled
    }

    /// Notes the range jobs a finished invocation recorded superseded and acknowledged.
    fn note_ranges_superseded(&self, live: &Live<'_>, report: &BatchReport) {
        if live.ranges.is_empty() {
            return;
        }
        let failed = failed_ids(&report.response);
        let mut w = lock(&self.world);
        for o in &report.outcomes {
            use s3_oss_sync::outcome::OutcomeKind;
            let in_batch = o
                .error_message
                .as_deref()
                .is_some_and(|m| m.starts_with("a newer event for this key in the same batch"));
            let how = match o.outcome {
                OutcomeKind::Superseded if in_batch => "superseded in its batch",
                OutcomeKind::Skipped => "skipped",
                _ => continue,
            };
            if failed.contains(o.message_id.as_str()) {
                continue;
            }
            if let Some((m, range)) = live.ranges.iter().find(|(m, _)| *m == o.message_id) {
                w.ranges_superseded
                    .push((live.id.clone(), format!("{m} ({how})"), range.clone()));
            }
        }
    }

    /// Puts the rechecks invocation `by` sent on the queue.
    fn post_rechecks(&mut self, by: &str) {
        let deleted = std::mem::take(&mut lock(&self.world).deleted);
        for id in deleted {
            self.queue.settle(&id, true, 0);
        }
        let sent = std::mem::take(&mut lock(&self.world).outbox);
        for m in sent {
            let keys = self.queue.keys_of(&m.of);
            let id = self
                .queue
                .send_with(m.body, keys.clone(), m.attributes, m.at);
            self.queue.sent_by(&id, by);
            let mut w = lock(&self.world);
            for k in &keys {
                w.note(Op::Sqs, Some(k), || {
                    format!("recheck {id} of {} queued, visible at {}", m.of, m.at)
                });
            }
        }
    }

    /// SQS takes a finished invocation's answer: reported failures come back, the rest go.
    fn answer(&mut self, id: String, delivered: Vec<Delivered>, report: BatchReport) {
        let failed = failed_ids(&report.response);
        let mut w = lock(&self.world);
        w.actor.clone_from(&id);
        // A write whose job was dropped at the cut-off may still land.
        w.orphan_writes(&id, LATE);
        for o in &report.outcomes {
            let key = o.source_key.as_deref();
            w.note(Op::Answer, key, || {
                format!(
                    "{id} records {}#{}: {} {}",
                    o.message_id,
                    o.receive_count,
                    o.outcome,
                    o.error_code.as_deref().unwrap_or("")
                )
            });
        }
        for d in &delivered {
            let acknowledged = !failed.contains(d.message_id.as_str());
            let again = w.now + 1 + w.rng.below(self.visibility);
            for k in &d.keys {
                w.note(Op::Sqs, Some(k), || {
                    format!(
                        "{id} answers {}#{}: {}",
                        d.message_id,
                        d.receive_count,
                        if acknowledged { "done" } else { "failed" }
                    )
                });
            }
            self.queue.settle(&d.message_id, acknowledged, again);
        }
        drop(w);
        self.finished.push(Finished {
            id,
            delivered,
            report,
        });
    }

    /// Kills live invocation `i` (a crash or a timeout): no answer, every message comes back.
    pub fn kill(&mut self, i: usize) {
        let live = self.live.remove(i);
        self.killed += 1;
        let mut w = lock(&self.world);
        w.actor = "lambda".into();
        w.orphan_writes(&live.id, LATE);
        for d in &live.delivered {
            let again = w.now + 1 + w.rng.below(self.visibility);
            for k in &d.keys {
                w.note(Op::Sqs, Some(k), || {
                    format!(
                        "{} is killed holding {}#{}",
                        live.id, d.message_id, d.receive_count
                    )
                });
            }
            self.queue.settle(&d.message_id, false, again);
        }
        // The future (and whatever it was doing) is dropped here, mid-way.
        drop(w);
        drop(live);
    }

    /// Polls invocation `id` until `until` holds of the world or it finished; true if it holds.
    pub fn run_until(&mut self, id: &str, until: impl Fn(&super::world::World) -> bool) -> bool {
        for _ in 0..100_000 {
            if until(&lock(&self.world)) {
                return true;
            }
            let Some(i) = self.index(id) else {
                return false;
            };
            self.poll(i);
        }
        panic!("{id} did not finish in 100,000 polls");
    }

    /// Polls invocation `id` to its end; returns what it answered.
    pub fn run_to_end(&mut self, id: &str) -> &Finished {
        self.run_until(id, |_| false);
        self.finished
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("{id} neither finished nor is live"))
    }
}
