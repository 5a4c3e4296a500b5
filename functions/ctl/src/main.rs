//! `ctl`: the task control command. Backfills objects that existed before the notifications,
//! retries a day's failed keys, redrives the DLQ, pauses and resumes delivery, verifies that the
//! destination matches the source (and repairs what differs), shows a task's state, and aborts
//! stale multipart uploads. Settings come from the same environment variables as the functions'; the logic is in
//! `shared/src/control`.
//!
//! Exit codes: 0 done, 1 an AWS or OSS call failed (trying again may help), 2 bad settings or
//! input, 3 a verification found differences, 130 interrupted (a backfill's checkpoint is saved
//! first).

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use s3_oss_sync::aws::lambda_mapping::EventSourceMapping;
use s3_oss_sync::aws::s3_inventory::InventoryLister;
use s3_oss_sync::aws::s3_lister::S3Lister;
use s3_oss_sync::aws::sqs::SqsQueue;
use s3_oss_sync::aws::sqs_redrive::redrive;
use s3_oss_sync::config::{ControlConfig, ReportConfig, SyncConfig};
use s3_oss_sync::control::backfill::{run_backfill, BackfillOptions};
use s3_oss_sync::control::checkpoint::{
    resume, Checkpoint, CheckpointStore, FileCheckpoint, ObjectSource, Plan, Resume,
};
use s3_oss_sync::control::events::{BACKFILL_EVENT, VERIFY_EVENT};
use s3_oss_sync::control::retry::{read_failed_list, retry_bodies};
use s3_oss_sync::control::stack::{self, StackSettings};
use s3_oss_sync::control::status::gather;
use s3_oss_sync::control::sweep::{sweep_task_uploads, SweepRequest};
use s3_oss_sync::control::ControlError;
use s3_oss_sync::errors::error_chain;
use s3_oss_sync::outcome::format_time;
use s3_oss_sync::report::build::RecordSource;
use s3_oss_sync::report::build::Reporter;
use s3_oss_sync::report::day::{format_day, parse_day};
use s3_oss_sync::setup;
use s3_oss_sync::store::error::StoreError;
use s3_oss_sync::store::queue::EventQueue;
use s3_oss_sync::verify::repair::RepairLister;
use s3_oss_sync::verify::report::{render, verify_and_report, Subject, Summary};
use s3_oss_sync::verify::run::{Mapping, Progress, VerifyOptions};
use s3_oss_sync::verify::stores::{CloudSides, SourceListing};
use serde_json::json;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Parser)]
#[command(
    version,
    about = "s3-oss-sync task control: backfill, retry-failed, redrive, pause, resume, verify, \
             status, sweep-uploads",
    after_help = "Settings: TASK_ID, SOURCE_BUCKET, SOURCE_PREFIX, TASK_QUEUE_URL, \
                  SYNC_FUNCTION_NAME (pause, resume, status), the report function's variables \
                  (RESULTS_BUCKET, DEST_BUCKET, OSS_*) for retry-failed and status, and \
                  DEST_BUCKET, DEST_PREFIX, UPLOAD_SWEEP_AGE_HOURS, RESULTS_BUCKET (the \
                  checkpoints of copies in progress) and OSS_* for sweep-uploads; verify reads \
                  the sync function's and the report function's variables. With --stack NAME, \
                  every variable not set in the environment is read from the deployed stack: its \
                  outputs and its functions' environment.\n\
                  Exit codes: 0 done, 1 an AWS or OSS call failed, 2 bad settings or input, \
                  3 verify found differences, 130 interrupted."
)]
struct Cli {
    /// Read the task's settings from this deployed stack: its functions' environment, with its
    /// outputs over that; variables set in the environment win (the OSS credentials as a set).
    #[arg(long, global = true, value_name = "NAME")]
    stack: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The settings read from `--stack`, when given.
static STACK: OnceLock<StackSettings> = OnceLock::new();

/// A setting: the environment's value, else the stack's.
fn setting(name: &str) -> Option<String> {
    stack::lookup(|n| std::env::var(n).ok(), STACK.get())(name)
}

#[derive(Subcommand)]
enum Command {
    /// Send an event for every object already in the source bucket (under the task's prefix),
    /// so the sync function copies what is missing and skips what is there. Resumable.
    Backfill(BackfillArgs),
    /// Re-send the keys a day's report lists as failed (failed_list), once each.
    RetryFailed {
        /// The day (YYYY-MM-DD, in the report's REPORT_TIME_ZONE).
        #[arg(long, value_parser = |s: &str| parse_day(s).ok_or_else(|| format!("{s:?} is not YYYY-MM-DD")))]
        day: time::Date,
        /// List the keys without sending anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Move the dead-letter queue's messages back to the task queue.
    Redrive {
        /// Move at most this many.
        #[arg(long)]
        max: Option<u64>,
    },
    /// Disable the sync function's event source mapping: messages wait in the queue.
    Pause {
        /// Wait at most this long for the mapping to settle.
        #[arg(long, default_value_t = 120)]
        wait_seconds: u64,
    },
    /// Enable the sync function's event source mapping again.
    Resume {
        /// Wait at most this long for the mapping to settle.
        #[arg(long, default_value_t = 120)]
        wait_seconds: u64,
    },
    /// Compare the source and destination listings of the task's prefix key by key (HEADs only
    /// for keys the listings cannot settle), write the verification report to the report area,
    /// and with --repair send events for what differs.
    Verify(VerifyArgs),
    /// Queue depths, oldest message age, delivery state, last complete report day, today's counts,
    /// copies in progress.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Leave out the oldest message's age, the one part CloudWatch answers (a local stack
        /// does not serve CloudWatch).
        #[arg(long)]
        no_cloudwatch: bool,
    },
    /// Abort the multipart uploads under the task's DEST_PREFIX that were initiated longer ago
    /// than --older-than (uploads a killed or timed-out sync left open, whose parts OSS bills),
    /// except those of copies in progress whose checkpoints were written within --older-than.
    SweepUploads {
        /// Age in hours, 1 to 720 [default: UPLOAD_SWEEP_AGE_HOURS, or 24].
        #[arg(long, value_name = "HOURS", value_parser = clap::value_parser!(u64).range(1..=720))]
        older_than: Option<u64>,
        /// List what would be aborted; abort nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn parse_since(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .or_else(|| parse_day(s).map(|d| d.midnight().assume_utc()))
        .ok_or_else(|| format!("{s:?} is neither RFC 3339 (2026-11-01T00:00:00Z) nor a date"))
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| format!("{s:?} is not a number of events per second"))?;
    if r.is_finite() && r > 0.0 {
        Ok(r)
    } else {
        Err(format!("{s:?} must be above 0"))
    }
}

/// A command's failure, with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        ControlError::from(e).into()
    }
}

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        let code = match e {
            ControlError::Store(StoreError::Call { .. }) | ControlError::Oss(_) => 1,
            ControlError::Store(StoreError::Input(_))
            | ControlError::Input(_)
            | ControlError::Checkpoint { .. } => 2,
        };
        Self {
            code,
            message: error_chain(&e),
        }
    }
}

