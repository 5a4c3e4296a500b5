//! Benchmark: the report merge over N outcome records of one day. Records are generated into a
//! results-store layout on local disk (1,000 per object, spread over the day's hours, keys in
//! random order), then one report run merges them into sorted CSV lists written to a store that
//! only counts bytes. Prints one JSON line: records, seconds, records per second, peak RSS.

use bytes::Bytes;
use clap::Parser;
use s3_oss_sync::outcome::{format_time, Outcome, OutcomeKind};
use s3_oss_sync::report::build::{
    Listing, RecordSource, ReportError, ReportSettings, ReportStore, Reporter,
};
use s3_oss_sync::store::results::{results_key, to_json_lines};
use s3_oss_sync_bench::{mib, peak_rss_bytes, round};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use time::macros::datetime;
use time::Duration;

#[derive(Parser)]
struct Args {
    /// Outcome records in the day.
    #[arg(long)]
    records: u64,
    /// Sort memory before spilling, MiB.
    #[arg(long, default_value_t = 128)]
    sort_mib: usize,
    /// CSV part size, MiB.
    #[arg(long, default_value_t = 32)]
    part_mib: usize,
    /// Where the generated results store goes (a temporary directory by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

struct FsRecords(PathBuf);

impl Listing for FsRecords {
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        let dir = self.0.join(prefix);
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.flatten() {
                out.push(format!("{prefix}{}", e.file_name().to_string_lossy()));
            }
        }
        out.sort();
        Ok(out)
    }
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        let mut out: Vec<String> = self
            .list_keys(prefix)
            .await?
            .into_iter()
            .map(|k| format!("{k}/"))
            .collect();
        out.retain(|p| self.0.join(p).is_dir());
        Ok(out)
    }
}

impl RecordSource for FsRecords {
    async fn get(&self, key: &str) -> Result<Bytes, ReportError> {
        tokio::fs::read(self.0.join(key))
            .await
            .map(Bytes::from)
            .map_err(ReportError::Io)
    }
}

#[derive(Default)]
struct CountingStore {
    bytes: AtomicU64,
    objects: AtomicU64,
}

impl Listing for CountingStore {
    async fn list_keys(&self, _prefix: &str) -> Result<Vec<String>, ReportError> {
        Ok(Vec::new())
    }
    async fn list_prefixes(&self, _prefix: &str) -> Result<Vec<String>, ReportError> {
        Ok(Vec::new())
    }
}

/// It keeps nothing to read back (no manifest exists in it).
impl RecordSource for CountingStore {
    async fn get(&self, key: &str) -> Result<Bytes, ReportError> {
        Err(ReportError::Destination(format!("{key}: not kept").into()))
    }
}

impl ReportStore for CountingStore {
    async fn put(&self, _key: &str, body: Bytes) -> Result<(), ReportError> {
        self.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        self.objects.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    async fn exists(&self, _key: &str) -> Result<bool, ReportError> {
        Ok(false)
    }
    async fn delete(&self, _key: &str) -> Result<(), ReportError> {
        Ok(())
    }
}

fn generate(dir: &Path, records: u64) -> std::io::Result<()> {
    let day = datetime!(2026-11-20 00:00 UTC);
    let per_object = 1000u64;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let kinds = [
        OutcomeKind::Copied,
        OutcomeKind::Copied,
        OutcomeKind::Copied,
        OutcomeKind::Skipped,
        OutcomeKind::Failed,
    ];
    let mut batch = Vec::with_capacity(per_object as usize);
    for i in 0..records {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = day + Duration::milliseconds(((i * 86_000_000) / records.max(1)) as i64);
        let kind = kinds[(x % kinds.len() as u64) as usize];
        let key = format!("data/{:016x}/object-{i}.bin", x);
        batch.push(Outcome {
            task: "bench".into(),
            processed_at: format_time(at),
            event_time: Some(format_time(at - Duration::milliseconds((x % 5000) as i64))),
            event_name: Some("ObjectCreated:Put".into()),
            bucket: Some("source-bucket".into()),
            source_key: Some(key.clone()),
            dest_key: Some(format!("mirror/{key}")),
            version_id: None,
            sequencer: Some(format!("{:018X}", x)),
            source_etag: Some(format!("{:032x}", x as u128 * 31)),
            size: Some(x % 100_000_000),
            bytes_moved: if kind == OutcomeKind::Copied {
                x % 100_000_000
            } else {
                0
            },
            outcome: kind,
            error_code: (kind == OutcomeKind::Failed).then(|| "InternalError".to_owned()),
            error_message: (kind == OutcomeKind::Failed)
                .then(|| "We encountered an internal error. Please try again.".to_owned()),
            dropped_metadata: Vec::new(),
            attempts: 1,
            is_final: true,
            requests: 4,
            duration_ms: x % 900,
            request_ids: vec![format!("{:024X}", x)],
            message_id: format!("{:08x}-0000-4000-8000-{:012x}", i, x & 0xffff_ffff_ffff),
            receive_count: 1,
            recheck_of: None,
            crc64: Some(x),
        });
        if batch.len() as u64 == per_object || i + 1 == records {
            let written = at + Duration::seconds(1);
            let key = results_key("results", "bench", written, &format!("inv-{i}"));
            let path = dir.join(&key);
            std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
            std::fs::write(path, to_json_lines(&batch))?;
            batch.clear();
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let a = Args::parse();
    let tmp = tempfile_dir(a.dir.as_deref())?;
    let started = Instant::now();
    generate(&tmp, a.records)?;
    let generated_s = started.elapsed().as_secs_f64();
    let rss_before = peak_rss_bytes().unwrap_or(0);
    let settings = ReportSettings {
        task: "bench".into(),
        results_prefix: "results".into(),
        report_prefix: "reports".into(),
        zone: s3_oss_sync::report::day::Zone::default(),
        grace: Duration::minutes(30),
        part_bytes: a.part_mib << 20,
        sort_budget: a.sort_mib << 20,
        parallel_reads: 32,
    };
    let source = FsRecords(tmp.clone());
    let store = CountingStore::default();
    let t = Instant::now();
    let days = Reporter {
        settings: &settings,
        results: &source,
        store: &store,
    }
    .run(datetime!(2026-11-21 01:00 UTC))
    .await
    .map_err(std::io::Error::other)?;
    let merge_s = t.elapsed().as_secs_f64();
    let merged: u64 = days.days.iter().map(|d| d.records).sum();
    std::fs::remove_dir_all(&tmp)?;
    println!(
        "{}",
        serde_json::json!({
            "records": merged,
            "generate_s": round(generated_s, 1),
            "merge_s": round(merge_s, 1),
            "records_per_s": (merged as f64 / merge_s).round(),
            "report_bytes": store.bytes.load(Ordering::Relaxed),
            "report_objects": store.objects.load(Ordering::Relaxed),
            "peak_rss_mib": round(mib(peak_rss_bytes().unwrap_or(0)), 1),
            "peak_rss_before_merge_mib": round(mib(rss_before), 1),
            "sort_mib": a.sort_mib,
            "part_mib": a.part_mib,
        })
    );
    Ok(())
}

fn tempfile_dir(base: Option<&Path>) -> std::io::Result<PathBuf> {
    let base = base
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("report-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
