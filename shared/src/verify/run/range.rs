//! One key range's run: both listings read page by page and checked for order, joined key by
//! key, the pairs the listing cannot settle sent to HEADs (several at once, the results kept in
//! key order), the counts kept and the differences spilled to a temporary file.

use super::{
    Counts, Difference, Mapping, Pages, Progress, RangeOutcome, Sides, VerifyError, VerifyOptions,
};
use crate::verify::join::{
    head_verdict, listing_verdict, next_pair, Entry, Kind, Pair, Reason, SourceHead, Verdict,
};
use crate::verify::ranges::KeyRange;
use futures_util::stream::{FuturesOrdered, StreamExt};
use std::collections::VecDeque;
use std::future::Future;
use std::io::{Seek, Write};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};

/// One side's queue: a page at a time, cut at the range's end, checked for order.
struct Side<P> {
    pages: P,
    queue: VecDeque<Entry>,
    done: bool,
    last: Option<String>,
    name: &'static str,
}

impl<P: Pages> Side<P> {
    /// Refills an empty queue with the next page's entries (as `map` keeps and renames them)
    /// until one is there or the side ends. Returns pages read.
    async fn fill(
        &mut self,
        prefix: &str,
        range: &KeyRange,
        mut map: impl FnMut(Entry) -> Option<Entry>,
    ) -> Result<u64, VerifyError> {
        let mut pages = 0;
        while self.queue.is_empty() && !self.done {
            let Some(page) = self.pages.next_page().await? else {
                self.done = true;
                break;
            };
            pages += 1;
            for e in page {
                if let Some(prev) = &self.last {
                    if e.key.as_bytes() <= prev.as_bytes() {
                        return Err(VerifyError::Order {
                            side: self.name,
                            key: e.key,
                            previous: prev.clone(),
                        });
                    }
                }
                self.last = Some(e.key.clone());
                let rel = e.key.strip_prefix(prefix).unwrap_or(&e.key);
                if range.past_end(rel) {
                    self.done = true;
                    break;
                }
                self.queue.extend(map(e));
            }
        }
        Ok(pages)
    }
}

/// A key settled: the pair, its kind and reason, and the OSS and S3 HEADs it took.
type Settled = (Pair, Kind, Option<Reason>, u64, u64);

/// A key being settled, in key order among the others.
type Settling<'a> = Pin<Box<dyn Future<Output = Result<Settled, VerifyError>> + Send + 'a>>;

/// Settles a pair the listing could not, by its HEADs; returns the HEADs made.
async fn settle<S: Sides>(
    sides: &S,
    m: &Mapping,
    s: Entry,
    d: Entry,
    source_too: bool,
) -> Result<Settled, VerifyError> {
    let source_key = m.source_key(&d.key);
    let (dh, sh) = if source_too {
        futures_util::future::try_join(sides.head_dest(&d.key), sides.head_source(&source_key))
            .await?
    } else {
        (sides.head_dest(&d.key).await?, SourceHead::NotAsked)
    };
    let (kind, reason) = head_verdict(&s, &d, &dh, &sh);
    Ok((Pair::Both(s, d), kind, reason, 1, u64::from(source_too)))
}

