//! `ctl backfill`: the plan from the task's settings and the options, the checkpoint file
//! resumed or started over, the objects read from a listing of the source bucket or from an S3
//! Inventory, events sent through [`crate::control::backfill::run_backfill`] with its progress
//! shown, and the summary, or exit 130 when the operator stopped it (the checkpoint saved).

use super::failure::{Failure, FailureKind};
use super::terminal::Terminal;
use crate::aws::s3_inventory::InventoryLister;
use crate::aws::s3_lister::S3Lister;
use crate::aws::sqs::SqsQueue;
use crate::config::ControlConfig;
use crate::control::backfill::{run_backfill, BackfillOptions};
use crate::control::checkpoint::{
    resume, Checkpoint, CheckpointStore, FileCheckpoint, ObjectSource, Plan, Resume,
};
use crate::control::events::BACKFILL_EVENT;
use crate::outcome::format_time;
use crate::setup;
use crate::store::error::StoreError;
use crate::store::listing::{ObjectLister, Page, Position};
use crate::store::queue::{EventQueue, MAX_BATCH};
use serde_json::{json, Value};
use std::future::Future;
use time::OffsetDateTime;

/// What `ctl backfill` was asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackfillRequest {
    /// Only keys under this prefix (inside the task's `SOURCE_PREFIX`).
    pub prefix: Option<String>,
    /// Only objects modified at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// At most this many events per second.
    pub rate: Option<f64>,
    /// An S3 Inventory manifest (`s3://bucket/key/manifest.json`) to read instead of listing.
    pub inventory: Option<String>,
    /// The checkpoint file; `backfill-TASK_ID.checkpoint.json` if not given.
    pub checkpoint: Option<String>,
    /// Start over even if an unfinished backfill is checkpointed.
    pub restart: bool,
    /// Batches in flight at once.
    pub parallel: usize,
    /// Hold sending while more than this many messages wait in the task queue.
    pub max_waiting: Option<u64>,
}

impl BackfillRequest {
    /// The checkpoint file.
    pub fn checkpoint_path(&self, task_id: &str) -> String {
        self.checkpoint
            .clone()
            .unwrap_or_else(|| format!("backfill-{task_id}.checkpoint.json"))
    }
}

/// Where a backfill reads the objects: a listing of the bucket, or an inventory.
pub enum SourceLister {
    /// ListObjectsV2.
    List(S3Lister),
    /// An S3 Inventory.
    Inventory(Box<InventoryLister>),
}

impl ObjectLister for SourceLister {
    async fn next_page(&mut self) -> Result<Option<Page>, StoreError> {
        match self {
            Self::List(l) => l.next_page().await,
            Self::Inventory(l) => l.next_page().await,
        }
    }
}

/// Runs `ctl backfill` against the task's bucket and queue, checkpointed in a file.
pub async fn backfill(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    request: &BackfillRequest,
    terminal: &dyn Terminal,
) -> Result<Value, Failure> {
    let store = FileCheckpoint::new(request.checkpoint_path(&config.task_id));
    let s3 = setup::s3_client(sdk, config.s3_path_style);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
    let bucket = config.source_bucket.clone();
    let manifest = request.inventory.clone();
    let open = |prefix: String, position: Position| async move {
        match manifest {
            None => S3Lister::new(s3, &bucket, &prefix, &position).map(SourceLister::List),
            Some(m) => InventoryLister::open(s3, &m, &bucket, &prefix, &position)
                .await
                .map(|l| SourceLister::Inventory(Box::new(l))),
        }
    };
    let shown = store.path().display().to_string();
    backfill_with(config, request, &queue, (&store, &shown), open, terminal).await
}

