//! The deterministic executor: no runtime, no threads, no clock. It holds the live invocations
//! (each the handler's future for one SQS batch) and polls the one the schedule picks, once, with
//! a waker it owns; SQS gets each finished invocation's answer, a killed one is simply dropped.

use super::sqs::{Delivered, Queue};
use super::stores::{SimDest, SimRechecks, SimResults, SimSource};
use super::world::{lock, Op, Shared};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use s3_oss_sync::copy::CopyOptions;
use s3_oss_sync::sync::{BatchReport, SyncService};
use s3_oss_sync::task::TaskBinding;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// The source bucket named in events.
pub const SOURCE_BUCKET: &str = "sim-src";

/// Virtual seconds within which a write an invocation sent whole still lands after the invocation
/// is gone (killed; or its job dropped at a cut-off, which invocations without a deadline, as
/// here, do not reach): the slack the function's rechecks allow.
pub const LATE: u64 = s3_oss_sync::recheck::SLACK.as_secs();

/// The service under test, over the simulated stores.
pub type Service = SyncService<SimSource, SimDest, SimResults, SimRechecks>;

/// The sync service as the function builds it, over the simulated world; invocations live at
/// most `lifetime` virtual seconds.
pub fn service(world: &Shared, sync_deletes: bool, concurrency: usize, lifetime: u64) -> Service {
    SyncService {
        task_id: "sim-task".into(),
        binding: TaskBinding {
            source_bucket: SOURCE_BUCKET.into(),
            source_prefix: String::new(),
            dest_bucket: "sim-oss".into(),
            dest_prefix: String::new(),
            strip_source_prefix: false,
        },
        options: CopyOptions {
            sync_deletes,
            ..CopyOptions::default()
        },
        concurrency,
        results_prefix: "results".into(),
        max_receive_count: None,
        throughput: Default::default(),
        source: SimSource(world.clone()),
        dest: SimDest(world.clone()),
        results: SimResults(world.clone()),
        rechecks: SimRechecks(world.clone()),
        recheck_after: std::time::Duration::from_secs(lifetime + LATE),
        sink: Arc::new(|_: &str| {}),
        checkpoints: None,
    }
}

type Invocation<'a> = Pin<Box<dyn Future<Output = BatchReport> + 'a>>;

/// The one call of the handler: when its signature changes, only this line does.
fn invoke(svc: &Service, event: SqsEvent, id: String) -> Invocation<'_> {
    Box::pin(async move { svc.handle(&event, &id).await })
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
    started: u64,
}

impl<'a> Sim<'a> {
    /// An executor for a service over a world.
    pub fn new(world: Shared, svc: &'a Service) -> Self {
        Self {
            world,
            svc,
            queue: Queue::default(),
            live: Vec::new(),
            finished: Vec::new(),
            killed: 0,
            visibility: 30,
            started: 0,
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
        let fut = invoke(self.svc, SqsEvent { records: messages }, id.clone());
        let started_at = lock(&self.world).now;
        self.live.push(Live {
            id: id.clone(),
            fut,
            flag: Arc::new(Flag::default()),
            delivered,
            started_at,
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

    /// Polls live invocation `i` once; true when it finished.
    pub fn poll(&mut self, i: usize) -> bool {
        let live = &mut self.live[i];
        {
            let mut w = lock(&self.world);
            // Always: the stores note which invocation sent a write.
            w.actor.clone_from(&live.id);
        }
        live.flag.0.store(false, Ordering::SeqCst);
        let waker = Waker::from(live.flag.clone());
        let mut cx = Context::from_waker(&waker);
        let polled = live.fut.as_mut().poll(&mut cx);
        let by = live.id.clone();
        self.post_rechecks(&by);
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
                self.answer(live.id, live.delivered, report);
                true
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
        let failed: BTreeSet<&str> = report
            .response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
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
