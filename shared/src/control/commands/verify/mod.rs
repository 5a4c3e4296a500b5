//! `ctl verify` and `ctl verify --repair`: the source and destination listings compared and the
//! report written ([`verify_and_report`]) with its progress shown, the summary printed, then, with
//! `--repair`, the differences sent as events by the backfill's machinery from the report's parts
//! ([`RepairLister`]), checkpointed. An unfinished repair is resumed from its own verification's
//! report, not verified again. Differences end in exit 3; a stop in 130.

use super::failure::{Failure, FailureKind};
use super::settings::Settings;
use super::terminal::Terminal;
use crate::aws::sqs::SqsQueue;
use crate::config::{ControlConfig, ReportConfig, SyncConfig};
use crate::control::backfill::{run_backfill, BackfillOptions};
use crate::control::checkpoint::{Checkpoint, CheckpointStore, FileCheckpoint, ObjectSource, Plan};
use crate::control::events::VERIFY_EVENT;
use crate::control::ControlError;
use crate::outcome::format_time;
use crate::report::build::ReportStore;
use crate::retry::Transient;
use crate::setup;
use crate::store::queue::{EventQueue, MAX_BATCH};
use crate::task::TaskBinding;
use crate::verify::repair::RepairLister;
use crate::verify::report::{render, verify_and_report, Subject, Summary};
use crate::verify::run::{Mapping, Progress, Sides, VerifyOptions};
use crate::verify::stores::{CloudSides, SourceListing};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// What `ctl verify` was asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyRequest {
    /// Send events for what differs.
    pub repair: bool,
    /// Only keys under this prefix (inside the task's `SOURCE_PREFIX`).
    pub prefix: Option<String>,
    /// Print the summary as JSON.
    pub json: bool,
    /// An S3 Inventory manifest to read the source from instead of listing it.
    pub inventory: Option<String>,
    /// Key ranges listed at once.
    pub parallel: usize,
    /// Seconds the OSS copy must be later than S3's `LastModified` for the listing to settle it.
    pub clock_tolerance_s: i64,
    /// Repair: at most this many events per second.
    pub rate: Option<f64>,
    /// Repair: hold sending while more than this many messages wait in the task queue.
    pub max_waiting: Option<u64>,
    /// Repair: the checkpoint file; `verify-TASK_ID.checkpoint.json` if not given.
    pub checkpoint: Option<String>,
    /// Repair: verify again even if an unfinished repair is checkpointed.
    pub restart: bool,
}

impl VerifyRequest {
    /// The repair's checkpoint file.
    pub fn checkpoint_path(&self, task_id: &str) -> String {
        self.checkpoint
            .clone()
            .unwrap_or_else(|| format!("verify-{task_id}.checkpoint.json"))
    }
}

/// The task, as a verification and its repair see it.
#[derive(Debug, Clone)]
pub struct VerifyTask {
    /// The task's id.
    pub task: String,
    /// The source bucket.
    pub source_bucket: String,
    /// The task queue the repair sends to.
    pub queue_url: String,
    /// The source prefix verified (the task's, or a narrower one).
    pub prefix: String,
    /// How source keys map to destination keys.
    pub binding: TaskBinding,
    /// Whether keys only in OSS are repaired by deletes (`SYNC_DELETES`).
    pub sync_deletes: bool,
    /// Where reports go (`REPORT_PREFIX`).
    pub report_prefix: String,
    /// Largest CSV part, bytes.
    pub part_bytes: usize,
}