/// The backfill behind [`backfill`], over any queue and checkpoint store (`checkpoints`: the
/// store and the name it is shown by). `open` opens the lister for the prefix at the checkpoint's
/// position.
pub async fn backfill_with<Q, S, L, F, Fut>(
    config: &ControlConfig,
    request: &BackfillRequest,
    queue: &Q,
    checkpoints: (&S, &str),
    open: F,
    terminal: &dyn Terminal,
) -> Result<Value, Failure>
where
    Q: EventQueue,
    S: CheckpointStore,
    L: ObjectLister,
    F: FnOnce(String, Position) -> Fut,
    Fut: Future<Output = Result<L, StoreError>>,
{
    let (store, shown) = checkpoints;
    let prefix = config
        .backfill_prefix(request.prefix.as_deref())
        .map_err(Failure::config)?;
    let plan = Plan {
        task: config.task_id.clone(),
        source_bucket: config.source_bucket.clone(),
        prefix: prefix.clone(),
        since: request.since.map(format_time),
        source: match &request.inventory {
            None => ObjectSource::List,
            Some(m) => ObjectSource::Inventory {
                manifest: m.clone(),
            },
        },
        queue_url: config.queue_url.clone(),
    };
    let started = format_time(OffsetDateTime::now_utc());
    let cp = match resume(store.load()?, plan, request.restart, &started)? {
        Resume::Fresh(cp) => cp,
        Resume::Continue(cp) => {
            terminal.note(&format!(
                "resuming the backfill checkpointed in {shown} ({} events sent so far)",
                cp.counts.sent
            ));
            cp
        }
    };
    let opts = BackfillOptions {
        bucket: config.source_bucket.clone(),
        since: request.since,
        rate: request.rate,
        parallel: request.parallel,
        batch_size: MAX_BATCH,
        max_waiting: request.max_waiting,
        event: BACKFILL_EVENT,
    };
    let stop = terminal.stop_flag();
    let bar = terminal.spinner("listing");
    let progress = |cp: &Checkpoint| {
        bar.set_message(format!(
            "listed {}  sent {}  older than --since {}  left out {}",
            cp.counts.listed, cp.counts.sent, cp.counts.before_since, cp.counts.not_current
        ))
    };
    let lister = open(prefix.clone(), cp.position.clone()).await?;
    let out = run_backfill(lister, queue, store, &opts, cp, &stop, progress).await;
    bar.finish();
    let cp = out?;
    let summary = json!({
        "finished": cp.finished,
        "checkpoint": shown,
        "prefix": prefix,
        "counts": cp.counts,
        "runs": cp.runs,
    });
    if !cp.finished {
        return Err(Failure::new(
            FailureKind::Interrupted,
            format!("interrupted; run the same command again to resume from {shown}"),
        )
        .with_summary(summary));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::commands::recorded::{task, Queue, Recorded, Saved};
    use crate::store::listing::Listed;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Pages of `n` objects `data/k00000`…, 25 a page, from the position given.
    struct Pages(VecDeque<Page>);
    impl ObjectLister for Pages {
        async fn next_page(&mut self) -> Result<Option<Page>, StoreError> {
            Ok(self.0.pop_front())
        }
    }

    fn pages(n: u32, after: &Position) -> Pages {
        let after = match after {
            Position::AfterKey { key } => Some(key.clone()),
            _ => None,
        };
        let all: Vec<Listed> = (0..n)
            .map(|i| {
                let key = format!("data/k{i:05}");
                Listed {
                    position: Position::AfterKey { key: key.clone() },
                    key,
                    size: Some(1),
                    etag: Some("e".into()),
                    last_modified: None,
                    removed: false,
                }
            })
            .filter(|o| after.as_ref().is_none_or(|a| o.key > *a))
            .collect();
        Pages(
            all.chunks(25)
                .map(|c| Page {
                    objects: c.to_vec(),
                    ..Page::default()
                })
                .collect(),
        )
    }

    fn request() -> BackfillRequest {
        BackfillRequest {
            parallel: 2,
            ..BackfillRequest::default()
        }
    }

    /// The prefixes and positions the lister was opened at.
    type Opened = Mutex<Vec<(String, Position)>>;

    /// A run's queue, checkpoint store, terminal (`terminal`) and openings, all empty.
    fn fixtures(terminal: Recorded) -> (Queue, Saved, Recorded, Opened) {
        (
            Queue::default(),
            Saved::default(),
            terminal,
            Opened::default(),
        )
    }

    async fn run(
        request: &BackfillRequest,
        queue: &Queue,
        store: &Saved,
        terminal: &Recorded,
        opened: &Opened,
    ) -> Result<Value, Failure> {
        let open = |prefix: String, position: Position| async move {
            opened.lock().unwrap().push((prefix, position.clone()));
            Ok::<_, StoreError>(pages(60, &position))
        };
        backfill_with(&task(), request, queue, (store, "cp.json"), open, terminal).await
    }

    #[tokio::test]
    async fn a_fresh_backfill_sends_every_object_and_sums_up() {
        let (q, store, t, opened) = fixtures(Recorded::default());
        let out = run(&request(), &q, &store, &t, &opened).await.unwrap();
        assert_eq!(
            out,
            json!({
                "finished": true, "checkpoint": "cp.json", "prefix": "data/",
                "counts": {"listed": 60, "sent": 60, "before_since": 0, "not_current": 0},
                "runs": 1,
            })
        );
        assert_eq!(*opened.lock().unwrap(), [("data/".into(), Position::Start)]);
        let events = q.events();
        assert_eq!(events.len(), 60);
        assert!(events.iter().all(|(_, name)| name == BACKFILL_EVENT));
        let plan = &store.load().unwrap().unwrap().plan;
        assert_eq!(
            (plan.source.clone(), plan.prefix.as_str()),
            (ObjectSource::List, "data/")
        );
        let bar = t.activity(0);
        let shown = bar.messages.lock().unwrap().clone();
        assert_eq!(shown[0], "listing");
        assert_eq!(
            shown.last().unwrap(),
            "listed 60  sent 60  older than --since 0  left out 0"
        );
        assert_eq!(*bar.ended.lock().unwrap(), "finish");
        assert!(t.notes().is_empty() && t.printed().is_empty());
    }

    #[tokio::test]
    async fn an_unfinished_checkpoint_of_the_same_plan_is_resumed_where_it_stopped() {
        let (q, store, t, opened) = fixtures(Recorded::default());
        let mut req = request();
        req.inventory = Some("s3://inv/m/manifest.json".into());
        req.prefix = Some("data/k".into());
        let plan = Plan {
            task: "t1".into(),
            source_bucket: "src".into(),
            prefix: "data/k".into(),
            since: None,
            source: ObjectSource::Inventory {
                manifest: "s3://inv/m/manifest.json".into(),
            },
            queue_url: "https://sqs.us-east-1.amazonaws.com/1/t1".into(),
        };
        let mut saved = Checkpoint::new(plan, "t0");
        saved.position = Position::AfterKey {
            key: "data/k00039".into(),
        };
        saved.counts.listed = 40;
        saved.counts.sent = 40;
        store.save(&saved).unwrap();
        let out = run(&req, &q, &store, &t, &opened).await.unwrap();
        assert_eq!(
            t.notes(),
            ["resuming the backfill checkpointed in cp.json (40 events sent so far)"]
        );
        assert_eq!(opened.lock().unwrap()[0].1, saved.position);
        assert_eq!(q.events().len(), 20);
        assert_eq!(out["counts"]["sent"], 60);
        assert_eq!(out["runs"], 2);
    }

    #[tokio::test]
    async fn a_stopped_backfill_prints_its_summary_and_exits_130() {
        let (q, store, t, opened) = fixtures(Recorded::stopped());
        let f = run(&request(), &q, &store, &t, &opened).await.unwrap_err();
        assert_eq!(f.code(), 130);
        assert_eq!(
            f.message,
            "interrupted; run the same command again to resume from cp.json"
        );
        let summary = f.summary.unwrap();
        assert_eq!(summary["finished"], false);
        assert_eq!(summary["checkpoint"], "cp.json");
        assert!(!store.load().unwrap().unwrap().finished);
        assert_eq!(t.stop_asked.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn bad_input_is_2_before_anything_is_listed_and_a_failed_send_is_1() {
        let (q, store, t, opened) = fixtures(Recorded::default());
        let mut req = request();
        req.prefix = Some("other/".into());
        let f = run(&req, &q, &store, &t, &opened).await.unwrap_err();
        assert_eq!(f.code(), 2);
        assert!(f.message.starts_with("invalid configuration: "), "{f}");
        assert!(
            f.message.contains("outside the task's SOURCE_PREFIX"),
            "{f}"
        );
        assert!(opened.lock().unwrap().is_empty() && store.0.lock().unwrap().is_empty());

        // An unfinished backfill of another plan is not dropped silently.
        let other = Checkpoint::new(
            Plan {
                task: "t1".into(),
                source_bucket: "src".into(),
                prefix: "data/x".into(),
                since: None,
                source: ObjectSource::List,
                queue_url: "q".into(),
            },
            "t0",
        );
        store.save(&other).unwrap();
        let f = run(&request(), &q, &store, &t, &opened).await.unwrap_err();
        assert_eq!(f.code(), 2);
        assert!(f.message.contains("--restart"), "{f}");
        assert!(opened.lock().unwrap().is_empty());
        let mut req = request();
        req.restart = true;
        let failing = Queue {
            fail_at: Some(1),
            ..Queue::default()
        };
        let f = run(&req, &failing, &store, &t, &opened).await.unwrap_err();
        assert_eq!(f.code(), 1);
        assert!(f.message.contains("injected"), "{f}");
        assert_eq!(f.summary, None);
    }

    #[tokio::test]
    async fn a_lister_that_cannot_open_fails_with_its_errors_code() {
        let (q, store, t) = (Queue::default(), Saved::default(), Recorded::default());
        let open = |_: String, _: Position| async {
            Err::<Pages, _>(StoreError::Input(
                "the manifest's MD5 does not match".into(),
            ))
        };
        let f = backfill_with(&task(), &request(), &q, (&store, "cp.json"), open, &t)
            .await
            .unwrap_err();
        assert_eq!(f.code(), 2);
        assert_eq!(f.message, "the manifest's MD5 does not match");
        assert!(q.events().is_empty());
    }

    #[test]
    fn the_checkpoint_file_is_named_after_the_task_unless_given() {
        let mut r = request();
        assert_eq!(r.checkpoint_path("t1"), "backfill-t1.checkpoint.json");
        r.checkpoint = Some("mine.json".into());
        assert_eq!(r.checkpoint_path("t1"), "mine.json");
    }
}