fn config_failure(e: impl std::fmt::Display) -> Failure {
    Failure {
        code: 2,
        message: format!("invalid configuration: {e}"),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(message.to_owned());
    bar
}

/// A stop flag set by Ctrl-C or SIGTERM.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("ctl: stopping: waiting for the batches in flight, then saving the checkpoint");
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

/// `ctl backfill`'s options.
#[derive(clap::Args)]
struct BackfillArgs {
    /// Only keys under this prefix (inside the task's SOURCE_PREFIX).
    #[arg(long)]
    prefix: Option<String>,
    /// Only objects modified at or after this instant (RFC 3339, or a date: its midnight UTC).
    #[arg(long, value_parser = parse_since)]
    since: Option<OffsetDateTime>,
    /// At most this many events per second.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Read the objects from an S3 Inventory (CSV) manifest, s3://bucket/key/manifest.json,
    /// instead of listing the bucket.
    #[arg(long)]
    inventory: Option<String>,
    /// The checkpoint file [default: backfill-TASK_ID.checkpoint.json].
    #[arg(long)]
    checkpoint: Option<String>,
    /// Start over even if an unfinished backfill is checkpointed.
    #[arg(long)]
    restart: bool,
    /// Batches of 10 in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// Hold sending while more than this many messages wait in the task queue, so live
    /// events are not queued behind the backfill.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_waiting: Option<u64>,
}

async fn backfill(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    a: BackfillArgs,
) -> Result<serde_json::Value, Failure> {
    let prefix = config
        .backfill_prefix(a.prefix.as_deref())
        .map_err(config_failure)?;
    let plan = Plan {
        task: config.task_id.clone(),
        source_bucket: config.source_bucket.clone(),
        prefix: prefix.clone(),
        since: a.since.map(format_time),
        source: match &a.inventory {
            None => ObjectSource::List,
            Some(m) => ObjectSource::Inventory {
                manifest: m.clone(),
            },
        },
        queue_url: config.queue_url.clone(),
    };
    let store = FileCheckpoint::new(
        a.checkpoint
            .unwrap_or_else(|| format!("backfill-{}.checkpoint.json", config.task_id)),
    );
    let started = format_time(now());
    let cp = match resume(store.load()?, plan, a.restart, &started)? {
        Resume::Fresh(cp) => cp,
        Resume::Continue(cp) => {
            eprintln!(
                "ctl: resuming the backfill checkpointed in {} ({} events sent so far)",
                store.path().display(),
                cp.counts.sent
            );
            cp
        }
    };
    let s3 = setup::s3_client(sdk, config.s3_path_style);
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
    let opts = BackfillOptions {
        bucket: config.source_bucket.clone(),
        since: a.since,
        rate: a.rate,
        parallel: a.parallel as usize,
        batch_size: 10,
        max_waiting: a.max_waiting,
        event: BACKFILL_EVENT,
    };
    let stop = stop_on_signal();
    let bar = spinner("listing");
    let progress = |cp: &Checkpoint| {
        bar.set_message(format!(
            "listed {}  sent {}  older than --since {}  left out {}",
            cp.counts.listed, cp.counts.sent, cp.counts.before_since, cp.counts.not_current
        ))
    };
    let out = match &a.inventory {
        None => {
            let lister = S3Lister::new(s3, &config.source_bucket, &prefix, &cp.position)?;
            run_backfill(lister, &queue, &store, &opts, cp, &stop, progress).await
        }
        Some(manifest) => {
            let lister =
                InventoryLister::open(s3, manifest, &config.source_bucket, &prefix, &cp.position)
                    .await?;
            run_backfill(lister, &queue, &store, &opts, cp, &stop, progress).await
        }
    };
    bar.finish_and_clear();
    let cp = out?;
    let summary = json!({
        "finished": cp.finished,
        "checkpoint": store.path().display().to_string(),
        "prefix": prefix,
        "counts": cp.counts,
        "runs": cp.runs,
    });
    if !cp.finished {
        println!("{summary}");
        return Err(Failure {
            code: 130,
            message: format!(
                "interrupted; run the same command again to resume from {}",
                store.path().display()
            ),
        });
    }
    Ok(summary)
}

/// `ctl verify`'s options.
#[derive(clap::Args)]
struct VerifyArgs {
    /// Send events for the keys missing or differing in OSS (and, with SYNC_DELETES, for the keys
    /// only in OSS) through the task queue, checkpointed and rate-limited like a backfill.
    #[arg(long)]
    repair: bool,
    /// Only keys under this prefix (inside the task's SOURCE_PREFIX).
    #[arg(long)]
    prefix: Option<String>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Read the source from an S3 Inventory (CSV) manifest, s3://bucket/key/manifest.json,
    /// instead of listing the bucket (one listing, in the inventory's key order).
    #[arg(long)]
    inventory: Option<String>,
    /// Key ranges listed at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    parallel: u16,
    /// Seconds the OSS copy must be later than S3's LastModified for the listing alone to
    /// settle a key (the clocks of the two clouds may differ by this much).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=3600))]
    clock_tolerance: u16,
    /// Repair: at most this many events per second.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<f64>,
    /// Repair: hold sending while more than this many messages wait in the task queue.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_waiting: Option<u64>,
    /// Repair: the checkpoint file [default: verify-TASK_ID.checkpoint.json].
    #[arg(long)]
    checkpoint: Option<String>,
    /// Repair: verify again even if an unfinished repair is checkpointed.
    #[arg(long)]
    restart: bool,
}

/// A verification's exit when it found differences (and, with --repair, sent events for them).
const DIFFERENCES_FOUND: u8 = 3;

async fn verify(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    a: VerifyArgs,
) -> Result<serde_json::Value, Failure> {
    let sync = SyncConfig::from_lookup(setting).map_err(config_failure)?;
    let report = ReportConfig::from_lookup(setting).map_err(config_failure)?;
    let prefix = config
        .backfill_prefix(a.prefix.as_deref())
        .map_err(config_failure)?;
    let parts = setup::report_parts(&report, sdk)
        .await
        .map_err(config_failure)?;
    let store = FileCheckpoint::new(
        a.checkpoint
            .clone()
            .unwrap_or_else(|| format!("verify-{}.checkpoint.json", config.task_id)),
    );
    let stop = stop_on_signal();
    // An unfinished repair is resumed from its own verification, not verified again.
    let saved = if a.repair && !a.restart {
        store.load()?.filter(|cp| !cp.finished)
    } else {
        None
    };
    let (written_dir, parts_keys, differences) = match &saved {
        Some(cp) => {
            let ObjectSource::Verification { report: dir } = &cp.plan.source else {
                return Err(ControlError::Input(format!(
                    "{} is not a verification's checkpoint; pass --checkpoint or --restart",
                    store.path().display()
                ))
                .into());
            };
            eprintln!(
                "ctl: resuming the repair of {dir} checkpointed in {} ({} events sent so far)",
                store.path().display(),
                cp.counts.sent
            );
            let body = parts
                .oss
                .get(&format!("{dir}summary.json"))
                .await
                .map_err(ControlError::oss)?;
            let summary: Summary = serde_json::from_slice(&body)
                .map_err(|e| ControlError::Input(format!("{dir}summary.json: {e}")))?;
            (
                dir.clone(),
                summary.differences_list.keys,
                summary.differences,
            )
        }
        None => {
            let mapping = Mapping::new(sync.binding.clone(), &prefix);
            let sides = CloudSides {
                s3: parts.s3.clone(),
                source_bucket: config.source_bucket.clone(),
                listing: match &a.inventory {
                    None => SourceListing::List,
                    Some(m) => SourceListing::Inventory(m.clone()),
                },
                oss: parts.oss.client().clone(),
                dest_bucket: report.dest_bucket.clone(),
            };
            let options = VerifyOptions {
                parallel: a.parallel as usize,
                clock_tolerance_s: i64::from(a.clock_tolerance),
                ..VerifyOptions::default()
            };
            let subject = Subject {
                task: config.task_id.clone(),
                source: match &a.inventory {
                    None => "list".to_owned(),
                    Some(m) => format!("inventory {m}"),
                },
                report_prefix: report.report_prefix.clone(),
                part_bytes: report.part_bytes,
            };
            let progress = Arc::new(Progress::default());
            let bar = spinner("listing");
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
                &sides, &mapping, &options, &parts.oss, &subject, &stop, &progress,
            )
            .await;
            ticker.abort();
            bar.finish_and_clear();
            let written = written.map_err(|e| Failure {
                code: if s3_oss_sync::retry::Transient::is_transient(&e) {
                    1
                } else {
                    2
                },
                message: error_chain(&e),
            })?;
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"report": written.dir, "summary": written.summary})
                );
            } else {
                print!("{}", render(&written));
            }
            if !written.summary.complete {
                return Err(Failure {
                    code: 130,
                    message: format!("interrupted; the report in {} is incomplete", written.dir),
                });
            }
            (
                written.dir.clone(),
                written.summary.differences_list.keys.clone(),
                written.summary.differences,
            )
        }
    };
    let mut out = json!({"report": written_dir, "differences": differences});
    if a.repair && (differences > 0 || saved.is_some()) {
        let plan = Plan {
            task: config.task_id.clone(),
            source_bucket: config.source_bucket.clone(),
            prefix: prefix.clone(),
            since: None,
            source: ObjectSource::Verification {
                report: written_dir.clone(),
            },
            queue_url: config.queue_url.clone(),
        };
        let cp = saved.unwrap_or_else(|| Checkpoint::new(plan, &format_time(now())));
        let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
        let opts = BackfillOptions {
            bucket: config.source_bucket.clone(),
            since: None,
            rate: a.rate,
            parallel: 8,
            batch_size: 10,
            max_waiting: a.max_waiting,
            event: VERIFY_EVENT,
        };
        let lister = RepairLister::new(
            parts.oss.clone(),
            parts_keys,
            &cp.position,
            sync.sync_deletes,
        );
        let bar = spinner("repairing");
        let done = run_backfill(lister, &queue, &store, &opts, cp, &stop, |cp| {
            bar.set_message(format!(
                "sent {}  left out (extra, delete sync off) {}",
                cp.counts.sent, cp.counts.not_current
            ))
        })
        .await;
        bar.finish_and_clear();
        let cp = done?;
        out["repair"] = json!({
            "finished": cp.finished,
            "checkpoint": store.path().display().to_string(),
            "sent": cp.counts.sent,
            "left_out_extra": cp.counts.not_current,
            "runs": cp.runs,
        });
        if !cp.finished {
            println!("{out}");
            return Err(Failure {
                code: 130,
                message: format!(
                    "interrupted; run the same command again to resume the repair from {}",
                    store.path().display()
                ),
            });
        }
    }
    if differences > 0 {
        println!("{out}");
        return Err(Failure {
            code: DIFFERENCES_FOUND,
            message: format!("{differences} differences (listed in {written_dir})"),
        });
    }
    Ok(out)
}

