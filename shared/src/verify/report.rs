//! The verification report, in the report area beside the daily reports:
//!
//! ```text
//! <REPORT_PREFIX>/<task>/verify/<YYYYMMDDTHHMMSSZ>/
//!   differences/part-00001.csv ...  every key not equal, in key order (columns: run::COLUMNS)
//!   summary.json                    counts per kind and reason, HEADs and listing requests made
//!   manifest.json                   written last: every file with its size, MD5 and rows
//! ```
//!
//! A folder without `manifest.json` is a verification that did not finish writing. The
//! timestamp is the verification's start in UTC, so folder names sort by time.

use super::join::Kind;
use super::run::{Counts, Outcome, COLUMNS};
use crate::checksum::md5_hex;
use crate::report::build::{part_key, ReportError, ReportStore};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use time::OffsetDateTime;

/// The verification report's format.
pub const VERIFY_FORMAT_VERSION: u32 = 1;

/// The folder of all of a task's verifications: `<REPORT_PREFIX>/<task>/verify/`.
pub fn verify_root(report_prefix: &str, task: &str) -> String {
    let root = report_prefix.trim_matches('/');
    if root.is_empty() {
        format!("{task}/verify/")
    } else {
        format!("{root}/{task}/verify/")
    }
}

/// The folder name of a verification started at `at`: `20261125T103000Z`.
pub fn stamp(at: OffsetDateTime) -> String {
    let t = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// What `summary.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// [`VERIFY_FORMAT_VERSION`].
    pub format_version: u32,
    /// The task.
    pub task: String,
    /// When the verification started and finished (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished.
    pub finished_at: String,
    /// Whether every key range was read to its end (a stopped one was not).
    pub complete: bool,
    /// `list` or `inventory s3://…/manifest.json`.
    pub source: String,
    /// The source bucket and the prefix listed.
    pub source_bucket: String,
    /// The prefix listed in S3.
    pub source_prefix: String,
    /// The destination bucket.
    pub dest_bucket: String,
    /// The prefix listed in OSS.
    pub dest_prefix: String,
    /// The clock tolerance of the rule, seconds.
    pub clock_tolerance_s: i64,
    /// Key ranges listed at once.
    pub ranges: usize,
    /// Keys not equal.
    pub differences: u64,
    /// The counts.
    pub counts: serde_json::Value,
    /// The differences list: `rows`, and the part keys.
    pub differences_list: PartList,
}

/// A list's parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartList {
    /// Rows (without the headers).
    pub rows: u64,
    /// The parts' keys, in order.
    pub keys: Vec<String>,
}

/// One file in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
    /// MD5, hex.
    pub md5: String,
    /// CSV rows without the header (`null` for the summary).
    pub rows: Option<u64>,
}

/// What `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`VERIFY_FORMAT_VERSION`].
    pub format_version: u32,
    /// The task.
    pub task: String,
    /// When the verification finished.
    pub finished_at: String,
    /// Whether it read every key.
    pub complete: bool,
    /// Keys not equal.
    pub differences: u64,
    /// Every file of the folder but itself.
    pub files: Vec<ManifestFile>,
}

/// A finished verification, as written.
#[derive(Debug, Clone)]
pub struct Written {
    /// Its folder (`…/verify/<stamp>/`).
    pub dir: String,
    /// Its summary.
    pub summary: Summary,
}

/// The counts as the summary gives them: every kind (zeros too), reasons, filtered keys,
/// HEADs and listing requests.
pub fn counts_json(c: &Counts) -> serde_json::Value {
    let kinds: serde_json::Map<String, serde_json::Value> = Kind::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), c.of(*k).into()))
        .collect();
    serde_json::json!({
        "source_listed": c.source_listed,
        "dest_listed": c.dest_listed,
        "kinds": kinds,
        "reasons": c.reasons,
        "filtered": c.filtered,
        "report_area": c.report_area,
        "heads": {"dest": c.dest_heads, "source": c.source_heads},
        "requests": {"source_pages": c.source_pages, "dest_pages": c.dest_pages, "probes": c.probes},
    })
}

