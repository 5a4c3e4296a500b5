//! The report lease under concurrency: 100 pairs of report runs started at once against an
//! in-memory bucket whose every request is an interleaving point (a random number of yields, and
//! the shared clock moved on by a random step), some runs killed midway (their future dropped),
//! some running past their lease. Every request's effect is atomic, and a conditional write is
//! atomic with its condition, as S3's are.
//!
//! A write lands at the instant it starts (its effect first, then the interleaving point): the
//! model of the protocol's premise that a write lasts less than the lease's margin.
//!
//! Checked after every write of every trial: no run writes after another run acquired the lease,
//! nor after its own lease expired; every `manifest.json` present matches its
//! `manifest.checksum`, and every file it lists matches its MD5 and size. After every trial a
//! final run completes the days, consistently.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use s3_oss_sync::checksum::md5_hex;
use s3_oss_sync::outcome::{format_time, Outcome, OutcomeKind};
use s3_oss_sync::report::build::{Listing, RecordSource, ReportError, ReportSettings, ReportStore};
use s3_oss_sync::report::lease::{
    lease_key, Clock, Condition, LeaseBody, LeaseSettings, LeaseStore, LeaseWrite,
};
use s3_oss_sync::store::results::{results_key, to_json_lines};
use s3_oss_sync::testing::memory::{common_prefixes, MemoryBucket};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

mod runs;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What happened, in order.
#[derive(Debug, Clone)]
enum Event {
    Acquired {
        #[allow(dead_code)]
        holder: String,
    },
    Released {
        #[allow(dead_code)]
        holder: String,
    },
    Wrote {
        #[allow(dead_code)]
        holder: String,
        #[allow(dead_code)]
        key: String,
    },
}

/// The bucket (reports and the lease in one key space), the clock and the log.
struct Shared {
    objects: Mutex<BTreeMap<String, (Bytes, String)>>,
    log: Mutex<Vec<Event>>,
    now: Mutex<OffsetDateTime>,
    etags: AtomicU64,
    rng: Mutex<StdRng>,
    /// Largest clock step per request, seconds.
    max_step: u64,
}

impl Shared {
    fn new(seed: u64, start: OffsetDateTime, max_step: u64) -> Arc<Self> {
        Arc::new(Self {
            objects: Mutex::default(),
            log: Mutex::default(),
            now: Mutex::new(start),
            etags: AtomicU64::new(1),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            max_step,
        })
    }

    fn advance(&self, d: Duration) {
        *lock(&self.now) += d;
    }

    fn etag(&self) -> String {
        format!("\"e{}\"", self.etags.fetch_add(1, Ordering::Relaxed))
    }

    /// The lease's holder and expiry, as stored.
    fn lease(&self, key: &str) -> Option<LeaseBody> {
        lock(&self.objects)
            .get(key)
            .and_then(|(b, _)| serde_json::from_slice(b).ok())
    }

    /// Every `manifest.json` present matches its checksum, and every file it lists its MD5.
    fn check_manifests(&self) {
        let objects = lock(&self.objects);
        for (key, (raw, _)) in objects.iter() {
            let Some(dir) = key.strip_suffix("/manifest.json") else {
                continue;
            };
            let sum = &objects
                .get(&format!("{dir}/manifest.checksum"))
                .unwrap_or_else(|| panic!("{dir}: a manifest without its checksum"))
                .0;
            assert_eq!(
                std::str::from_utf8(sum).unwrap(),
                md5_hex(raw),
                "{dir}: manifest.checksum is not the manifest's MD5"
            );
            let m: serde_json::Value = serde_json::from_slice(raw).unwrap();
            for f in m["files"].as_array().unwrap() {
                let k = f["key"].as_str().unwrap();
                let body = &objects
                    .get(k)
                    .unwrap_or_else(|| panic!("{k}: listed by the manifest, missing"))
                    .0;
                assert_eq!(f["md5"], md5_hex(body), "{k}: changed under its manifest");
                assert_eq!(f["size"], body.len() as u64, "{k}");
            }
        }
    }
}

impl Clock for Shared {
    fn now(&self) -> OffsetDateTime {
        *lock(&self.now)
    }
}

/// One run's view of the shared bucket: its writes are logged under its holder id; it can be
/// made to hang after a number of requests (then its future is dropped: a run killed midway).
#[derive(Clone)]
struct View {
    shared: Arc<Shared>,
    holder: String,
    requests_left: Option<Arc<AtomicU32>>,
    /// How long a write of a list part takes on tokio's clock (then the shared clock moves on by
    /// as much), if long.
    slow_parts: Option<std::time::Duration>,
}