/// Runs `ctl verify`: the sync function's and the report function's settings read through
/// `settings`, S3 and OSS as deployed, the repair's checkpoint in a file.
pub async fn verify(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    settings: &Settings,
    request: &VerifyRequest,
    terminal: &dyn Terminal,
) -> Result<Value, Failure> {
    let sync = SyncConfig::from_lookup(|n| settings.get(n)).map_err(Failure::config)?;
    let report = ReportConfig::from_lookup(|n| settings.get(n)).map_err(Failure::config)?;
    let prefix = config
        .backfill_prefix(request.prefix.as_deref())
        .map_err(Failure::config)?;
    let parts = setup::report_parts(&report, sdk)
        .await
        .map_err(Failure::config)?;
    let store = FileCheckpoint::new(request.checkpoint_path(&config.task_id));
    let sides = CloudSides {
        s3: parts.s3.clone(),
        source_bucket: config.source_bucket.clone(),
        listing: match &request.inventory {
            None => SourceListing::List,
            Some(m) => SourceListing::Inventory(m.clone()),
        },
        oss: parts.oss.client().clone(),
        dest_bucket: report.dest_bucket.clone(),
    };
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
    let task = VerifyTask {
        task: config.task_id.clone(),
        source_bucket: config.source_bucket.clone(),
        queue_url: config.queue_url.clone(),
        prefix,
        binding: sync.binding.clone(),
        sync_deletes: sync.sync_deletes,
        report_prefix: report.report_prefix.clone(),
        part_bytes: report.part_bytes,
    };
    let shown = store.path().display().to_string();
    verify_with(
        &task,
        request,
        &sides,
        &parts.oss,
        &queue,
        (&store, &shown),
        terminal,
    )
    .await
}

/// A verification's report: its folder, the parts listing the differences, and how many.
struct Verified {
    dir: String,
    parts: Vec<String>,
    differences: u64,
}

/// The verification and repair behind [`verify`], over any sides, report store, queue and
/// checkpoint store (`checkpoints`: the store and the name it is shown by).
pub async fn verify_with<S, R, Q, C>(
    task: &VerifyTask,
    request: &VerifyRequest,
    sides: &S,
    reports: &R,
    queue: &Q,
    checkpoints: (&C, &str),
    terminal: &dyn Terminal,
) -> Result<Value, Failure>
where
    S: Sides,
    R: ReportStore + Clone + 'static,
    Q: EventQueue,
    C: CheckpointStore,
{
    let (store, shown) = checkpoints;
    let stop = terminal.stop_flag();
    // An unfinished repair is resumed from its own verification, not verified again.
    let saved = if request.repair && !request.restart {
        store.load()?.filter(|cp| !cp.finished)
    } else {
        None
    };
    let verified = match &saved {
        Some(cp) => saved_verification(cp, reports, shown, terminal).await?,
        None => verification(task, request, sides, reports, &stop, terminal).await?,
    };
    let Verified {
        dir,
        parts,
        differences,
    } = verified;
    let mut out = json!({"report": dir, "differences": differences});
    if request.repair && (differences > 0 || saved.is_some()) {
        let plan = Plan {
            task: task.task.clone(),
            source_bucket: task.source_bucket.clone(),
            prefix: task.prefix.clone(),
            since: None,
            source: ObjectSource::Verification {
                report: dir.clone(),
            },
            queue_url: task.queue_url.clone(),
        };
        let cp =
            saved.unwrap_or_else(|| Checkpoint::new(plan, &format_time(OffsetDateTime::now_utc())));
        let opts = BackfillOptions {
            bucket: task.source_bucket.clone(),
            since: None,
            rate: request.rate,
            parallel: 8,
            batch_size: MAX_BATCH,
            max_waiting: request.max_waiting,
            event: VERIFY_EVENT,
        };
        let lister = RepairLister::new(reports.clone(), parts, &cp.position, task.sync_deletes);
        let bar = terminal.spinner("repairing");
        let done = run_backfill(lister, queue, store, &opts, cp, &stop, |cp| {
            bar.set_message(format!(
                "sent {}  left out (extra, delete sync off) {}",
                cp.counts.sent, cp.counts.not_current
            ))
        })
        .await;
        bar.finish();
        let cp = done?;
        out["repair"] = json!({
            "finished": cp.finished,
            "checkpoint": shown,
            "sent": cp.counts.sent,
            "left_out_extra": cp.counts.not_current,
            "runs": cp.runs,
        });
        if !cp.finished {
            return Err(Failure::new(
                FailureKind::Interrupted,
                format!(
                    "interrupted; run the same command again to resume the repair from {shown}"
                ),
            )
            .with_summary(out));
        }
    }
    if differences > 0 {
        return Err(Failure::new(
            FailureKind::Differences,
            format!("{differences} differences (listed in {dir})"),
        )
        .with_summary(out));
    }
    Ok(out)
}

