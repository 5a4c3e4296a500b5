//! The sync function: SQS messages carrying S3 object events in, OSS objects and outcome records
//! out. Inside Lambda it runs the Lambda runtime; `sync poll` is the local event source.
//!
//! In Lambda, the service (its clients, the OSS credentials read from their secret) is built once,
//! at the cold start. A failed build is the next invocation's error, telling Lambda what kind of
//! failure it is (`errorType`: `ConfigurationError` or `TransientError`) so the batch comes back
//! for another try, and the invocation after builds again. Once built, an invocation never fails:
//! each message's failure is in the batch response.

use aws_lambda_events::event::sqs::SqsEvent;
use clap::{Parser, Subcommand};
use lambda_runtime::{service_fn, LambdaEvent};
use s3_oss_sync::aws::lambda_mapping::EventSourceMapping;
use s3_oss_sync::aws::sqs_poll::{max_receive_count, poll, PollOptions, DEFAULT_BATCHES_IN_FLIGHT};
use s3_oss_sync::config::SyncConfig;
use s3_oss_sync::errors::error_chain;
use s3_oss_sync::setup::{ColdStart, Failure};
use s3_oss_sync::sync::handler::Invocation;
use s3_oss_sync::{setup, telemetry};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "s3-oss-sync: copy S3 object events' objects to OSS")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Long-poll an SQS queue and handle its batches as Lambda would, deleting only the
    /// messages not reported failed.
    Poll {
        /// The task queue's URL.
        #[arg(long)]
        queue_url: String,
        /// Messages per batch (1-10).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
        batch_size: i32,
        /// Stop once the queue holds no message, visible or in flight.
        #[arg(long)]
        until_empty: bool,
        /// Stop after this many seconds whatever is left.
        #[arg(long)]
        max_seconds: Option<u64>,
        /// Follow this function's event source mapping on the queue: receive nothing while it
        /// is disabled (`ctl pause`), as Lambda would.
        #[arg(long)]
        function_name: Option<String>,
        /// Seconds each batch may take, as the function's timeout in Lambda (default: the queue's
        /// visibility timeout ÷ 6). Jobs still running near it are stopped and recorded deferred.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=900))]
        invocation_timeout: Option<u64>,
        /// Batches handled at once, as concurrent invocations would (the next receive is in
        /// flight while fewer are handled); Lambda starts with 5. Batches in flight together
        /// must end within the queue's visibility timeout.
        #[arg(long, default_value_t = DEFAULT_BATCHES_IN_FLIGHT as u64, value_parser = clap::value_parser!(u64).range(1..=100))]
        batches: u64,
    },
}

/// Lambda's deadline (milliseconds since the epoch) on tokio's clock. Lambda never hands over an
/// event past its deadline, so one already past means the clocks disagree (or an emulator counted
/// a build against it): then the invocation runs without one rather than defer every event.
fn lambda_deadline(deadline_ms: u64) -> Option<tokio::time::Instant> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if deadline_ms <= now_ms {
        tracing::warn!(
            deadline_ms,
            now_ms,
            "the invocation's deadline is already past on this clock; running without one"
        );
        return None;
    }
    Some(tokio::time::Instant::now() + Duration::from_millis(deadline_ms - now_ms))
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::tune_allocator();
    telemetry::init_diagnostics();
    let cli = Cli::parse();
    let config = match SyncConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let sdk = setup::aws_config().await;
    let built = setup::sync_service(&config, &sdk, telemetry::stdout_sink()).await;
    match cli.command {
        Some(Command::Poll {
            queue_url,
            batch_size,
            until_empty,
            max_seconds,
            function_name,
            invocation_timeout,
            batches,
        }) => {
            let mut service = match built {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "start-up failed");
                    return ExitCode::from(2);
                }
            };
            let sqs = aws_sdk_sqs::Client::new(&sdk);
            if service.max_receive_count.is_none() {
                match max_receive_count(&sqs, &queue_url).await {
                    Ok(n) => service.max_receive_count = n,
                    Err(e) => {
                        tracing::warn!(error = %error_chain(&e), "cannot read the queue's redrive policy; no failure is recorded as final on its last delivery")
                    }
                }
            }
            service.rechecks.set_url(&queue_url);
            let service = Arc::new(service);
            let mapping = match function_name {
                None => None,
                Some(f) => match EventSourceMapping::for_queue(&sdk, &f, &queue_url).await {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::error!(error = %error_chain(&e), "cannot follow the event source mapping");
                        return ExitCode::from(2);
                    }
                },
            };
            let opts = PollOptions {
                mapping,
                queue_url,
                batch_size,
                until_empty,
                max_duration: max_seconds.map(Duration::from_secs),
                wait_seconds: if until_empty { 1 } else { 20 },
                invocation_timeout: invocation_timeout.map(Duration::from_secs),
                batches_in_flight: batches as usize,
            };
            let handler = |event: SqsEvent, deadline: tokio::time::Instant| {
                let service = service.clone();
                async move {
                    let id = format!("poll-{:016x}", rand::random::<u64>());
                    // Batches start as soon as they are received, and end by their deadline.
                    let lifetime = deadline.saturating_duration_since(tokio::time::Instant::now())
                        + Duration::from_secs(2);
                    let inv = Invocation {
                        id: &id,
                        deadline: Some(deadline),
                        recheck_after: Some(lifetime),
                    };
                    service.handle_within(&event, inv).await.response
                }
            };
            match poll(&sqs, &opts, handler).await {
                Ok(summary) => {
                    tracing::info!(?summary, "polling finished");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "polling failed");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            if !telemetry::inside_lambda("sync poll --queue-url URL") {
                return ExitCode::from(2);
            }
            if let Err(e) = &built {
                tracing::error!(error_type = e.kind().name(), error = %error_chain(e), "start-up failed; the first invocation fails with it, the next builds again");
            }
            let service = Arc::new(ColdStart::new(built));
            let (config, sdk) = (&config, &sdk);
            let run = lambda_runtime::run(service_fn(|ev: LambdaEvent<SqsEvent>| {
                let service = service.clone();
                async move {
                    let build = || setup::sync_service(config, sdk, telemetry::stdout_sink());
                    let service = match service.get(build).await {
                        Ok(s) => s,
                        Err(e) => {
                            let failure = Failure::from(e);
                            tracing::error!(error_type = failure.kind.name(), error = %failure.message, "the sync service cannot be built; the batch comes back");
                            return Err(failure);
                        }
                    };
                    let inv = Invocation {
                        id: &ev.context.request_id,
                        deadline: lambda_deadline(ev.context.deadline),
                        recheck_after: None,
                    };
                    let report = service.handle_within(&ev.payload, inv).await;
                    Ok(report.response)
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
