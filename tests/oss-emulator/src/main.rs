//! `oss-emulator`: runs the OSS emulator until interrupted. Prints `listening on ADDR` first.

use clap::Parser;
use oss_emulator::{Config, Emulator, FaultConfig};
use s3_oss_sync::oss::signing::Credentials;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// A local Alibaba Cloud OSS emulator that checks V4 signatures like OSS does.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The AccessKey ID clients must sign with.
    #[arg(long)]
    access_key_id: String,
    /// The AccessKey secret clients must sign with.
    #[arg(long, env = "OSS_EMULATOR_ACCESS_KEY_SECRET", hide_env_values = true)]
    access_key_secret: String,
    /// An STS security token the key requires.
    #[arg(long)]
    security_token: Option<String>,
    /// Region signatures must be scoped to.
    #[arg(long, default_value = "cn-hangzhou")]
    region: String,
    /// A bucket that exists from the start (repeatable).
    #[arg(long = "bucket")]
    buckets: Vec<String>,
    /// Answer NoSuchBucket for buckets that were not created, instead of creating them on use.
    #[arg(long)]
    no_auto_create_buckets: bool,
    /// Persist objects here and load them at start.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Fraction of requests answered 500/503.
    #[arg(long, default_value_t = 0.0)]
    fault_error_rate: f64,
    /// Fraction of requests whose connection is reset mid-body.
    #[arg(long, default_value_t = 0.0)]
    fault_reset_rate: f64,
    /// Fraction of uploads stored with a damaged first byte.
    #[arg(long, default_value_t = 0.0)]
    fault_corrupt_rate: f64,
    /// Milliseconds added before every response.
    #[arg(long, default_value_t = 0)]
    fault_latency_ms: u64,
    /// Send response bodies at about this many bytes per second.
    #[arg(long)]
    fault_trickle_bytes_per_sec: Option<u64>,
    /// Read each request body at about this many bytes per second (a per-connection cap).
    #[arg(long)]
    upload_bytes_per_sec: Option<u64>,
    /// Seed for the fault dice.
    #[arg(long)]
    fault_seed: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let a = Args::parse();
    let faults = FaultConfig {
        error_rate: a.fault_error_rate,
        reset_rate: a.fault_reset_rate,
        corrupt_rate: a.fault_corrupt_rate,
        latency_ms: a.fault_latency_ms,
        trickle_bytes_per_sec: a.fault_trickle_bytes_per_sec,
        upload_bytes_per_sec: a.upload_bytes_per_sec,
        seed: a.fault_seed,
    };
    if let Err(e) = faults.validate() {
        eprintln!("oss-emulator: {e}");
        return ExitCode::from(2);
    }
    let config = Config {
        credentials: vec![Credentials::new(
            a.access_key_id,
            a.access_key_secret,
            a.security_token,
        )],
        region: a.region,
        buckets: a.buckets,
        auto_create_buckets: !a.no_auto_create_buckets,
        data_dir: a.data_dir,
        faults,
    };
    let emulator = match Emulator::start(config, a.listen).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("oss-emulator: cannot start on {}: {e}", a.listen);
            return ExitCode::FAILURE;
        }
    };
    println!("listening on {}", emulator.addr());
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("oss-emulator: cannot watch SIGTERM: {e}");
            return ExitCode::FAILURE;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    emulator.stop().await;
    ExitCode::SUCCESS
}
