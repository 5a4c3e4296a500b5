//! `ctl`: the task control command. Backfills objects that existed before the notifications,
//! retries a day's failed keys, redrives the DLQ, pauses and resumes delivery, verifies that the
//! destination matches the source (and repairs what differs), shows a task's state, and aborts
//! stale multipart uploads. Settings come from the same environment variables as the functions'
//! (or a deployed stack's, with `--stack`); the commands are in `shared/src/control/commands`.
//!
//! Exit codes: 0 done, 1 an AWS or OSS call failed (trying again may help), 2 bad settings or
//! input, 3 a verification found differences, 130 interrupted (a backfill's checkpoint is saved
//! first).

mod cli;
mod terminal;

use clap::Parser;
use cli::{Cli, Command};
use s3_oss_sync::control::commands::backfill::backfill;
use s3_oss_sync::control::commands::failure::Failure;
use s3_oss_sync::control::commands::redrive::redrive_dlq;
use s3_oss_sync::control::commands::retry_failed::retry_failed;
use s3_oss_sync::control::commands::settings::{self, Settings};
use s3_oss_sync::control::commands::status::status;
use s3_oss_sync::control::commands::sweep_uploads::sweep_uploads;
use s3_oss_sync::control::commands::switch::switch;
use s3_oss_sync::control::commands::verify::verify;
use s3_oss_sync::control::commands::Output;
use s3_oss_sync::control::sweep::SweepRequest;
use s3_oss_sync::setup;
use std::process::ExitCode;
use std::time::Duration;
use terminal::Console;

/// Runs the command with the task's settings.
async fn run(
    command: Command,
    sdk: &aws_config::SdkConfig,
    settings: &Settings,
) -> Result<Output, Failure> {
    let config = settings.control_config()?;
    let term = &Console;
    let summary = match command {
        Command::Backfill(a) => backfill(&config, sdk, &a.into(), term).await,
        Command::RetryFailed { day, dry_run } => {
            retry_failed(&config, sdk, settings, day, dry_run, term).await
        }
        Command::Redrive { max } => redrive_dlq(&config, sdk, max, term).await,
        Command::Verify(a) => verify(&config, sdk, settings, &a.into(), term).await,
        Command::Pause { wait_seconds } => {
            switch(&config, sdk, false, Duration::from_secs(wait_seconds)).await
        }
        Command::Resume { wait_seconds } => {
            switch(&config, sdk, true, Duration::from_secs(wait_seconds)).await
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
            return sweep_uploads(&config, sdk, settings, request, json).await;
        }
        Command::Status {
            json,
            no_cloudwatch,
        } => return Ok(status(&config, sdk, settings, !no_cloudwatch, json).await),
    };
    summary.map(Output::summary)
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
    let env = Settings::process_env();
    let result = match settings::load(&sdk, env, cli.stack.as_deref(), &Console).await {
        Ok(settings) => run(cli.command, &sdk, &settings).await,
        Err(f) => Err(f),
    };
    match result {
        Ok(out) => {
            print!("{}", out.stdout);
            eprint!("{}", out.stderr());
            ExitCode::from(out.code)
        }
        Err(f) => {
            print!("{}", f.stdout());
            eprint!("{}", f.stderr());
            ExitCode::from(f.code())
        }
    }
}
