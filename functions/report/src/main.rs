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
//!
//! Its stores (the OSS credentials read from their secret, the OSS client, the S3 clients) are
//! built once per process, at the cold start, and shared by its invocations; a build that failed
//! is the next invocation's error and is tried again by the one after. A failed invocation tells
//! Lambda what kind of failure it is (`errorType`: `ConfigurationError`, `TransientError` or
//! `RunError`), with the error and its causes as the message.

use clap::{Parser, Subcommand};
use lambda_runtime::{service_fn, LambdaEvent};
use s3_oss_sync::config::ReportConfig;
use s3_oss_sync::errors::error_chain;
use s3_oss_sync::report::day::{as_of, check_grace, format_day};
use s3_oss_sync::report::lease::LeasedRun;
use s3_oss_sync::setup::{ColdStart, Failure, ReportParts, SdkConfig};
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

/// Runs the scheduled verification with the function's stores; its summary as JSON.
async fn verify_once(
    config: &ReportConfig,
    parts: &ReportParts,
    deadline: Option<SystemTime>,
    sink: &LineSink,
) -> Result<serde_json::Value, Failure> {
    let written =
        setup::run_verify(config, parts, |n| std::env::var(n).ok(), deadline, sink).await?;
    Ok(serde_json::json!({"verification": written.dir, "summary": written.summary}))
}

/// Runs the report once with the function's stores; what it did as JSON.
async fn run_once(
    config: &ReportConfig,
    sdk: &SdkConfig,
    parts: &ReportParts,
    now: OffsetDateTime,
    deadline: Option<SystemTime>,
    sink: &LineSink,
) -> Result<serde_json::Value, Failure> {
    let run = setup::run_report(config, sdk, parts, now, deadline, sink).await?;
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
        Some(Err(e)) => serde_json::json!({ "error": error_chain(e) }),
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
    let sdk = setup::aws_config().await;
    match cli.command {
        Some(Command::Verify) => {
            let sink: LineSink = Arc::new(|line: &str| eprintln!("{line}"));
            let verified = match setup::report_parts(&config, &sdk).await {
                Ok(parts) => verify_once(&config, &parts, None, &sink).await,
                Err(e) => Err(e.into()),
            };
            match verified {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error_type = e.kind.name(), error = %e.message, "verification failed");
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
            let ran = match setup::report_parts(&config, &sdk).await {
                Ok(parts) => run_once(&config, &sdk, &parts, now, None, &sink).await,
                Err(e) => Err(e.into()),
            };
            match ran {
                Ok(out) => {
                    println!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error_type = e.kind.name(), error = %e.message, "report run failed");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            if !telemetry::inside_lambda("report run [--now RFC3339 [--allow-future]]") {
                return ExitCode::from(2);
            }
            // Built once per process, at the cold start: the credentials read from their secret,
            // the OSS client, the S3 client. A failed build is the first invocation's error; the
            // next builds again.
            let parts = Arc::new(ColdStart::new(setup::report_parts(&config, &sdk).await));
            let (config, sdk) = (&config, &sdk);
            let sink = &telemetry::stdout_sink();
            let run = lambda_runtime::run(service_fn(|ev: LambdaEvent<serde_json::Value>| {
                let parts = parts.clone();
                async move {
                    let deadline = Some(ev.context.deadline());
                    let verify = ev.payload["verify"] == serde_json::Value::Bool(true);
                    let done = match parts.get(|| setup::report_parts(config, sdk)).await {
                        Err(e) => Err(Failure::from(e)),
                        Ok(parts) if verify => verify_once(config, &parts, deadline, sink).await,
                        Ok(parts) => {
                            let now = OffsetDateTime::now_utc();
                            run_once(config, sdk, &parts, now, deadline, sink).await
                        }
                    };
                    if let Err(e) = &done {
                        tracing::error!(error_type = e.kind.name(), error = %e.message, verify, "the invocation failed");
                    }
                    done
                }
            }));
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
