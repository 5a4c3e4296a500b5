//! Backfill: every object under the task's prefix becomes an `ObjectCreated:Backfill` event in
//! the task queue, in key order, batches of up to 10 sent a few at a time, the checkpoint saved
//! after each batch the queue accepted (in order), so a stopped or killed backfill resumes after
//! the last batch it knows was sent.

use super::checkpoint::{Checkpoint, CheckpointStore};
use super::events::{event_body, SentEvent, RETRY_DELETE_EVENT};
use super::ControlError;
use crate::outcome::format_time;
use crate::store::listing::{Listed, ObjectLister, Page, Position};
use crate::store::queue::{EventQueue, MAX_BATCH};
use futures_util::stream::FuturesOrdered;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// How to backfill.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    /// The source bucket named in the events.
    pub bucket: String,
    /// Only objects modified at or after this.
    pub since: Option<OffsetDateTime>,
    /// At most this many events per second.
    pub rate: Option<f64>,
    /// Batches in flight at once.
    pub parallel: usize,
    /// Events per batch (1 to [`MAX_BATCH`]).
    pub batch_size: usize,
    /// The name of the creation events sent ([`super::events::BACKFILL_EVENT`], or a verification's repair
    /// [`super::events::VERIFY_EVENT`]).
    pub event: &'static str,
    /// Hold sending while more than this many messages wait in the queue, so live events are
    /// not stuck behind a long backfill (checked every second, and after every half of it sent).
    pub max_waiting: Option<u64>,
}

/// How long a backfill holds before looking at the queue again.
const HOLD: Duration = Duration::from_secs(1);

/// A batch: the objects to send and what handling it adds to the checkpoint.
struct Batch {
    objects: Vec<Listed>,
    listed: u64,
    before_since: u64,
    not_current: u64,
    end: Position,
}

fn batches(page: Page, opts: &BackfillOptions) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut cur = Batch {
        objects: Vec::new(),
        listed: 0,
        before_since: 0,
        not_current: page.not_current,
        end: Position::Start,
    };
    let size = opts.batch_size.clamp(1, MAX_BATCH);
    for o in page.objects {
        cur.listed += 1;
        cur.end = o.position.clone();
        let old = opts
            .since
            .is_some_and(|since| o.last_modified.is_some_and(|m| m < since));
        if old {
            cur.before_since += 1;
        } else {
            cur.objects.push(o);
        }
        if cur.objects.len() == size {
            let end = cur.end.clone();
            out.push(std::mem::replace(
                &mut cur,
                Batch {
                    objects: Vec::new(),
                    listed: 0,
                    before_since: 0,
                    not_current: 0,
                    end,
                },
            ));
        }
    }
    if let Some(end) = page.end {
        cur.end = end;
    }
    if cur.listed > 0 || cur.not_current > 0 {
        out.push(cur);
    }
    out
}

/// Sending slots for a rate: event n goes at `start + n / rate`.
struct Pace {
    rate: Option<f64>,
    start: tokio::time::Instant,
    events: u64,
}

impl Pace {
    fn new(rate: Option<f64>) -> Self {
        Self {
            rate: rate.filter(|r| *r > 0.0),
            start: tokio::time::Instant::now(),
            events: 0,
        }
    }

    /// When a batch of `n` events may go (none without a rate).
    fn slot(&mut self, n: u64) -> Option<tokio::time::Instant> {
        let rate = self.rate?;
        let at = self.start + Duration::from_secs_f64(self.events as f64 / rate);
        self.events += n;
        Some(at)
    }
}

