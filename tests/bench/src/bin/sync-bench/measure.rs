//! The measurements, one per subcommand: GETs alone (whole and in ranges), PUTs alone, one copy
//! through the handler, and batches of events through the handler; each returns its JSON line.

use super::{outcome_counts, s3_event_body, sqs_batch, sqs_batch_of, Bench};
use aws_lambda_events::event::sqs::SqsEvent;
use futures_util::{StreamExt, TryStreamExt};
use s3_oss_sync::aws::s3_source::S3Source;
use s3_oss_sync::setup;
use s3_oss_sync::store::object::ObjectMetadata;
use s3_oss_sync::store::source::SourceStore;
use s3_oss_sync::store::upload::UploadRequest;
use s3_oss_sync_bench::{
    cpu_seconds, emulator_count, emulator_requests, mib, pattern_stream, peak_rss_bytes, round,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Common figures of one timed run.
fn figures(name: &str, bytes: u64, secs: f64, cpu: f64) -> Value {
    json!({
        "step": name,
        "bytes": bytes,
        "seconds": round(secs, 3),
        "mib_per_sec": round(mib(bytes) / secs, 1),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mib": round(mib(peak_rss_bytes().unwrap_or(0)), 1),
    })
}

pub(super) async fn get_only(b: &Bench, key: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let source = S3Source::new(b.s3.clone(), b.bucket());
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    let (head, mut stream) = source
        .get(key, None)
        .await?
        .ok_or_else(|| format!("{key} is not in the source bucket"))?;
    // Read as the copier reads: chunks gathered into part-sized buffers, then dropped.
    let part = b.config.part_size as usize;
    let mut buf = bytes::BytesMut::with_capacity(part);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        if buf.len() + chunk.len() > part {
            std::hint::black_box(&buf);
            buf.clear();
        }
        buf.extend_from_slice(&chunk);
    }
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    if bytes != head.size {
        return Err(format!("read {bytes} of {} bytes", head.size).into());
    }
    let mut v = figures("get-only", bytes, secs, cpu);
    v["s3_requests"] = json!(b.counter.snapshot());
    Ok(v)
}

pub(super) async fn get_ranges(
    b: &Bench,
    key: &str,
    part_mib: Option<u64>,
    parts_in_flight: Option<usize>,
) -> Result<Value, Box<dyn std::error::Error>> {
    let part = part_mib.map_or(b.config.part_size, |p| p << 20);
    let in_flight = parts_in_flight.unwrap_or(b.config.parts_in_flight).max(1);
    let (_, size, etag) = b.head_entry(key).await?;
    let source = S3Source::new(b.s3.clone(), b.bucket());
    let parts = size.div_ceil(part);
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    let mut took: Vec<f64> = futures_util::stream::iter(0..parts)
        .map(|i| {
            let (source, etag) = (&source, &etag);
            async move {
                let began = Instant::now();
                let (start, len) = (i * part, part.min(size - i * part));
                let mut stream = source
                    .get_range(key, etag, None, start, len)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("{key} is not in the source bucket"))?;
                let mut buf = bytes::BytesMut::with_capacity(len as usize);
                while let Some(chunk) = stream.next().await {
                    buf.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
                }
                if buf.len() as u64 != len {
                    return Err(format!(
                        "the range at {start} gave {} of {len} bytes",
                        buf.len()
                    ));
                }
                std::hint::black_box(s3_oss_sync::checksum::crc64(&buf));
                Ok::<f64, String>(began.elapsed().as_secs_f64())
            }
        })
        .buffer_unordered(in_flight)
        .try_collect()
        .await?;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    took.sort_by(f64::total_cmp);
    let mut v = figures("get-ranges", size, secs, cpu);
    v["part_mib"] = json!(part >> 20);
    v["parts_in_flight"] = json!(in_flight);
    v["parts"] = json!(parts);
    v["part_read_ms_median"] = json!(round(took[took.len() / 2] * 1000.0, 1));
    v["part_read_ms_max"] = json!(round(took[took.len() - 1] * 1000.0, 1));
    v["s3_requests"] = json!(b.counter.snapshot());
    Ok(v)
}

pub(super) async fn put_only(
    b: &Bench,
    size_mib: u64,
    part_mib: Option<u64>,
    parts_in_flight: Option<usize>,
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut config = b.config.clone();
    if let Some(p) = part_mib {
        config.part_size = p << 20;
    }
    if let Some(n) = parts_in_flight {
        config.parts_in_flight = n;
    }
    let credentials = setup::oss_credentials(&b.sdk, &config.oss_credentials).await?;
    let client = setup::sync_oss_client(&config, credentials)?;
    let size = size_mib << 20;
    let expected = s3_oss_sync_bench::pattern_crc(size, 0);
    let meta = ObjectMetadata::default();
    let key = format!("{}put-only.bin", config.binding.dest_prefix);
    let req = UploadRequest {
        bucket: &config.binding.dest_bucket,
        key: &key,
        size,
        metadata: &meta,
        content_md5: None,
    };
    let oss0 = emulator_requests(&b.oss_admin()).await?;
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    let out = client.put_multipart(&req, pattern_stream(size, 0)).await?;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    if out.crc64 != expected {
        return Err("the upload's CRC-64 differs from the generated bytes'".into());
    }
    let mut v = figures("put-only", size, secs, cpu);
    v["part_mib"] = json!(config.part_size >> 20);
    v["parts_in_flight"] = json!(config.parts_in_flight);
    v["parts"] = json!(out.parts);
    v["oss_requests"] = json!(emulator_requests(&b.oss_admin()).await? - oss0);
    Ok(v)
}

