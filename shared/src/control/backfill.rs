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
mod tests {
    use super::*;
    use crate::control::checkpoint::{ObjectSource, Plan};
    use crate::store::error::StoreError;
    use std::sync::Mutex;

    struct Pages(VecDeque<Result<Page, StoreError>>);
    impl ObjectLister for Pages {
        async fn next_page(&mut self) -> Result<Option<Page>, StoreError> {
            self.0.pop_front().transpose()
        }
    }

    /// Records every body; fails the batch numbered `fail_at` (0-based) once. With
    /// `consumed_per_s`, a consumer takes that many messages a second off the queue.
    #[derive(Default)]
    struct Queue {
        sent: Mutex<Vec<String>>,
        batches: Mutex<u32>,
        fail_at: Option<u32>,
        consumed_per_s: Option<(tokio::time::Instant, f64)>,
        most_waiting: Mutex<u64>,
    }
    impl Queue {
        fn depth(&self) -> u64 {
            let sent = self.sent.lock().unwrap().len() as f64;
            let consumed = self
                .consumed_per_s
                .map_or(0.0, |(t0, r)| t0.elapsed().as_secs_f64() * r);
            (sent - consumed).max(0.0) as u64
        }
    }
    impl EventQueue for Queue {
        async fn send_batch(&self, bodies: Vec<String>) -> Result<(), StoreError> {
            let n = {
                let mut b = self.batches.lock().unwrap();
                *b += 1;
                *b - 1
            };
            if Some(n) == self.fail_at {
                return Err(StoreError::Input("injected".into()));
            }
            self.sent.lock().unwrap().extend(bodies);
            let d = self.depth();
            let mut most = self.most_waiting.lock().unwrap();
            *most = (*most).max(d);
            Ok(())
        }
        async fn waiting(&self) -> Result<u64, StoreError> {
            Ok(self.depth())
        }
    }

    #[derive(Default)]
    struct Saved(Mutex<Vec<Checkpoint>>);
    impl CheckpointStore for Saved {
        fn load(&self) -> Result<Option<Checkpoint>, ControlError> {
            Ok(self.0.lock().unwrap().last().cloned())
        }
        fn save(&self, cp: &Checkpoint) -> Result<(), ControlError> {
            self.0.lock().unwrap().push(cp.clone());
            Ok(())
        }
    }

    fn object(i: u32, age_days: i64) -> Listed {
        let key = format!("k{i:05}");
        Listed {
            position: Position::AfterKey { key: key.clone() },
            key,
            size: Some(i as u64),
            etag: Some(format!("e{i}")),
            last_modified: Some(
                time::macros::datetime!(2026-11-25 00:00 UTC) - time::Duration::days(age_days),
            ),
            removed: false,
        }
    }

    fn pages(n: u32, per_page: u32) -> Pages {
        let all: Vec<Listed> = (0..n).map(|i| object(i, (i % 3) as i64)).collect();
        Pages(
            all.chunks(per_page as usize)
                .map(|c| {
                    Ok(Page {
                        objects: c.to_vec(),
                        ..Page::default()
                    })
                })
                .collect(),
        )
    }

    fn opts() -> BackfillOptions {
        BackfillOptions {
            bucket: "src".into(),
            since: None,
            rate: None,
            parallel: 4,
            batch_size: 10,
            max_waiting: None,
            event: crate::control::events::BACKFILL_EVENT,
        }
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint::new(
            Plan {
                task: "t".into(),
                source_bucket: "src".into(),
                prefix: String::new(),
                since: None,
                source: ObjectSource::List,
                queue_url: "q".into(),
            },
            "t0",
        )
    }

    /// The first event of each message sent.
    fn sent(q: &Queue) -> Vec<crate::event::ObjectEvent> {
        q.sent
            .lock()
            .unwrap()
            .iter()
            .map(|b| {
                let crate::event::Message::Events(e) = crate::event::parse_message(b).unwrap()
                else {
                    panic!()
                };
                e[0].clone().unwrap()
            })
            .collect()
    }

    fn keys(q: &Queue) -> Vec<String> {
        sent(q).into_iter().map(|e| e.key).collect()
    }

    #[tokio::test]
    async fn every_object_is_sent_once_in_order_and_the_checkpoint_follows() {
        let (q, store, stop) = (Queue::default(), Saved::default(), AtomicBool::new(false));
        let cp = run_backfill(
            pages(1234, 100),
            &q,
            &store,
            &opts(),
            checkpoint(),
            &stop,
            |_| {},
        )
        .await
        .unwrap();
        assert!(cp.finished);
        assert_eq!((cp.counts.listed, cp.counts.sent), (1234, 1234));
        let k = keys(&q);
        assert_eq!(k.len(), 1234);
        assert!(k.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            cp.position,
            Position::AfterKey {
                key: "k01233".into()
            }
        );
        // Every saved checkpoint's position is a prefix of what was sent.
        for saved in store.0.lock().unwrap().iter() {
            assert!(saved.counts.sent <= 1234);
            if let Position::AfterKey { key } = &saved.position {
                assert_eq!(k[saved.counts.sent as usize - 1], *key);
            }
        }
    }

