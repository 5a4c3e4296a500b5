//! Copies in progress: the checkpoints a task's resumable copies keep in the results bucket
//! ([`crate::sync::resume`]), read back. The sweep of stale multipart uploads keeps the uploads of the
//! copies whose checkpoints are still being written ([`crate::sweep::sweep_task`]); `ctl status`
//! lists them (`control::status`).
//!
//! Reading is bounded (keys listed, checkpoints read, reads at once), and a body is never
//! trusted: one that does not parse is reported with its key and otherwise left alone (the copy
//! that owns it replaces or removes it).

mod s3;

use crate::errors::error_chain;
use crate::store::source::SourceError;
use crate::sync::resume::{checkpoint_prefix, Checkpoint, RangeRecord, CHECKPOINT_VERSION};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One checkpoint object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: String,
    /// When it was last written, by the store's clock.
    pub last_modified: Option<OffsetDateTime>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListedPage {
    /// The objects, in key order.
    pub objects: Vec<Listed>,
    /// The continuation token of the next page, if there is one.
    pub next: Option<String>,
}

/// Where checkpoints are read from: the results bucket.
pub trait CheckpointObjects: Send + Sync {
    /// One page of the objects under `prefix`, from `token`.
    fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> impl Future<Output = Result<ListedPage, SourceError>> + Send;

    /// One object's body, or `None` if it is gone.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>, SourceError>> + Send;
}

/// The folder of one task's checkpoints, ending in `/` (every [`crate::sync::resume::checkpoint_key`]
/// of the task is under it).
pub fn task_prefix(results_prefix: &str, task: &str) -> String {
    format!("{}{task}/", checkpoint_prefix(results_prefix))
}

/// The results bucket and prefix (`RESULTS_BUCKET`, `RESULTS_PREFIX`, default `results`) read
/// through `get`, as the functions read them; `None` without a bucket.
pub fn results_location(get: impl Fn(&str) -> Option<String>) -> Option<(String, String)> {
    let bucket = get("RESULTS_BUCKET").filter(|b| !b.is_empty())?;
    let prefix = get("RESULTS_PREFIX")
        .unwrap_or_else(|| "results".into())
        .trim_matches('/')
        .to_owned();
    Some((bucket, prefix))
}

/// What an object under a task's checkpoint folder is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A copy's checkpoint, `<hash>.json`.
    Checkpoint,
    /// A range job's record, `<hash>.range-<first>-<last>-<upload tag>.json`, beside its copy's
    /// checkpoint.
    Range,
    /// Anything else (a fanned-out copy's completion claim, `<hash>.claim-<upload tag>.json`):
    /// not read.
    Other,
}

/// The kind of the object `key` and the key of the copy's checkpoint it belongs to. Pure.
pub fn classify(key: &str) -> (Kind, String) {
    let name = key.rsplit('/').next().unwrap_or(key);
    let dir = &key[..key.len() - name.len()];
    let Some(stem) = name.strip_suffix(".json") else {
        return (Kind::Other, key.to_owned());
    };
    match stem.split_once('.') {
        None => (Kind::Checkpoint, key.to_owned()),
        Some((hash, rest)) if rest.starts_with("range-") => {
            (Kind::Range, format!("{dir}{hash}.json"))
        }
        Some((hash, _)) => (Kind::Other, format!("{dir}{hash}.json")),
    }
}

/// Which checkpoints to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Every checkpoint and range record (`ctl status`, for each copy's progress).
    All,
    /// Per copy, only its most recently written checkpoint or range record (the one that names
    /// the upload being worked on, with the latest time), and only for copies with something
    /// written at or after the time given (the sweep: one read per copy still moving). When that
    /// object's body is damaged, the next most recent is read, up to three.
    LatestPerCopy(OffsetDateTime),
}

/// How much one read of the checkpoints may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Most objects listed (pages of 1,000).
    pub max_listed: usize,
    /// Most objects read.
    pub max_read: usize,
    /// Reads at once.
    pub parallel: usize,
}

/// The sweep's: 50,000 listed, 1,000 read (with [`Select::LatestPerCopy`], about one per copy
/// in progress), 8 at once.
pub const READ_LIMITS: ReadLimits = ReadLimits {
    max_listed: 50_000,
    max_read: 1_000,
    parallel: 8,
};

