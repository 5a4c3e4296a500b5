//! The report function: on a schedule, merges outcome records into daily reports in the
//! destination bucket, days strictly oldest first, `manifest.json` last, then aborts the
//! multipart uploads under the task's prefix older than `UPLOAD_SWEEP_AGE_HOURS` (a failed
//! sweep is logged and counted, never fails the run). `report run` runs it once locally,
//! optionally "as of" another instant. A run writes only under the report lease: when another
//! run holds it, this one exits 0 saying so (`lease` in `report run`'s JSON).
//!
//! Invoked with `{"verify": true}` (the template's optional `VerifySchedule`), or as `report
//! verify` locally, it verifies the task instead: the source and destination listings compared,
//! the verification report written to the report area, its result as metrics.

use clap::{Parser, Subcommand};
use lambda_runtime::{service_fn, LambdaEvent};
use s3_oss_sync::config::ReportConfig;
use s3_oss_sync::report::day::{as_of, check_grace, format_day};
use s3_oss_sync::report::lease::LeasedRun;
use s3_oss_sync::telemetry::LineSink;
use s3_oss_sync::{setup, telemetry};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::SystemTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Parser)]
#[command(version, about = "s3-oss-sync: daily reports of the sync outcomes")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Report every day not yet complete, once.
    Run {
        /// Run as of this instant (RFC 3339) instead of now; not later than the clock unless
        /// --allow-future.
        #[arg(long, value_parser = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|e| e.to_string()))]
        now: Option<OffsetDateTime>,
        /// Accept a --now later than the clock (days complete before their records are written;
        /// records written after are listed late in a later day's report).
        #[arg(long)]
        allow_future: bool,
    },
    /// Verify the task once (as the scheduled verification does): compare the source and
    /// destination listings, write the verification report, print its summary as JSON.
    Verify,
}

/// Runs the scheduled verification; its summary as JSON.
async fn verify_once(
    config: &ReportConfig,
    deadline: Option<SystemTime>,
    sink: &LineSink,
) -> Result<serde_json::Value, String> {
    let sdk = setup::aws_config().await;
    let written = setup::run_verify(config, &sdk, |n| std::env::var(n).ok(), deadline, sink)
        .await
        .map_err(|e| e.to_string())?;
    Ok(serde_json::json!({"verification": written.dir, "summary": written.summary}))
}

async fn run_once(
    config: &ReportConfig,
    now: OffsetDateTime,
    deadline: Option<SystemTime>,
    sink: &LineSink,
) -> Result<serde_json::Value, String> {
    let sdk = setup::aws_config().await;
    let run = setup::run_report(config, &sdk, now, deadline, sink)
        .await
        .map_err(|e| e.to_string())?;
    let report = match &run.report {
        LeasedRun::Ran(report) => report,
        LeasedRun::Busy(busy) => {
            return Ok(serde_json::json!({
                "days": [],
                "nothing_to_do": busy.to_string(),
                "lease": {"held_by": busy.holder, "expires_at": busy.expires_at},
                "upload_sweep": null,
            }))
        }
    };
    let states: Vec<(String, &str)> = report
        .days
        .iter()
        .map(|d| (format_day(d.day), d.state))
        .collect();
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    sink(&telemetry::report_metrics_line(
        &config.task_id,
        &states,
        now_ms,
    ));
    let days: Vec<serde_json::Value> = report
        .days
        .iter()
        .map(|d| serde_json::json!({"day": format_day(d.day), "state": d.state, "files": d.files, "records": d.records}))
        .collect();
    let sweep = match &run.sweep {
        Some(Ok(s)) => serde_json::to_value(s).unwrap_or_default(),
        Some(Err(e)) => serde_json::json!({ "error": e.to_string() }),
        None => serde_json::Value::Null,
    };
    Ok(serde_json::json!({
        "days": days,
        "nothing_to_do": report.nothing_to_do,
        "ignored": report.ignored,
        "upload_sweep": sweep,
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::tune_allocator();
    telemetry::init_diagnostics();
    let cli = Cli::parse();
    let config = match ReportConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let grace = time::Duration::minutes(config.grace_minutes as i64);
    let sync_timeout = std::env::var("SYNC_FUNCTION_TIMEOUT_SECONDS").ok();
    if let Err(e) = check_grace(grace, sync_timeout.as_deref()) {
        tracing::error!(error = %e, "invalid configuration");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Command::Verify) => {
            let sink: LineSink = Arc::new(|line: &str| eprintln!("{line}"));
            match verify_once(&config, None, &sink).await {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "verification failed");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Command::Run { now, allow_future }) => {
            // Locally, stdout is the run's JSON alone; the metric line goes to stderr.
            let sink: LineSink = Arc::new(|line: &str| eprintln!("{line}"));
            let now = match as_of(now, OffsetDateTime::now_utc(), allow_future) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "refused");
                    return ExitCode::from(2);
                }
            };
            match run_once(&config, now, None, &sink).await {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %e, "report run failed");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
                tracing::error!("not inside Lambda (no AWS_LAMBDA_RUNTIME_API); use 'report run [--now RFC3339 [--allow-future]]' locally");
                return ExitCode::from(2);
            }
            let config = &config;
            let sink = &telemetry::stdout_sink();
            let run = lambda_runtime::run(service_fn(
                |ev: LambdaEvent<serde_json::Value>| async move {
                    let deadline = Some(ev.context.deadline());
                    if ev.payload["verify"] == serde_json::Value::Bool(true) {
                        return verify_once(config, deadline, sink)
                            .await
                            .map_err(lambda_runtime::Error::from);
                    }
                    run_once(config, OffsetDateTime::now_utc(), deadline, sink)
                        .await
                        .map_err(lambda_runtime::Error::from)
                },
            ));
            match run.await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "the Lambda runtime stopped");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