    #[tokio::test]
    async fn since_leaves_old_objects_out_but_moves_past_them() {
        let (q, store, stop) = (Queue::default(), Saved::default(), AtomicBool::new(false));
        let mut o = opts();
        o.since = Some(time::macros::datetime!(2026-11-24 12:00 UTC));
        let cp = run_backfill(pages(300, 100), &q, &store, &o, checkpoint(), &stop, |_| {})
            .await
            .unwrap();
        assert_eq!(cp.counts.sent, 100, "only the objects of age 0 days");
        assert_eq!(cp.counts.before_since, 200);
        assert_eq!(cp.counts.listed, 300);
        assert!(cp.finished);
    }

    #[tokio::test]
    async fn a_failed_batch_stops_the_backfill_at_the_last_batch_before_it() {
        let q = Queue {
            fail_at: Some(7),
            ..Queue::default()
        };
        let (store, stop) = (Saved::default(), AtomicBool::new(false));
        let mut o = opts();
        o.parallel = 1;
        let e = run_backfill(pages(200, 50), &q, &store, &o, checkpoint(), &stop, |_| {})
            .await
            .unwrap_err();
        assert!(e.to_string().contains("injected"));
        let last = store.load().unwrap().unwrap();
        assert!(!last.finished);
        assert_eq!(last.counts.sent, 70);
        assert_eq!(
            last.position,
            Position::AfterKey {
                key: "k00069".into()
            }
        );
    }

    #[tokio::test]
    async fn a_stop_drains_what_is_in_flight_and_saves_it() {
        let (q, store, stop) = (Queue::default(), Saved::default(), AtomicBool::new(false));
        let cp = run_backfill(
            pages(500, 100),
            &q,
            &store,
            &opts(),
            checkpoint(),
            &stop,
            |cp| {
                if cp.counts.sent >= 120 {
                    stop.store(true, Ordering::Relaxed);
                }
            },
        )
        .await
        .unwrap();
        assert!(!cp.finished);
        // Everything sent is in the checkpoint, and nothing more.
        assert_eq!(cp.counts.sent as usize, keys(&q).len());
        assert!(cp.counts.sent < 500);
        assert_eq!(store.load().unwrap().unwrap(), cp);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_is_kept() {
        let (q, store, stop) = (Queue::default(), Saved::default(), AtomicBool::new(false));
        let mut o = opts();
        o.rate = Some(50.0);
        let t = tokio::time::Instant::now();
        run_backfill(pages(200, 100), &q, &store, &o, checkpoint(), &stop, |_| {})
            .await
            .unwrap();
        // 200 events at 50/s: the last batch starts at 190/50 = 3.8 s.
        let took = t.elapsed().as_secs_f64();
        assert!((3.8..4.5).contains(&took), "{took}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_holds_the_backfill_back() {
        let q = Queue {
            consumed_per_s: Some((tokio::time::Instant::now(), 20.0)),
            ..Queue::default()
        };
        let (store, stop) = (Saved::default(), AtomicBool::new(false));
        let mut o = opts();
        o.max_waiting = Some(50);
        let t = tokio::time::Instant::now();
        let cp = run_backfill(pages(400, 100), &q, &store, &o, checkpoint(), &stop, |_| {})
            .await
            .unwrap();
        assert!(cp.finished && cp.counts.sent == 400);
        // Sending waits for the consumer: 400 events at 20/s, less the 50 allowed to wait.
        let took = t.elapsed().as_secs_f64();
        assert!(took >= (400.0 - 50.0 - 40.0) / 20.0, "{took}");
        // At most one check's worth (half the limit) and the batches in flight beyond it.
        let most = *q.most_waiting.lock().unwrap();
        assert!(most <= 50 + 25 + 4 * 10, "{most}");
        assert!(most > 20, "{most}");
    }

    #[tokio::test]
    async fn removed_objects_go_as_deletes_and_the_others_under_the_event_name_given() {
        let (q, store, stop) = (Queue::default(), Saved::default(), AtomicBool::new(false));
        let mut objects: Vec<Listed> = (0..3).map(|i| object(i, 0)).collect();
        objects[1].removed = true;
        let mut o = opts();
        o.event = crate::control::events::VERIFY_EVENT;
        let lister = Pages(VecDeque::from([Ok(Page {
            objects,
            ..Page::default()
        })]));
        run_backfill(lister, &q, &store, &o, checkpoint(), &stop, |_| {})
            .await
            .unwrap();
        let names: Vec<String> = sent(&q).into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "ObjectCreated:Verify",
                "ObjectRemoved:Delete",
                "ObjectCreated:Verify"
            ]
        );
    }

    #[test]
    fn rows_left_out_still_move_the_position() {
        let page = Page {
            objects: vec![],
            not_current: 5,
            end: Some(Position::Inventory { file: 1, rows: 0 }),
        };
        let b = batches(page, &opts());
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].not_current, 5);
        assert_eq!(b[0].end, Position::Inventory { file: 1, rows: 0 });
    }
}