/// Writes a verification's report into `dir` (ending in `/`): the differences in parts of at
/// most `part_bytes` (each with the header row), `summary.json`, then `manifest.json`.
pub async fn write_report<S: ReportStore>(
    store: &S,
    dir: &str,
    mut outcome: Outcome,
    mut summary: Summary,
    part_bytes: usize,
) -> Result<Written, ReportError> {
    let header = format!("{}\r\n", COLUMNS.join(","));
    let mut files = Vec::new();
    let mut list = PartList::default();
    let mut part = String::new();
    let mut rows_in_part = 0u64;
    let flush = |part: &mut String, rows: &mut u64, list: &mut PartList| {
        let key = part_key(&format!("{dir}differences"), list.keys.len() as u32 + 1);
        list.keys.push(key.clone());
        let body = Bytes::from(std::mem::take(part));
        let file = ManifestFile {
            key: key.clone(),
            size: body.len() as u64,
            md5: md5_hex(&body),
            rows: Some(std::mem::take(rows)),
        };
        (key, body, file)
    };
    for spill in outcome.spills.drain(..) {
        let mut lines = std::io::BufReader::new(spill);
        let mut line = String::new();
        loop {
            line.clear();
            let n = lines
                .read_line(&mut line)
                .map_err(|e| ReportError::destination("reading back the differences", e, false))?;
            if n == 0 {
                break;
            }
            if part.is_empty() {
                part.push_str(&header);
            }
            part.push_str(&line);
            rows_in_part += 1;
            list.rows += 1;
            if part.len() >= part_bytes {
                let (key, body, file) = flush(&mut part, &mut rows_in_part, &mut list);
                store.put(&key, body).await?;
                files.push(file);
            }
        }
    }
    // A list with no differences still has one part: its header.
    if !part.is_empty() || list.keys.is_empty() {
        if part.is_empty() {
            part.push_str(&header);
        }
        let (key, body, file) = flush(&mut part, &mut rows_in_part, &mut list);
        store.put(&key, body).await?;
        files.push(file);
    }
    summary.differences_list = list;
    let body = Bytes::from(serde_json::to_vec_pretty(&summary).unwrap_or_default());
    let key = format!("{dir}summary.json");
    files.push(ManifestFile {
        key: key.clone(),
        size: body.len() as u64,
        md5: md5_hex(&body),
        rows: None,
    });
    store.put(&key, body).await?;
    let manifest = Manifest {
        format_version: VERIFY_FORMAT_VERSION,
        task: summary.task.clone(),
        finished_at: summary.finished_at.clone(),
        complete: summary.complete,
        differences: summary.differences,
        files,
    };
    let body = Bytes::from(serde_json::to_vec_pretty(&manifest).unwrap_or_default());
    store.put(&format!("{dir}manifest.json"), body).await?;
    Ok(Written {
        dir: dir.to_owned(),
        summary,
    })
}

/// The last verification of a task, as `ctl status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastVerification {
    /// Its folder's time stamp.
    pub at: String,
    /// Its folder.
    pub dir: String,
    /// Whether it finished writing (has `manifest.json`).
    pub finished: bool,
    /// Whether it read every key.
    pub complete: Option<bool>,
    /// Keys not equal.
    pub differences: Option<u64>,
    /// Keys per kind.
    pub kinds: Option<serde_json::Value>,
}

/// Finds the newest verification under `root` ([`verify_root`]): the newest folder, and what its
/// summary says if its manifest is there.
pub async fn last_verification<S: ReportStore>(
    store: &S,
    root: &str,
) -> Result<Option<LastVerification>, ReportError> {
    let mut dirs = store.list_prefixes(root).await?;
    dirs.sort();
    let Some(dir) = dirs.pop() else {
        return Ok(None);
    };
    let at = dir
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut last = LastVerification {
        at,
        dir: dir.clone(),
        finished: false,
        complete: None,
        differences: None,
        kinds: None,
    };
    if !store.exists(&format!("{dir}manifest.json")).await? {
        return Ok(Some(last));
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&store.get(&format!("{dir}summary.json")).await?)
            .map_err(|e| ReportError::destination(format!("{dir}summary.json"), e, false))?;
    last.finished = true;
    last.complete = summary["complete"].as_bool();
    last.differences = summary["differences"].as_u64();
    last.kinds = Some(summary["counts"]["kinds"].clone());
    Ok(Some(last))
}