async fn retry_failed(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    day: time::Date,
    dry_run: bool,
) -> Result<serde_json::Value, Failure> {
    let report = ReportConfig::from_lookup(setting).map_err(config_failure)?;
    let parts = setup::report_parts(&report, sdk)
        .await
        .map_err(config_failure)?;
    let reporter = Reporter {
        settings: &parts.settings,
        results: &parts.records,
        store: &parts.oss,
    };
    let list = read_failed_list(&reporter, day, &config.source_bucket).await?;
    let mut summary = json!({
        "day": format_day(day),
        "keys": list.keys.len(),
        "deletes": list.keys.iter().filter(|k| k.delete).count(),
        "failed_files": list.failed_files,
        "invalid_files": list.invalid_files,
        "unusable_files": list.unusable_files,
    });
    if dry_run {
        summary["dry_run"] = json!(true);
        summary["key_list"] = json!(list.keys.iter().map(|k| &k.key).collect::<Vec<_>>());
        return Ok(summary);
    }
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
    let bar = ProgressBar::new(list.keys.len() as u64);
    let mut sent = 0;
    for chunk in retry_bodies(&list.keys, &config.source_bucket, now()).chunks(10) {
        if let Err(e) = queue.send_batch(chunk.to_vec()).await {
            bar.abandon();
            return Err(Failure {
                code: 1,
                message: format!(
                    "{} (after {sent} of {} keys were sent)",
                    error_chain(&e),
                    list.keys.len()
                ),
            });
        }
        sent += chunk.len();
        bar.set_position(sent as u64);
    }
    bar.finish_and_clear();
    summary["sent"] = json!(sent);
    Ok(summary)
}