/// Verifies one range.
pub async fn verify_range<S: Sides>(
    sides: &S,
    m: &Mapping,
    range: KeyRange,
    options: &VerifyOptions,
    stop: &AtomicBool,
    progress: &Progress,
) -> Result<RangeOutcome, VerifyError> {
    let start = |prefix: &str| range.after.as_ref().map(|a| format!("{prefix}{a}"));
    let mut src = Side {
        pages: sides
            .source_pages(&m.source_prefix, start(&m.source_prefix))
            .await?,
        queue: VecDeque::new(),
        done: false,
        last: None,
        name: "S3",
    };
    let mut dst = Side {
        pages: sides.dest_pages(&m.dest_prefix, start(&m.dest_prefix)),
        queue: VecDeque::new(),
        done: false,
        last: None,
        name: "OSS",
    };
    let mut counts = Counts::default();
    let mut spill = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(std::io::BufWriter::new(tempfile::tempfile()?));
    let mut settling: FuturesOrdered<Settling<'_>> = FuturesOrdered::new();
    let mut complete = true;
    // Counts a settled key and the HEADs it took, and spills it unless equal.
    let record = |counts: &mut Counts,
                  spill: &mut csv::Writer<_>,
                  settled: Settled|
     -> Result<(), VerifyError> {
        let (pair, kind, reason, dest_heads, source_heads) = settled;
        counts.dest_heads += dest_heads;
        counts.source_heads += source_heads;
        progress
            .heads
            .fetch_add(dest_heads + source_heads, Ordering::Relaxed);
        counts.count(kind, reason);
        progress.keys.fetch_add(1, Ordering::Relaxed);
        if kind == Kind::Equal {
            return Ok(());
        }
        progress.differences.fetch_add(1, Ordering::Relaxed);
        let (source, dest) = match pair {
            Pair::Source(s) => (Some(s), None),
            Pair::Dest(d) => (None, Some(d)),
            Pair::Both(s, d) => (Some(s), Some(d)),
        };
        let dest_key = source
            .as_ref()
            .or(dest.as_ref())
            .map(|e| e.key.clone())
            .unwrap_or_default();
        let d = Difference {
            source_key: m.source_key(&dest_key),
            dest_key,
            kind,
            reason,
            source,
            dest,
        };
        spill
            .write_record(d.cells())
            .map_err(|e| VerifyError::Spill(e.into()))
    };
    loop {
        if stop.load(Ordering::Relaxed) {
            complete = false;
            break;
        }
        counts.source_pages += src
            .fill(&m.source_prefix, &range, |e| {
                match m.binding.dest_key(&m.binding.source_bucket, &e.key) {
                    Ok(key) => {
                        counts.source_listed += 1;
                        Some(Entry { key, ..e })
                    }
                    Err(_) => {
                        counts.filtered += 1;
                        None
                    }
                }
            })
            .await?;
        counts.dest_pages += dst
            .fill(&m.dest_prefix, &range, |e| {
                if m.in_report_area(&e.key) {
                    counts.report_area += 1;
                    None
                } else {
                    counts.dest_listed += 1;
                    Some(e)
                }
            })
            .await?;
        let Some(pair) = next_pair(&mut src.queue, &mut dst.queue) else {
            break;
        };
        // Results keep key order: a key the listing settles waits behind HEADs in flight, and
        // goes straight through when there are none.
        let ready = |pair, kind| (pair, kind, None, 0, 0);
        let next: Result<Settled, Settling<'_>> = match pair {
            Pair::Source(_) => Ok(ready(pair, Kind::Missing)),
            Pair::Dest(_) => Ok(ready(pair, Kind::Extra)),
            Pair::Both(s, d) => match listing_verdict(&s, &d, options.clock_tolerance_s) {
                Verdict::Settled(kind) => Ok(ready(Pair::Both(s, d), kind)),
                Verdict::Head { source } => Err(Box::pin(settle(sides, m, s, d, source))),
            },
        };
        match next {
            Ok(settled) if settling.is_empty() => record(&mut counts, &mut spill, settled)?,
            Ok(settled) => settling.push_back(Box::pin(async move { Ok(settled) })),
            Err(pending) => settling.push_back(pending),
        }
        while settling.len() >= options.heads_in_flight.max(1) {
            if let Some(r) = settling.next().await {
                record(&mut counts, &mut spill, r?)?;
            }
        }
    }
    while let Some(r) = settling.next().await {
        record(&mut counts, &mut spill, r?)?;
    }
    let mut file = spill
        .into_inner()
        .map_err(|e| VerifyError::Spill(e.into_error()))?
        .into_inner()
        .map_err(|e| VerifyError::Spill(e.into_error()))?;
    file.flush()?;
    file.rewind()?;
    Ok(RangeOutcome {
        counts,
        spill: file,
        complete,
    })
}