/// The verification an unfinished repair's checkpoint names, read back from its summary.
async fn saved_verification<R: ReportStore>(
    cp: &Checkpoint,
    reports: &R,
    shown: &str,
    terminal: &dyn Terminal,
) -> Result<Verified, Failure> {
    let ObjectSource::Verification { report: dir } = &cp.plan.source else {
        return Err(ControlError::Input(format!(
            "{shown} is not a verification's checkpoint; pass --checkpoint or --restart"
        ))
        .into());
    };
    terminal.note(&format!(
        "resuming the repair of {dir} checkpointed in {shown} ({} events sent so far)",
        cp.counts.sent
    ));
    let body = reports
        .get(&format!("{dir}summary.json"))
        .await
        .map_err(ControlError::oss)?;
    let summary: Summary = serde_json::from_slice(&body)
        .map_err(|e| ControlError::Input(format!("{dir}summary.json: {e}")))?;
    Ok(Verified {
        dir: dir.clone(),
        parts: summary.differences_list.keys,
        differences: summary.differences,
    })
}

/// A new verification, its report written and its summary printed.
async fn verification<S: Sides, R: ReportStore>(
    task: &VerifyTask,
    request: &VerifyRequest,
    sides: &S,
    reports: &R,
    stop: &std::sync::atomic::AtomicBool,
    terminal: &dyn Terminal,
) -> Result<Verified, Failure> {
    let mapping = Mapping::new(task.binding.clone(), &task.prefix);
    let options = VerifyOptions {
        parallel: request.parallel,
        clock_tolerance_s: request.clock_tolerance_s,
        ..VerifyOptions::default()
    };
    let subject = Subject {
        task: task.task.clone(),
        source: match &request.inventory {
            None => "list".to_owned(),
            Some(m) => format!("inventory {m}"),
        },
        report_prefix: task.report_prefix.clone(),
        part_bytes: task.part_bytes,
    };
    let progress = Arc::new(Progress::default());
    let bar = terminal.spinner("listing");
    let ticker = {
        let (bar, progress) = (bar.clone(), progress.clone());
        tokio::spawn(async move {
            loop {
                bar.set_message(format!(
                    "keys {}  differences {}  HEADs {}",
                    progress.keys.load(Ordering::Relaxed),
                    progress.differences.load(Ordering::Relaxed),
                    progress.heads.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let written = verify_and_report(
        sides, &mapping, &options, reports, &subject, stop, &progress,
    )
    .await;
    ticker.abort();
    bar.finish();
    let written = written.map_err(|e| {
        let kind = if e.is_transient() {
            FailureKind::Call
        } else {
            FailureKind::Input
        };
        Failure::new(kind, crate::errors::error_chain(&e))
    })?;
    if request.json {
        terminal.print(&format!(
            "{}\n",
            json!({"report": written.dir, "summary": written.summary})
        ));
    } else {
        terminal.print(&render(&written));
    }
    if !written.summary.complete {
        return Err(Failure::new(
            FailureKind::Interrupted,
            format!("interrupted; the report in {} is incomplete", written.dir),
        ));
    }
    Ok(Verified {
        parts: written.summary.differences_list.keys.clone(),
        differences: written.summary.differences,
        dir: written.dir,
    })
}

#[cfg(test)]
mod tests;
