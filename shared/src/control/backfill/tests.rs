//! Tests of the backfill: every object sent once in order with the checkpoint following it,
//! `since`, a failed batch, a stop, the rate, a full queue, removed objects, and rows left out.

use super::*;
use crate::control::checkpoint::{ObjectSource, Plan};
use crate::control::commands::recorded::Saved;
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
            let crate::event::Message::Events(e) = crate::event::parse_message(b).unwrap() else {
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