impl View {
    /// An interleaving point: yields a random number of times and moves the clock on.
    async fn step(&self) {
        if let Some(left) = &self.requests_left {
            if left.fetch_sub(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
        }
        let (yields, secs) = {
            let mut rng = lock(&self.shared.rng);
            (
                rng.random_range(0..4),
                rng.random_range(0..=self.shared.max_step),
            )
        };
        self.shared.advance(Duration::seconds(secs as i64));
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
    }

    /// A write lands: logged, and checked against the lease.
    fn wrote(&self, key: &str) {
        let s = &self.shared;
        let log = lock(&s.log);
        let current = log.iter().rev().find_map(|e| match e {
            Event::Acquired { holder } => Some(holder.clone()),
            _ => None,
        });
        assert_eq!(
            current.as_deref(),
            Some(self.holder.as_str()),
            "{} wrote {key} after {current:?} acquired the lease",
            self.holder
        );
        drop(log);
        let lease = s
            .lease(&lease_key("results", "t1"))
            .expect("a write without a lease");
        assert_eq!(lease.holder, self.holder, "{key}");
        let expires = OffsetDateTime::parse(
            &lease.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert!(s.now() < expires, "{key} written after the lease expired");
        lock(&s.log).push(Event::Wrote {
            holder: self.holder.clone(),
            key: key.to_owned(),
        });
    }
}

impl Listing for View {
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        self.step().await;
        Ok(lock(&self.shared.objects)
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        self.step().await;
        Ok(common_prefixes(lock(&self.shared.objects).keys(), prefix))
    }
}

impl RecordSource for View {
    async fn get(&self, key: &str) -> Result<Bytes, ReportError> {
        self.step().await;
        lock(&self.shared.objects)
            .get(key)
            .map(|(b, _)| b.clone())
            .ok_or_else(|| ReportError::Destination(format!("{key}: NoSuchKey").into()))
    }
}

impl ReportStore for View {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), ReportError> {
        if let Some(d) = self.slow_parts.filter(|_| key.contains("_list/part-")) {
            tokio::time::sleep(d).await;
            self.shared.advance(Duration::try_from(d).unwrap());
        }
        self.wrote(key);
        let etag = self.shared.etag();
        lock(&self.shared.objects).insert(key.to_owned(), (body, etag));
        self.shared.check_manifests();
        self.step().await;
        Ok(())
    }
    async fn exists(&self, key: &str) -> Result<bool, ReportError> {
        self.step().await;
        Ok(lock(&self.shared.objects).contains_key(key))
    }
    async fn delete(&self, key: &str) -> Result<(), ReportError> {
        self.wrote(key);
        lock(&self.shared.objects).remove(key);
        self.shared.check_manifests();
        self.step().await;
        Ok(())
    }
}

impl LeaseStore for View {
    async fn read_lease(&self, key: &str) -> Result<Option<(Bytes, String)>, ReportError> {
        self.step().await;
        Ok(lock(&self.shared.objects).get(key).cloned())
    }

    async fn put_lease(&self, key: &str, body: Bytes, condition: &Condition) -> LeaseWrite {
        let written = {
            let mut objects = lock(&self.shared.objects);
            if condition.admits(objects.get(key).map(|(_, etag)| etag.as_str())) {
                // A lease is taken over only once expired (or released).
                if let Some((old, _)) = objects.get(key) {
                    let old: LeaseBody = serde_json::from_slice(old).unwrap();
                    let expires = OffsetDateTime::parse(
                        &old.expires_at,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .unwrap();
                    assert!(
                        self.shared.now() >= expires,
                        "{} took over {}'s unexpired lease",
                        self.holder,
                        old.holder
                    );
                }
                let new: LeaseBody = serde_json::from_slice(&body).unwrap();
                assert_eq!(new.holder, self.holder);
                let etag = self.shared.etag();
                objects.insert(key.to_owned(), (body, etag.clone()));
                lock(&self.shared.log).push(Event::Acquired { holder: new.holder });
                Some(etag)
            } else {
                None
            }
        };
        self.step().await;
        Ok(written)
    }

    async fn delete_lease(&self, key: &str) -> Result<(), ReportError> {
        let old = self.shared.lease(key).expect("released twice");
        assert_eq!(old.holder, self.holder, "released another run's lease");
        lock(&self.shared.objects).remove(key);
        lock(&self.shared.log).push(Event::Released {
            holder: self.holder.clone(),
        });
        self.step().await;
        Ok(())
    }
}

fn settings() -> ReportSettings {
    ReportSettings {
        task: "t1".into(),
        results_prefix: "results".into(),
        report_prefix: "reports".into(),
        zone: Default::default(),
        grace: Duration::minutes(30),
        part_bytes: 700,
        sort_budget: 1 << 20,
        parallel_reads: 2,
    }
}

fn lease_settings() -> LeaseSettings {
    LeaseSettings {
        key: lease_key("results", "t1"),
        duration: Duration::minutes(10),
        margin: Duration::minutes(2),
    }
}

/// Three days of records, filed as the sync function does.
fn results() -> MemoryBucket {
    let b = MemoryBucket::default();
    for (d, day) in [
        datetime!(2026-11-20 09:00 UTC),
        datetime!(2026-11-21 09:00 UTC),
        datetime!(2026-11-22 09:00 UTC),
    ]
    .into_iter()
    .enumerate()
    {
        for inv in 0..3 {
            let at = day + Duration::hours(inv * 4);
            let records: Vec<Outcome> = (0..6)
                .map(|i| {
                    let kind = [OutcomeKind::Copied, OutcomeKind::Failed, OutcomeKind::Skipped]
                        [(i % 3) as usize];
                    serde_json::from_value(serde_json::json!({
                        "task": "t1", "processed_at": format_time(at), "source_key": format!("k{d}-{inv}-{i}"),
                        "dest_key": format!("k{d}-{inv}-{i}"), "event_time": format_time(at),
                        "event_name": "ObjectCreated:Put", "bucket": "src", "outcome": kind,
                        "bytes_moved": 10, "size": 10, "attempts": 1, "duration_ms": 5,
                        "message_id": format!("m{d}{inv}{i}"),
                    }))
                    .unwrap()
                })
                .collect();
            b.insert(
                &results_key("results", "t1", at, &format!("i{inv}")),
                to_json_lines(&records),
            );
        }
    }
    b
}

/// How one run ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Ran,
    Busy,
    LeaseEnding,
}