/// Runs (or resumes) a backfill from `cp`: the lister must start at `cp.position`. Returns the
/// final checkpoint, `finished` unless `stop` was set, in which case the batches already in flight
/// are waited for and saved first. `progress` is called after every checkpoint save.
pub async fn run_backfill<L, Q, S>(
    lister: L,
    queue: &Q,
    store: &S,
    opts: &BackfillOptions,
    mut cp: Checkpoint,
    stop: &AtomicBool,
    mut progress: impl FnMut(&Checkpoint),
) -> Result<Checkpoint, ControlError>
where
    L: ObjectLister,
    Q: EventQueue,
    S: CheckpointStore,
{
    store.save(&cp)?;
    // Pages are read ahead in their own task while batches are sent.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Page, ControlError>>(2);
    let reader = tokio::spawn(async move {
        let mut lister = lister;
        loop {
            let page = lister.next_page().await;
            let end = !matches!(page, Ok(Some(_)));
            let sent = match page {
                Ok(Some(p)) => tx.send(Ok(p)).await,
                Ok(None) => break,
                Err(e) => tx.send(Err(e.into())).await,
            };
            if end || sent.is_err() {
                break;
            }
        }
    });
    let parallel = opts.parallel.max(1);
    let mut pace = Pace::new(opts.rate);
    let mut hold: Option<tokio::time::Instant> = None;
    let mut since_check: Option<(tokio::time::Instant, u64)> = None;
    let mut pending: VecDeque<Batch> = VecDeque::new();
    let mut inflight = FuturesOrdered::new();
    let mut pages_done = false;
    let result = loop {
        let stopping = stop.load(Ordering::Relaxed);
        if hold.is_some_and(|t| tokio::time::Instant::now() >= t) {
            hold = None;
        }
        while !stopping && hold.is_none() && inflight.len() < parallel && !pending.is_empty() {
            if let Some(max) = opts.max_waiting {
                let due = since_check.is_none_or(|(at, sent)| {
                    at.elapsed() >= HOLD || sent.saturating_mul(2) >= max.max(1)
                });
                if due {
                    match queue.waiting().await {
                        Ok(n) if n > max => {
                            hold = Some(tokio::time::Instant::now() + HOLD);
                            pace = Pace::new(opts.rate);
                            since_check = None;
                            break;
                        }
                        Ok(_) => since_check = Some((tokio::time::Instant::now(), 0)),
                        Err(e) => {
                            tracing::warn!(error = %crate::errors::error_chain(&e), "could not read the queue's depth; holding");
                            hold = Some(tokio::time::Instant::now() + HOLD);
                            break;
                        }
                    }
                }
            }
            let Some(batch) = pending.pop_front() else {
                break;
            };
            let at = pace.slot(batch.objects.len() as u64);
            if let Some((_, sent)) = &mut since_check {
                *sent += batch.objects.len() as u64;
            }
            let now = OffsetDateTime::now_utc();
            let bodies: Vec<String> = batch
                .objects
                .iter()
                .map(|o| {
                    event_body(
                        &SentEvent {
                            name: if o.removed {
                                RETRY_DELETE_EVENT
                            } else {
                                opts.event
                            },
                            bucket: &opts.bucket,
                            key: &o.key,
                            size: o.size,
                            etag: o.etag.as_deref(),
                        },
                        now,
                    )
                })
                .collect();
            inflight.push_back(async move {
                // Paced inside the future, so batches already in flight go on meanwhile.
                if let Some(at) = at {
                    tokio::time::sleep_until(at).await;
                }
                let r = if bodies.is_empty() {
                    Ok(())
                } else {
                    queue.send_batch(bodies).await
                };
                (batch, r)
            });
        }
        let want_page = !stopping && !pages_done && pending.is_empty();
        let held = !stopping && hold.is_some() && !pending.is_empty();
        if inflight.is_empty() && !want_page && !held {
            break Ok(());
        }
        tokio::select! {
            done = inflight.next(), if !inflight.is_empty() => {
                let Some((batch, r)) = done else { continue };
                if let Err(e) = r {
                    break Err(ControlError::from(e));
                }
                cp.position = batch.end;
                cp.counts.listed += batch.listed;
                cp.counts.sent += batch.objects.len() as u64;
                cp.counts.before_since += batch.before_since;
                cp.counts.not_current += batch.not_current;
                cp.updated_at = format_time(OffsetDateTime::now_utc());
                if let Err(e) = store.save(&cp) {
                    break Err(e);
                }
                progress(&cp);
            }
            page = rx.recv(), if want_page => match page {
                Some(Ok(p)) => pending.extend(batches(p, opts)),
                Some(Err(e)) => break Err(e),
                None => pages_done = true,
            },
            _ = tokio::time::sleep_until(hold.unwrap_or_else(tokio::time::Instant::now)), if held => {}
        }
    };
    reader.abort();
    result?;
    if !stop.load(Ordering::Relaxed) && pages_done && pending.is_empty() {
        cp.finished = true;
        cp.updated_at = format_time(OffsetDateTime::now_utc());
        store.save(&cp)?;
        progress(&cp);
    }
    Ok(cp)
}

#[cfg(test)]
mod tests;
