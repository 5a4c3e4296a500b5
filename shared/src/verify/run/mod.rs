//! Running a verification: each key range's two listings read page by page as the join consumes
//! them, each pair settled by the listing rule or by the HEADs it asks for (several at once, the
//! results kept in key order), differences spilled to a temporary file per range. The I/O is
//! behind [`Sides`]; [`super::stores`] has the S3 and OSS implementations.

mod range;

pub use range::verify_range;

use super::join::{DestHead, Entry, Kind, Reason, SourceHead};
use super::ranges::{beyond, char_prefix, decide, probes, ranges, KeyRange, Probed, MAX_DEPTH};
use crate::task::TaskBinding;
use futures_util::stream::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64};

/// Why a verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Listing or reading the source failed.
    #[error("S3: {0}")]
    Source(#[source] crate::store::error::StoreError),
    /// A HEAD of the source failed.
    #[error("S3 HeadObject: {0}")]
    SourceHead(#[source] crate::store::source::SourceError),
    /// Listing or a HEAD of the destination failed.
    #[error("OSS {op}: {source}")]
    Dest {
        /// The operation.
        op: &'static str,
        /// The OSS error.
        #[source]
        source: crate::oss::Error,
    },
    /// A listing went backwards: the join needs key order (an S3 Inventory whose files are not
    /// in key order cannot be verified against).
    #[error("the {side} listing is not in key order: {key:?} came after {previous:?}")]
    Order {
        /// `S3` or `OSS`.
        side: &'static str,
        /// The key that came late.
        key: String,
        /// The key before it.
        previous: String,
    },
    /// The spill file of differences could not be written or read.
    #[error("temporary file of differences: {0}")]
    Spill(#[from] std::io::Error),
    /// Writing or reading the verification report failed.
    #[error("report: {0}")]
    Report(#[from] crate::report::build::ReportError),
}

impl crate::retry::Transient for VerifyError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Source(e) => e.is_transient(),
            Self::SourceHead(e) => e.is_transient(),
            Self::Dest { source, .. } => source.is_transient(),
            Self::Report(_) => true,
            Self::Order { .. } | Self::Spill(_) => false,
        }
    }
}

/// A key-ordered listing of one side, in pages; keys are the side's own.
pub trait Pages: Send {
    /// The next page, or `None` at the end.
    fn next_page(&mut self)
        -> impl Future<Output = Result<Option<Vec<Entry>>, VerifyError>> + Send;
}

/// The two sides of a task, as a verification reads them.
pub trait Sides: Send + Sync {
    /// The source listing.
    type SourcePages: Pages;
    /// The destination listing.
    type DestPages: Pages;
    /// A listing of the source under the mapping's source prefix, after a key (all when `None`).
    fn source_pages(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> impl Future<Output = Result<Self::SourcePages, VerifyError>> + Send;
    /// A listing of the destination under the mapping's destination prefix, after a key.
    fn dest_pages(&self, prefix: &str, after: Option<String>) -> Self::DestPages;
    /// Whether the source can be listed from a key on (not an inventory): only then is the key
    /// space split into ranges.
    fn can_split(&self) -> bool;
    /// The first source key under `prefix` after `after` (one key listed), for placing ranges.
    fn first_source_key_after(
        &self,
        prefix: &str,
        after: &str,
    ) -> impl Future<Output = Result<Option<String>, VerifyError>> + Send;
    /// HEAD of a destination key: its size and sync marker.
    fn head_dest(&self, key: &str) -> impl Future<Output = Result<DestHead, VerifyError>> + Send;
    /// HEAD of a source key: its ETag, size and metadata fingerprint.
    fn head_source(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<SourceHead, VerifyError>> + Send;
}

/// How keys map between the sides: the task's binding, and the listing prefixes (the task's
/// source prefix or a narrower one, and where its keys land in OSS).
#[derive(Debug, Clone)]
pub struct Mapping {
    /// The task's binding (bucket, prefixes, strip, report area).
    pub binding: TaskBinding,
    /// What the source is listed under.
    pub source_prefix: String,
    /// What the destination is listed under: where the source prefix's keys land.
    pub dest_prefix: String,
}

impl Mapping {
    /// The mapping for a listing of `source_prefix` (the task's prefix or one inside it).
    pub fn new(binding: TaskBinding, source_prefix: &str) -> Self {
        let tail = if binding.strip_source_prefix {
            source_prefix
                .strip_prefix(binding.source_prefix.as_str())
                .unwrap_or(source_prefix)
        } else {
            source_prefix
        };
        Self {
            dest_prefix: format!("{}{tail}", binding.dest_prefix),
            source_prefix: source_prefix.to_owned(),
            binding,
        }
    }

    /// The source key whose copy is at `dest_key` (a key under the destination prefix).
    pub fn source_key(&self, dest_key: &str) -> String {
        let rel = dest_key
            .strip_prefix(self.dest_prefix.as_str())
            .unwrap_or(dest_key);
        format!("{}{rel}", self.source_prefix)
    }

    fn in_report_area(&self, dest_key: &str) -> bool {
        self.binding
            .report_area
            .as_deref()
            .is_some_and(|a| dest_key.starts_with(a))
    }
}

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Key ranges listed at once (1: one listing of each side).
    pub parallel: usize,
    /// HEADs in flight at once per range.
    pub heads_in_flight: usize,
    /// Seconds the OSS copy must be later than S3's `LastModified` for the listing to settle
    /// the metadata (the clocks of the two clouds may differ by this much).
    pub clock_tolerance_s: i64,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            parallel: 8,
            heads_in_flight: 32,
            clock_tolerance_s: 1,
        }
    }
}