async fn redrive_dlq(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    max: Option<u64>,
) -> Result<serde_json::Value, Failure> {
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
    let Some(dlq) = queue.dead_letter_queue().await? else {
        return Err(ControlError::Input(format!(
            "the queue {} has no redrive policy, so no dead-letter queue",
            config.queue_url
        ))
        .into());
    };
    let bar = spinner("receiving");
    let moved = redrive(&dlq, &queue, max, |r| {
        bar.set_message(format!("moved {}", r.moved))
    })
    .await;
    bar.finish_and_clear();
    let moved = moved?;
    Ok(
        json!({"dlq": dlq.url(), "queue": queue.url(), "moved": moved.moved, "not_deleted": moved.not_deleted}),
    )
}

async fn switch(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    enabled: bool,
    wait: Duration,
) -> Result<serde_json::Value, Failure> {
    let function = config.function_name.as_deref().ok_or_else(|| {
        config_failure("SYNC_FUNCTION_NAME is not set (the sync function's name or ARN)")
    })?;
    let mapping = EventSourceMapping::for_queue(sdk, function, &config.queue_url).await?;
    let state = mapping.set_enabled(enabled, wait).await?;
    let target = if enabled { "Enabled" } else { "Disabled" };
    let summary = json!({"mapping": mapping.uuid(), "state": state});
    if state != target {
        println!("{summary}");
        return Err(Failure {
            code: 1,
            message: format!(
                "the mapping is {state}, not yet {target}, after {} s",
                wait.as_secs()
            ),
        });
    }
    Ok(summary)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let sdk = setup::aws_config().await;
    if let Some(name) = &cli.stack {
        match stack::read(&sdk, name).await {
            Ok(settings) => {
                tracing::info!(stack = %name, settings = settings.len(), "settings read from the stack");
                let overridden = settings.overridden(|n| std::env::var(n).ok());
                if !overridden.is_empty() {
                    eprintln!(
                        "ctl: from the environment, not stack {name:?}: {}",
                        overridden.join(", ")
                    );
                }
                let _ = STACK.set(settings);
            }
            Err(e) => {
                eprintln!(
                    "ctl: cannot read the settings of stack {name:?}: {}",
                    error_chain(&e)
                );
                // A stack that is not there, or not this product's, is bad input (2); a failed
                // AWS call is 1, as for every command.
                return ExitCode::from(Failure::from(e).code);
            }
        }
    }
    let config = match ControlConfig::from_lookup(setting) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ctl: invalid configuration: {e}");
            if cli.stack.is_none() {
                eprintln!(
                    "ctl: set the task's variables, or name its deployed stack with --stack NAME"
                );
            }
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Backfill(args) => backfill(&config, &sdk, args).await,
        Command::RetryFailed { day, dry_run } => retry_failed(&config, &sdk, day, dry_run).await,
        Command::Redrive { max } => redrive_dlq(&config, &sdk, max).await,
        Command::Verify(args) => verify(&config, &sdk, args).await,
        Command::Pause { wait_seconds } => {
            switch(&config, &sdk, false, Duration::from_secs(wait_seconds)).await
        }
        Command::Resume { wait_seconds } => {
            switch(&config, &sdk, true, Duration::from_secs(wait_seconds)).await
        }
        Command::SweepUploads {
            older_than,
            dry_run,
            json,
        } => {
            let request = SweepRequest {
                older_than_hours: older_than,
                dry_run,
            };
            let swept = sweep_task_uploads(&config, &sdk, setting, request).await;
            let summary = match swept {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("ctl: {}", error_chain(&e));
                    return ExitCode::from(Failure::from(e).code);
                }
            };
            if json {
                println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            } else {
                print!("{}", summary.render());
            }
            if let Some(why) = &summary.held {
                eprintln!("ctl: nothing aborted: {why}");
            }
            return if summary.failed.is_empty() && summary.held.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Command::Status {
            json,
            no_cloudwatch,
        } => {
            let st = gather(&config, &sdk, setting, !no_cloudwatch).await;
            if json {
                println!("{}", serde_json::to_string(&st).unwrap_or_default());
            } else {
                print!("{}", st.render());
            }
            return if st.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
    };
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("ctl: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