/// `ctl status`'s: 50,000 listed, 10,000 read (a fanned-out copy has a range record per range),
/// 32 at once.
pub const STATUS_READ_LIMITS: ReadLimits = ReadLimits {
    max_listed: 50_000,
    max_read: 10_000,
    parallel: 32,
};

/// A checkpoint that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// Its key in the results bucket.
    pub key: String,
    /// Why.
    pub reason: String,
    /// Whether reading it failed (S3 answered an error, or none), rather than its body being
    /// damaged: a failed read says nothing about the copy, a damaged body says it cannot resume.
    pub read_failed: bool,
}

/// The checkpoints of a task, as read.
#[derive(Debug, Clone, Default)]
pub struct Copies {
    /// Checkpoints read, with their keys, in key order.
    pub checkpoints: Vec<(String, Checkpoint)>,
    /// Range records read, with the keys of their copies' checkpoints, in key order.
    pub ranges: Vec<(String, RangeRecord)>,
    /// Those that could not be read or parsed.
    pub unreadable: Vec<Unreadable>,
    /// Objects listed.
    pub listed: u64,
    /// Listed but not read (not chosen, or not checkpoints).
    pub not_read: u64,
    /// Gone between the listing and the read (their copies ended).
    pub gone: u64,
    /// Set when a bound left some objects unlisted or unread: which.
    pub incomplete: Option<String>,
    /// Requests made (list pages and reads).
    pub requests: u32,
}

/// What one read found.
enum Found {
    Checkpoint(Box<Checkpoint>),
    Range(RangeRecord),
}

fn parse(kind: Kind, body: &[u8]) -> Result<Found, String> {
    match kind {
        Kind::Range => {
            let r: RangeRecord = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            if r.version != CHECKPOINT_VERSION {
                return Err(format!(
                    "range record format {} is not {CHECKPOINT_VERSION}",
                    r.version
                ));
            }
            Ok(Found::Range(r))
        }
        _ => Checkpoint::parse(body).map(|c| Found::Checkpoint(Box::new(c))),
    }
}