pub(super) async fn copy(b: &Bench, key: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let service = b.service().await?;
    let listed = b.list_keys(&[key.to_owned()]).await?;
    let (_, size, etag) = &listed[0];
    let event: SqsEvent =
        serde_json::from_value(sqs_batch([s3_event_body(b.bucket(), key, *size, etag, 1)]))?;
    let oss0 = emulator_requests(&b.oss_admin()).await?;
    let parts0 = emulator_count(&b.oss_admin(), "parts_stored").await?;
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    let report = service.handle(&event, "bench-copy").await;
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let mut outcomes = BTreeMap::new();
    outcome_counts(&report, &mut outcomes);
    if outcomes.get("copied") != Some(&1) {
        return Err(format!("expected one copy, got {:?}", report.outcomes).into());
    }
    // The benchmarks' large objects are `seed-large`'s generated bytes: the copy must be them.
    if report.outcomes[0].crc64 != Some(s3_oss_sync_bench::pattern_crc(*size, 0)) {
        return Err("the copy's CRC-64 differs from the bytes seed-large wrote".into());
    }
    let mut v = figures("copy", *size, secs, cpu);
    v["outcomes"] = json!(outcomes);
    v["part_mib"] = json!(b.config.part_size >> 20);
    v["parts_in_flight"] = json!(b.config.parts_in_flight);
    // A copy in parts reads each part by its own ranged GET: as many source GETs as parts.
    v["s3_requests"] = json!(b.counter.snapshot());
    v["oss_requests"] = json!(emulator_requests(&b.oss_admin()).await? - oss0);
    v["parts_stored"] = json!(emulator_count(&b.oss_admin(), "parts_stored").await? - parts0);
    v["rechecks_held"] = json!(service.rechecks.sent().len());
    Ok(v)
}

pub(super) async fn handler(
    b: &Bench,
    prefix: &str,
    count: usize,
    batch: usize,
    recheck: bool,
) -> Result<Value, Box<dyn std::error::Error>> {
    let service = b.service().await?;
    let objects = b.list(prefix, count).await?;
    let events: Vec<SqsEvent> = objects
        .chunks(batch)
        .map(|chunk| {
            serde_json::from_value(sqs_batch_of(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, (key, size, etag))| s3_event_body(b.bucket(), key, *size, etag, i)),
                recheck,
            ))
        })
        .collect::<Result<_, _>>()?;
    let oss0 = emulator_requests(&b.oss_admin()).await?;
    let mut outcomes = BTreeMap::new();
    let mut failed = 0usize;
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    for (i, event) in events.iter().enumerate() {
        let report = service.handle(event, &format!("bench-{i}")).await;
        failed += report.response.batch_item_failures.len();
        if std::env::var_os("BENCH_DEBUG").is_some() {
            eprintln!(
                "batch {i}: {:?}",
                report
                    .outcomes
                    .iter()
                    .map(|o| o.duration_ms)
                    .collect::<Vec<_>>()
            );
        }
        outcome_counts(&report, &mut outcomes);
    }
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let s3 = b.counter.snapshot();
    let oss = emulator_requests(&b.oss_admin()).await? - oss0;
    let s3_total: u64 = s3.values().sum();
    let results_puts = events.len() as u64;
    let n = objects.len() as f64;
    Ok(json!({
        "step": "handler",
        "objects": objects.len(),
        "batch": batch,
        "concurrency": b.config.concurrency,
        "memory_budget_mib": b.config.memory_budget >> 20,
        "seconds": round(secs, 3),
        "objects_per_sec": round(n / secs, 1),
        "cpu_ms_per_object": round(cpu * 1000.0 / n, 3),
        "outcomes": outcomes,
        "failed_messages": failed,
        "s3_requests": s3,
        "oss_requests": oss,
        "results_writes": results_puts,
        "requests_per_object": round((s3_total + oss - results_puts) as f64 / n, 3),
        "requests_per_object_with_results": round((s3_total + oss) as f64 / n, 3),
        "peak_rss_mib": round(mib(peak_rss_bytes().unwrap_or(0)), 1),
        "rechecks_held": service.rechecks.sent().len(),
    }))
}