/// Counts of a verification (or of one range).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Source keys listed (the task's, after the filters).
    pub source_listed: u64,
    /// Destination keys listed (outside the report area).
    pub dest_listed: u64,
    /// Keys per kind.
    pub kinds: BTreeMap<&'static str, u64>,
    /// `may_differ` keys per reason.
    pub reasons: BTreeMap<&'static str, u64>,
    /// Keys not equal.
    pub differences: u64,
    /// Source keys the task does not copy (their destination key would be in the report area, or
    /// the key is the stripped prefix itself).
    pub filtered: u64,
    /// Destination keys in the report area, passed over.
    pub report_area: u64,
    /// HEADs of OSS objects (for keys the listing could not settle).
    pub dest_heads: u64,
    /// HEADs of S3 objects (the same, when S3 changed after the copy).
    pub source_heads: u64,
    /// ListObjectsV2 pages read from S3 (inventory pages with an inventory).
    pub source_pages: u64,
    /// ListObjectsV2 pages read from OSS.
    pub dest_pages: u64,
    /// ListObjectsV2 requests of one key, placing the ranges.
    pub probes: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.source_listed += o.source_listed;
        self.dest_listed += o.dest_listed;
        for (k, n) in &o.kinds {
            *self.kinds.entry(k).or_default() += n;
        }
        for (k, n) in &o.reasons {
            *self.reasons.entry(k).or_default() += n;
        }
        self.differences += o.differences;
        self.filtered += o.filtered;
        self.report_area += o.report_area;
        self.dest_heads += o.dest_heads;
        self.source_heads += o.source_heads;
        self.source_pages += o.source_pages;
        self.dest_pages += o.dest_pages;
        self.probes += o.probes;
    }

    fn count(&mut self, kind: Kind, reason: Option<Reason>) {
        *self.kinds.entry(kind.as_str()).or_default() += 1;
        if let Some(r) = reason {
            *self.reasons.entry(r.as_str()).or_default() += 1;
        }
        if kind != Kind::Equal {
            self.differences += 1;
        }
    }

    /// Keys of a kind.
    pub fn of(&self, kind: Kind) -> u64 {
        self.kinds.get(kind.as_str()).copied().unwrap_or(0)
    }
}

/// Progress, read while a verification runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Keys joined so far.
    pub keys: AtomicU64,
    /// Differences so far.
    pub differences: AtomicU64,
    /// HEADs so far (both sides).
    pub heads: AtomicU64,
}

/// One key that is not equal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The destination key.
    pub dest_key: String,
    /// The source key (for a key only in OSS: the source key it would be a copy of).
    pub source_key: String,
    /// What it is.
    pub kind: Kind,
    /// Why it may differ.
    pub reason: Option<Reason>,
    /// The S3 listing's entry.
    pub source: Option<Entry>,
    /// The OSS listing's entry.
    pub dest: Option<Entry>,
}

/// The columns of the differences list.
pub const COLUMNS: [&str; 10] = [
    "dest_key",
    "source_key",
    "kind",
    "reason",
    "source_size",
    "dest_size",
    "source_etag",
    "dest_etag",
    "source_last_modified",
    "dest_last_modified",
];