/// Lists the objects under `prefix` (a task's checkpoint folder, [`task_prefix`]) and reads the
/// checkpoints and range records `select` chooses, within `limits`. Only a failed listing is an
/// error; an object that cannot be read or parsed is in [`Copies::unreadable`].
pub async fn read_copies(
    store: &impl CheckpointObjects,
    prefix: &str,
    select: Select,
    limits: ReadLimits,
) -> Result<Copies, SourceError> {
    let mut copies = Copies::default();
    let mut listed: Vec<Listed> = Vec::new();
    let mut token: Option<String> = None;
    loop {
        copies.requests += 1;
        let page = store.list(prefix, token.as_deref()).await?;
        listed.extend(page.objects);
        match page.next {
            None => break,
            Some(_) if listed.len() >= limits.max_listed => {
                copies.incomplete = Some(format!(
                    "more than {} objects under {prefix}: only the first {} were listed",
                    limits.max_listed,
                    listed.len()
                ));
                break;
            }
            Some(next) if token.as_deref() == Some(next.as_str()) => {
                return Err(SourceError::Transport {
                    op: "ListObjectsV2",
                    key: prefix.to_owned(),
                    source: "the next page's token is the same as this page's".into(),
                    transient: false,
                });
            }
            Some(next) => token = Some(next),
        }
    }
    copies.listed = listed.len() as u64;
    // Per copy (its checkpoint's key), the objects to read, in the order to read them; a copy's
    // objects are read one after the other, and with `LatestPerCopy` only until one parses.
    let mut groups: BTreeMap<String, Vec<(Kind, Listed)>> = BTreeMap::new();
    for o in listed {
        let (kind, copy) = classify(&o.key);
        if kind != Kind::Other {
            groups.entry(copy).or_default().push((kind, o));
        }
    }
    let newest_first = |o: &Listed| {
        std::cmp::Reverse(
            o.last_modified
                .map_or(i128::MAX, |t| t.unix_timestamp_nanos()),
        )
    };
    let jobs: Vec<(bool, Vec<(Kind, String)>)> = match select {
        Select::All => groups
            .into_values()
            .flatten()
            .map(|(kind, o)| (false, vec![(kind, o.key)]))
            .collect(),
        Select::LatestPerCopy(since) => groups
            .into_values()
            .filter_map(|mut objects| {
                objects.sort_by_key(|(_, o)| newest_first(o));
                let newest = objects[0].1.last_modified;
                newest.is_none_or(|at| at >= since).then(|| {
                    let keys = objects.into_iter().take(3).map(|(k, o)| (k, o.key));
                    (true, keys.collect())
                })
            })
            .collect(),
    };
    if jobs.len() > limits.max_read {
        let why = format!(
            "{} objects to read under {prefix}: only the first {} were read",
            jobs.len(),
            limits.max_read
        );
        copies.incomplete = Some(match copies.incomplete.take() {
            Some(listing) => format!("{listing}; {why}"),
            None => why,
        });
    }
    type Outcome = (String, Kind, Result<Option<Bytes>, SourceError>);
    let results: Vec<Vec<Outcome>> =
        futures_util::stream::iter(jobs.into_iter().take(limits.max_read))
            .map(|(first_good, keys)| async move {
                let mut out = Vec::new();
                for (kind, key) in keys {
                    let got = store.get(&key).await;
                    let stop = match &got {
                        Ok(Some(body)) => !first_good || parse(kind, body).is_ok(),
                        Ok(None) => false,
                        Err(_) => true,
                    };
                    out.push((key, kind, got));
                    if stop {
                        break;
                    }
                }
                out
            })
            .buffer_unordered(limits.parallel.max(1))
            .collect()
            .await;
    let mut read: Vec<Outcome> = results.into_iter().flatten().collect();
    read.sort_by(|a, b| a.0.cmp(&b.0));
    copies.not_read = copies.listed - read.len() as u64;
    for (key, kind, got) in read {
        copies.requests += 1;
        match got {
            Ok(None) => copies.gone += 1,
            Ok(Some(body)) => match parse(kind, &body) {
                Ok(Found::Checkpoint(cp)) => copies.checkpoints.push((key, *cp)),
                Ok(Found::Range(r)) => copies.ranges.push((classify(&key).1, r)),
                Err(reason) => copies.unreadable.push(Unreadable {
                    key,
                    reason: format!("damaged: {reason}"),
                    read_failed: false,
                }),
            },
            Err(e) => copies.unreadable.push(Unreadable {
                key,
                reason: error_chain(&e),
                read_failed: true,
            }),
        }
    }
    Ok(copies)
}

/// Parses a checkpoint's RFC 3339 time.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).ok()
}

/// One copy in progress, as `ctl status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyInProgress {
    /// The destination key.
    pub dest_key: String,
    /// The source key.
    pub source_key: String,
    /// Bytes in finished parts.
    pub bytes_done: u64,
    /// The object's size.
    pub size: u64,
    /// `bytes_done` as a percentage of `size`, to a tenth.
    pub percent: f64,
    /// Finished parts (for a fanned-out copy, in its range records).
    pub parts_done: u32,
    /// Parts the object has.
    pub parts_total: u32,
    /// For a copy fanned out to range jobs: how many ranges it has (0: not fanned out).
    pub ranges_total: u32,
    /// Ranges whose every part is done.
    pub ranges_done: u32,
    /// The OSS multipart upload id.
    pub upload_id: String,
    /// When the copy began (RFC 3339).
    pub started_at: String,
    /// When its checkpoint (or, fanned out, one of its range records) was last written (RFC
    /// 3339).
    pub updated_at: String,
    /// Seconds since the copy began (unknown if `started_at` does not parse).
    pub age_secs: Option<i64>,
    /// Seconds since `updated_at`.
    pub since_progress_secs: Option<i64>,
    /// Whether the checkpoint has not been written for longer than the sweep's age: the next
    /// sweep takes its upload for stale and aborts it.
    pub stale: bool,
    /// The checkpoint's key in the results bucket.
    pub checkpoint: String,
}