/// One part's rows (after the header), keys decoded.
pub fn parse_part(body: &[u8], key: &str) -> Result<Vec<Vec<String>>, ReportError> {
    let bad = |e: String| ReportError::destination(key, e, false);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| bad(e.to_string()))?;
        let mut cells: Vec<String> = rec.iter().map(str::to_owned).collect();
        for i in [0, 1] {
            if let Some(c) = cells.get_mut(i) {
                *c = percent_encoding::percent_decode_str(c)
                    .decode_utf8()
                    .map_err(|e| bad(e.to_string()))?
                    .into_owned();
            }
        }
        rows.push(cells);
    }
    Ok(rows)
}

/// What a verification is of, for its summary.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The task.
    pub task: String,
    /// `list`, or `inventory s3://…`.
    pub source: String,
    /// The report prefix (`REPORT_PREFIX`).
    pub report_prefix: String,
    /// Largest CSV part, bytes.
    pub part_bytes: usize,
}

/// Verifies ([`super::run::verify`]) and writes the report into a new folder named by the
/// start time ([`stamp`]), manifest last. A verification stopped early is written too, with
/// `complete: false`.
pub async fn verify_and_report<S: super::run::Sides, R: ReportStore>(
    sides: &S,
    mapping: &super::run::Mapping,
    options: &super::run::VerifyOptions,
    store: &R,
    subject: &Subject,
    stop: &std::sync::atomic::AtomicBool,
    progress: &super::run::Progress,
) -> Result<Written, super::run::VerifyError> {
    let started = OffsetDateTime::now_utc();
    let outcome = super::run::verify(sides, mapping, options, stop, progress).await?;
    let summary = Summary {
        format_version: VERIFY_FORMAT_VERSION,
        task: subject.task.clone(),
        started_at: crate::outcome::format_time(started),
        finished_at: crate::outcome::format_time(OffsetDateTime::now_utc()),
        complete: outcome.complete,
        source: subject.source.clone(),
        source_bucket: mapping.binding.source_bucket.clone(),
        source_prefix: mapping.source_prefix.clone(),
        dest_bucket: mapping.binding.dest_bucket.clone(),
        dest_prefix: mapping.dest_prefix.clone(),
        clock_tolerance_s: options.clock_tolerance_s,
        ranges: outcome.ranges,
        differences: outcome.counts.differences,
        counts: counts_json(&outcome.counts),
        differences_list: PartList::default(),
    };
    let dir = format!(
        "{}{}/",
        verify_root(&subject.report_prefix, &subject.task),
        stamp(started)
    );
    Ok(write_report(store, &dir, outcome, summary, subject.part_bytes).await?)
}

/// The summary as a few lines for a terminal.
pub fn render(w: &Written) -> String {
    use std::fmt::Write as _;
    let s = &w.summary;
    let c = &s.counts;
    let mut out = String::new();
    let _ = writeln!(out, "verification      {}", w.dir);
    let _ = writeln!(
        out,
        "source            s3://{}/{} ({})",
        s.source_bucket, s.source_prefix, s.source
    );
    let _ = writeln!(
        out,
        "destination       oss://{}/{}",
        s.dest_bucket, s.dest_prefix
    );
    let _ = writeln!(
        out,
        "listed            {} in S3, {} in OSS ({} key ranges)",
        c["source_listed"], c["dest_listed"], s.ranges
    );
    for k in Kind::ALL {
        let _ = writeln!(out, "  {:<16}{}", k.as_str(), c["kinds"][k.as_str()]);
    }
    if let Some(reasons) = c["reasons"].as_object().filter(|r| !r.is_empty()) {
        let list: Vec<String> = reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  may_differ by    {}", list.join(", "));
    }
    let _ = writeln!(
        out,
        "requests          {} S3 and {} OSS listing pages, {} probes; HEADs: {} OSS, {} S3",
        c["requests"]["source_pages"],
        c["requests"]["dest_pages"],
        c["requests"]["probes"],
        c["heads"]["dest"],
        c["heads"]["source"]
    );
    let _ = writeln!(
        out,
        "left out          {} S3 keys the task does not copy, {} OSS keys in the report area",
        c["filtered"], c["report_area"]
    );
    let state = if s.complete {
        "complete"
    } else {
        "INCOMPLETE (stopped)"
    };
    let _ = writeln!(
        out,
        "result            {} differences, {state}; list: {}",
        s.differences,
        s.differences_list.keys.join(" ")
    );
    out
}
