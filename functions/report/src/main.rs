//! The report function: on a schedule, merges outcome records into daily reports in the
//! destination bucket, days strictly oldest first, `manifest.json` last. `report run` runs it once
//! locally, optionally "as of" another instant.

use clap::{Parser, Subcommand};
use lambda_runtime::{service_fn, LambdaEvent};
use s3_oss_sync::config::ReportConfig;
use s3_oss_sync::report::day::format_day;
use s3_oss_sync::{setup, telemetry};
use std::process::ExitCode;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Parser)]
#[command(about = "s3-oss-sync: daily reports of the sync outcomes")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Report every day not yet complete, once.
    Run {
        /// Run as of this instant (RFC 3339) instead of now.
        #[arg(long, value_parser = |s: &str| OffsetDateTime::parse(s, &Rfc3339).map_err(|e| e.to_string()))]
        now: Option<OffsetDateTime>,
    },
}

async fn run_once(config: &ReportConfig, now: OffsetDateTime) -> Result<serde_json::Value, String> {
    let sdk = setup::aws_config().await;
    let days = setup::run_report(config, &sdk, |n| std::env::var(n).ok(), now)
        .await
        .map_err(|e| e.to_string())?;
    let days: Vec<serde_json::Value> = days
        .iter()
        .map(|d| serde_json::json!({"day": format_day(d.day), "state": d.state, "records": d.records}))
        .collect();
    Ok(serde_json::json!({ "days": days }))
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
    match cli.command {
        Some(Command::Run { now }) => {
            match run_once(&config, now.unwrap_or_else(OffsetDateTime::now_utc)).await {
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
                tracing::error!("not inside Lambda (no AWS_LAMBDA_RUNTIME_API); use 'report run [--now RFC3339]' locally");
                return ExitCode::from(2);
            }
            let config = &config;
            let run =
                lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| async move {
                    run_once(config, OffsetDateTime::now_utc())
                        .await
                        .map_err(lambda_runtime::Error::from)
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