impl CopyInProgress {
    /// The view of one checkpoint and its range records (those of other uploads are left out)
    /// as of `now`, `stale_after` being the sweep's age. Pure.
    pub fn of(
        key: &str,
        cp: &Checkpoint,
        ranges: &[&RangeRecord],
        now: OffsetDateTime,
        stale_after: std::time::Duration,
    ) -> Self {
        let ranges: Vec<&RangeRecord> = ranges
            .iter()
            .copied()
            .filter(|r| r.upload_id == cp.upload_id)
            .collect();
        let mut parts: BTreeMap<u32, u64> = cp.parts.iter().map(|p| (p.number, p.size)).collect();
        for r in &ranges {
            parts.extend(r.parts.iter().map(|p| (p.number, p.size)));
        }
        let bytes_done: u64 = parts.values().sum();
        let updated_at = ranges
            .iter()
            .map(|r| r.updated_at.as_str())
            .filter_map(|t| Some((parse_time(t)?, t)))
            .max()
            .filter(|(at, _)| parse_time(&cp.updated_at).is_none_or(|c| *at > c))
            .map_or(cp.updated_at.clone(), |(_, t)| t.to_owned());
        let secs_since = |t: &str| parse_time(t).map(|t| (now - t).whole_seconds());
        let since_progress_secs = secs_since(&updated_at);
        Self {
            dest_key: cp.dest_key.clone(),
            source_key: cp.source_key.clone(),
            bytes_done,
            size: cp.size,
            percent: if cp.size == 0 {
                0.0
            } else {
                (bytes_done as f64 * 1000.0 / cp.size as f64).floor() / 10.0
            },
            parts_done: parts.len() as u32,
            parts_total: cp.parts_total(),
            ranges_total: cp.ranges.len() as u32,
            ranges_done: ranges.iter().filter(|r| r.complete()).count() as u32,
            upload_id: cp.upload_id.clone(),
            started_at: cp.started_at.clone(),
            updated_at,
            age_secs: secs_since(&cp.started_at),
            since_progress_secs,
            stale: since_progress_secs.is_none_or(|s| s > stale_after.as_secs() as i64),
            checkpoint: key.to_owned(),
        }
    }

    /// One line for a terminal.
    pub fn render(&self) -> String {
        let since = |s: Option<i64>| s.map_or("unknown".to_owned(), human_secs);
        let ranges = if self.ranges_total > 0 {
            format!("  ranges {}/{}", self.ranges_done, self.ranges_total)
        } else {
            String::new()
        };
        format!(
            "{}  {} of {} ({:.1}%)  parts {}/{}{ranges}  upload {}  age {}  last progress {} ago{}",
            self.dest_key,
            human_bytes(self.bytes_done),
            human_bytes(self.size),
            self.percent,
            self.parts_done,
            self.parts_total,
            self.upload_id,
            since(self.age_secs),
            since(self.since_progress_secs),
            if self.stale {
                "  STALE: the next sweep aborts its upload"
            } else {
                ""
            }
        )
    }
}

/// The copies in progress `copies` holds, each checkpoint with its range records, by
/// destination key, as of `now`, `stale_after` being the sweep's age. Pure.
pub fn in_progress(
    copies: &Copies,
    now: OffsetDateTime,
    stale_after: std::time::Duration,
) -> Vec<CopyInProgress> {
    let mut ranges: BTreeMap<&str, Vec<&RangeRecord>> = BTreeMap::new();
    for (copy, r) in &copies.ranges {
        ranges.entry(copy.as_str()).or_default().push(r);
    }
    let mut out: Vec<CopyInProgress> = copies
        .checkpoints
        .iter()
        .map(|(key, cp)| {
            let mine = ranges.get(key.as_str()).map_or(&[][..], Vec::as_slice);
            CopyInProgress::of(key, cp, mine, now, stale_after)
        })
        .collect();
    out.sort_by(|a, b| a.dest_key.cmp(&b.dest_key));
    out
}

/// Bytes for a person: `512 B`, `1.5 KiB`, `3.0 GiB`, ...
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Seconds for a person: `45 s`, `12 min`, `3.5 h`, `2.1 d` (negative, from a skewed clock: `0 s`).
pub fn human_secs(s: i64) -> String {
    let s = s.max(0);
    match s {
        0..120 => format!("{s} s"),
        120..7_200 => format!("{} min", s / 60),
        7_200..172_800 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} d", s as f64 / 86_400.0),
    }
}

#[cfg(test)]
pub(crate) mod tests;
