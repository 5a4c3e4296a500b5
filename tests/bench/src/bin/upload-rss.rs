//! Peak memory of a streamed upload: a generated stream of `--size-mib` MiB (never held whole)
//! goes through the OSS client's multipart upload to an OSS emulator in another process.
//! Prints one JSON line of figures.

use bytes::Bytes;
use clap::Parser;
use futures_util::StreamExt;
use s3_oss_sync::checksum::Crc64;
use s3_oss_sync::oss::signing::Credentials;
use s3_oss_sync::oss::{Addressing, Endpoint, ObjectMetadata, OssClient, OssConfig, UploadRequest};
use s3_oss_sync_bench::{mib, peak_rss_bytes, rss_bytes, EmulatorProcess};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Object size in MiB.
    #[arg(long, default_value_t = 1024)]
    size_mib: u64,
    /// Path to the oss-emulator binary.
    #[arg(long)]
    emulator: PathBuf,
    /// Part size in MiB (the product's default is 8).
    #[arg(long, default_value_t = 8)]
    part_mib: u64,
    /// Parts in flight (the product's default is 4).
    #[arg(long, default_value_t = 4)]
    parts_in_flight: usize,
}

const CHUNK: usize = 256 * 1024;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = Args::parse();
    let size = a.size_mib * 1024 * 1024;
    let emu = EmulatorProcess::start(&a.emulator, "bench-ak", "bench-sk").await?;
    let endpoint = Endpoint::custom(&emu.endpoint, Addressing::PathStyle, true)?;
    let mut cfg = OssConfig::new(
        endpoint,
        "cn-hangzhou",
        Credentials::new("bench-ak", "bench-sk", None),
    );
    cfg.part_size = a.part_mib * 1024 * 1024;
    cfg.multipart_threshold = cfg.part_size;
    cfg.parts_in_flight = a.parts_in_flight;
    let client = OssClient::new(cfg)?;

    // One pattern chunk, sliced (no copy) into a stream of exactly `size` bytes.
    let pattern: Bytes = (0..CHUNK).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut expected = Crc64::new();
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        expected.update(&pattern[..n]);
        left -= n as u64;
    }
    let chunks = size.div_ceil(CHUNK as u64);
    let stream = futures_util::stream::iter((0..chunks).map(move |i| {
        let n = (size - i * CHUNK as u64).min(CHUNK as u64) as usize;
        Ok(pattern.slice(..n))
    }))
    .boxed();

    let before = rss_bytes().unwrap_or(0);
    let meta = ObjectMetadata::default();
    let req = UploadRequest {
        bucket: "bench",
        key: "big/object.bin",
        size,
        metadata: &meta,
        content_md5: None,
    };
    let t = Instant::now();
    let out = client.put_multipart(&req, stream).await?;
    let secs = t.elapsed().as_secs_f64();
    let peak = peak_rss_bytes().unwrap_or(0);
    emu.stop().await;
    if out.crc64 != expected.finish() {
        return Err("CRC-64 of the upload differs from the generated stream".into());
    }
    println!(
        "{}",
        serde_json::json!({
            "benchmark": "upload-rss",
            "size_mib": a.size_mib,
            "part_mib": a.part_mib,
            "parts_in_flight": a.parts_in_flight,
            "parts": out.parts,
            "requests": out.requests,
            "seconds": (secs * 100.0).round() / 100.0,
            "mib_per_sec": (mib(size) / secs * 10.0).round() / 10.0,
            "rss_before_mib": (mib(before) * 10.0).round() / 10.0,
            "peak_rss_mib": (mib(peak) * 10.0).round() / 10.0,
        })
    );
    Ok(())
}