impl Difference {
    /// The CSV cells: keys URL-encoded as in the daily reports, times RFC 3339.
    pub fn cells(&self) -> [String; 10] {
        use crate::report::rows::encode_key;
        let time = |e: &Option<Entry>| {
            e.as_ref()
                .and_then(|e| time::OffsetDateTime::from_unix_timestamp(e.modified).ok())
                .map(crate::outcome::format_time)
                .unwrap_or_default()
        };
        let field =
            |e: &Option<Entry>, f: fn(&Entry) -> String| e.as_ref().map(f).unwrap_or_default();
        [
            encode_key(&self.dest_key),
            encode_key(&self.source_key),
            self.kind.as_str().to_owned(),
            self.reason
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
            field(&self.source, |e| e.size.to_string()),
            field(&self.dest, |e| e.size.to_string()),
            field(&self.source, |e| e.etag.clone()),
            field(&self.dest, |e| e.etag.clone()),
            time(&self.source),
            time(&self.dest),
        ]
    }
}

/// One range's result: its counts, and its differences in key order in a spill file (CSV rows
/// without a header, CRLF line ends), rewound.
pub struct RangeOutcome {
    /// Counts.
    pub counts: Counts,
    /// The differences.
    pub spill: std::fs::File,
    /// Whether the range was read to its end (not stopped).
    pub complete: bool,
}

/// A whole verification's result, ranges in key order.
pub struct Outcome {
    /// Counts over every range.
    pub counts: Counts,
    /// The ranges listed.
    pub ranges: usize,
    /// Each range's differences, in key order.
    pub spills: Vec<std::fs::File>,
    /// Whether every range was read to its end.
    pub complete: bool,
}

/// Places the ranges by probing the source ([`super::ranges`]).
async fn plan<S: Sides>(
    sides: &S,
    m: &Mapping,
    n: usize,
    probes_made: &mut u64,
) -> Result<Vec<KeyRange>, VerifyError> {
    if n <= 1 || !sides.can_split() {
        return Ok(vec![KeyRange::default()]);
    }
    // The first key after a relative key ("": the first key of all), relative.
    let first_after = |rel: String| async move {
        let abs = format!("{}{rel}", m.source_prefix);
        let first = sides.first_source_key_after(&m.source_prefix, &abs).await?;
        Ok::<_, VerifyError>(
            first.and_then(|k| k.strip_prefix(m.source_prefix.as_str()).map(str::to_owned)),
        )
    };
    *probes_made += 1;
    let Some(first) = first_after(String::new()).await? else {
        return Ok(vec![KeyRange::default()]);
    };
    // The longest prefix every key shares (keys such as `logs/2026/11/…` share a long one), by
    // bisection: all keys share `p` when none lies after `p` + the last character.
    let (mut shared, mut unsure) = (0, first.chars().count());
    while shared < unsure {
        let mid = (shared + unsure).div_ceil(2);
        *probes_made += 1;
        if first_after(beyond(&char_prefix(&first, mid)))
            .await?
            .is_none()
        {
            shared = mid;
        } else {
            unsure = mid - 1;
        }
    }
    let mut base = char_prefix(&first, shared);
    let mut depth = 0;
    loop {
        let list = probes(&base);
        let found: Vec<Result<(String, Option<String>), VerifyError>> =
            futures_util::stream::iter(list.into_iter().map(|p| async move {
                let rel = first_after(p.clone()).await?;
                Ok((p, rel))
            }))
            .buffered(16)
            .collect()
            .await;
        *probes_made += found.len() as u64;
        let found = found.into_iter().collect::<Result<Vec<_>, _>>()?;
        depth += 1;
        match decide(&base, &found, n) {
            Probed::Split(b) => return Ok(ranges(&b)),
            Probed::Deeper(b) if depth < MAX_DEPTH => base = b,
            Probed::Deeper(_) | Probed::Whole => return Ok(vec![KeyRange::default()]),
        }
    }
}

/// Verifies the task's keys under the mapping: plans the ranges, verifies them
/// `options.parallel` at once, and returns their counts and differences in key order. Stops
/// early (incomplete) when `stop` is set.
pub async fn verify<S: Sides>(
    sides: &S,
    mapping: &Mapping,
    options: &VerifyOptions,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<Outcome, VerifyError> {
    let mut probes_made = 0;
    let planned = plan(sides, mapping, options.parallel, &mut probes_made).await?;
    let n = planned.len();
    let results: Vec<Result<RangeOutcome, VerifyError>> = futures_util::stream::iter(
        planned
            .into_iter()
            .map(|r| verify_range(sides, mapping, r, options, stop, progress)),
    )
    .buffered(options.parallel.max(1))
    .collect()
    .await;
    let mut out = Outcome {
        counts: Counts {
            probes: probes_made,
            ..Counts::default()
        },
        ranges: n,
        spills: Vec::with_capacity(n),
        complete: true,
    };
    for r in results {
        let r = r?;
        out.counts.add(&r.counts);
        out.complete &= r.complete;
        out.spills.push(r.spill);
    }
    Ok(out)
}
