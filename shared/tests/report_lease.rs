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
use md5::{Digest, Md5};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use s3_oss_sync::outcome::{format_time, Outcome, OutcomeKind};
use s3_oss_sync::report::build::{Listing, RecordSource, ReportError, ReportSettings, ReportStore};
use s3_oss_sync::report::lease::{
    lease_key, Clock, Condition, LeaseBody, LeaseHolder, LeaseSettings, LeaseStore, LeasedRun,
};
use s3_oss_sync::store::results::{results_key, to_json_lines};
use s3_oss_sync::testing::memory::MemoryBucket;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
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
        let mut out: Vec<String> = lock(&self.shared.objects)
            .keys()
            .filter_map(|k| {
                let rest = k.strip_prefix(prefix)?;
                let cut = rest.find('/')?;
                Some(format!("{prefix}{}", &rest[..=cut]))
            })
            .collect();
        out.dedup();
        Ok(out)
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

    async fn put_lease(
        &self,
        key: &str,
        body: Bytes,
        condition: &Condition,
    ) -> Result<Option<String>, ReportError> {
        let written = {
            let mut objects = lock(&self.shared.objects);
            let ok = match (condition, objects.get(key)) {
                (Condition::Absent, None) => true,
                (Condition::Unchanged(e), Some((_, etag))) => e == etag,
                _ => false,
            };
            if ok {
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

/// A report run as the function makes it: as of the clock at its start, under the lease.
async fn one_run(
    shared: Arc<Shared>,
    results: Arc<MemoryBucket>,
    holder: String,
    requests_left: Option<u32>,
) -> End {
    let view = View {
        shared: shared.clone(),
        holder: holder.clone(),
        requests_left: requests_left.map(|n| Arc::new(AtomicU32::new(n))),
        slow_parts: None,
    };
    let lease = lease_settings();
    let now = shared.now();
    let run = LeaseHolder {
        store: &view,
        settings: &lease,
        clock: shared.as_ref(),
        holder,
        deadline: None,
    }
    .run(&settings(), results.as_ref(), &view, now)
    .await;
    match run {
        Ok(LeasedRun::Ran(_)) => End::Ran,
        Ok(LeasedRun::Busy(b)) => {
            assert!(b.to_string().contains("another report run holds the lease"));
            End::Busy
        }
        Err(ReportError::LeaseEnding { .. }) => End::LeaseEnding,
        Err(e) => panic!("run failed: {e}"),
    }
}

#[tokio::test]
async fn a_hundred_pairs_of_concurrent_runs_leave_every_manifest_consistent() {
    // Runs are tasks of one thread, interleaved at every request.
    tokio::task::LocalSet::new().run_until(pairs()).await;
}

async fn pairs() {
    let results = Arc::new(results());
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    let mut took_over = 0;
    for trial in 0..100u64 {
        // Clock steps per request from none to two minutes: leases outlast some runs and
        // expire under others.
        let max_step = [0, 2, 5, 15, 40][(trial % 5) as usize];
        let shared = Shared::new(trial, datetime!(2026-11-22 23:50 UTC), max_step);
        let mut rng = StdRng::seed_from_u64(1000 + trial);
        // Every third trial, the first run is killed after a few requests.
        let kill = (trial % 3 == 0).then(|| rng.random_range(1..80));
        let a = tokio::task::spawn_local(one_run(
            shared.clone(),
            results.clone(),
            format!("a{trial}"),
            kill,
        ));
        // The second starts after a random number of yields, and tries again while busy (its
        // clock runs on, so an expired lease is taken over).
        let delay = rng.random_range(0..20);
        let b = tokio::task::spawn_local({
            let (shared, results) = (shared.clone(), results.clone());
            async move {
                for _ in 0..delay {
                    tokio::task::yield_now().await;
                }
                let mut ends = Vec::new();
                for attempt in 0..4 {
                    let end = one_run(
                        shared.clone(),
                        results.clone(),
                        format!("b{trial}.{attempt}"),
                        None,
                    )
                    .await;
                    let done = end == End::Ran;
                    ends.push(end);
                    if done {
                        break;
                    }
                    // Waits a while, in yields and on the clock.
                    let (yields, minutes) = {
                        let mut rng = lock(&shared.rng);
                        (rng.random_range(0..400), rng.random_range(0..=5))
                    };
                    for _ in 0..yields {
                        tokio::task::yield_now().await;
                    }
                    shared.advance(Duration::minutes(minutes));
                }
                ends
            }
        });
        let b_ends = b.await.unwrap();
        let a_end = if kill.is_some() {
            // Killed: its future is dropped wherever it is.
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
            a.abort();
            match a.await {
                Ok(end) => format!("{end:?}"),
                Err(e) if e.is_cancelled() => "Killed".into(),
                Err(e) => panic!("{e}"),
            }
        } else {
            format!("{:?}", a.await.unwrap())
        };
        *ends.entry(format!("a {a_end}")).or_default() += 1;
        for e in &b_ends {
            *ends.entry(format!("b {e:?}")).or_default() += 1;
        }
        shared.check_manifests();
        // Leases taken over (expired) from a run that never released them.
        let mut held = false;
        for e in lock(&shared.log).iter() {
            match e {
                Event::Acquired { .. } => {
                    took_over += usize::from(held);
                    held = true;
                }
                Event::Released { .. } => held = false,
                Event::Wrote { .. } => {}
            }
        }

        // Later, a run on its own completes the days, consistently.
        shared.advance(Duration::hours(1));
        let mut last = End::Busy;
        for attempt in 0..3 {
            last = one_run(
                shared.clone(),
                results.clone(),
                format!("c{trial}.{attempt}"),
                None,
            )
            .await;
            if last == End::Ran {
                break;
            }
            shared.advance(Duration::minutes(15));
        }
        // Runs with large clock steps may need more than one lease to finish.
        if last != End::Ran {
            assert!(max_step >= 15, "trial {trial}: {last:?}");
            let s = Shared::new(0, shared.now(), 0);
            *lock(&s.objects) = lock(&shared.objects).clone();
            assert_eq!(
                one_run(s.clone(), results.clone(), format!("d{trial}"), None).await,
                End::Ran
            );
            s.check_manifests();
            continue;
        }
        shared.check_manifests();
        let objects = lock(&shared.objects);
        for day in ["2026-11-20", "2026-11-21", "2026-11-22"] {
            let dir = format!("reports/t1/{day}");
            let m: serde_json::Value = serde_json::from_slice(
                &objects
                    .get(&format!("{dir}/manifest.json"))
                    .unwrap_or_else(|| panic!("trial {trial}: {dir} not complete"))
                    .0,
            )
            .unwrap();
            assert_eq!(m["records"], 18, "trial {trial}: {dir}");
            // Only listed parts remain in the list folders (plus nothing else).
            let listed: Vec<&str> = m["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["key"].as_str().unwrap())
                .collect();
            for k in objects.keys().filter(|k| k.contains("_list/")) {
                if k.starts_with(&dir) {
                    assert!(listed.contains(&k.as_str()), "trial {trial}: stray {k}");
                }
            }
        }
        if max_step == 0 {
            assert!(
                objects.get(&lease_key("results", "t1")).is_none(),
                "trial {trial}: the lease is released"
            );
        }
    }
    eprintln!("ends: {ends:?}; leases taken over from a writing run: {took_over}");
    // The trials exercised what they are for.
    assert!(ends.get("b Busy").is_some_and(|n| *n >= 20), "{ends:?}");
    assert!(ends.get("a Killed").is_some_and(|n| *n >= 10), "{ends:?}");
    assert!(
        ends.keys().any(|k| k.ends_with("LeaseEnding")),
        "no run outlived its lease: {ends:?}"
    );
    assert!(took_over > 0, "no lease was taken over from a live run");
}

/// A write still running near the lease's expiry (a large part over a slow link) is abandoned
/// before the lease expires, with `LeaseEnding`, and no manifest follows. Tokio's clock is paused:
/// the part's upload sleeps 20 minutes on it, and the lease's timeout runs on it.
#[tokio::test(start_paused = true)]
async fn a_write_running_past_the_lease_is_abandoned_before_it_expires() {
    let start = datetime!(2026-11-22 23:50 UTC);
    let shared = Shared::new(0, start, 0);
    let view = View {
        shared: shared.clone(),
        holder: "slow".into(),
        requests_left: None,
        slow_parts: Some(std::time::Duration::from_secs(20 * 60)),
    };
    let lease = lease_settings();
    let began = tokio::time::Instant::now();
    let run = LeaseHolder {
        store: &view,
        settings: &lease,
        clock: shared.as_ref(),
        holder: "slow".into(),
        deadline: None,
    }
    .run(&settings(), &results(), &view, start)
    .await;
    let took = began.elapsed();
    let e = run.expect_err("a write that outlasts the lease must not succeed");
    assert!(matches!(e, ReportError::LeaseEnding { .. }), "{e}");
    // The lease lasts 10 minutes with a 2-minute margin: the write is abandoned at 9:36, a fifth
    // of the margin before expiry.
    assert_eq!(took, std::time::Duration::from_secs(9 * 60 + 36), "{e}");
    assert!(e.to_string().contains("2026-11-22T23:59:36"), "{e}");
    let objects = lock(&shared.objects);
    assert!(
        !objects.keys().any(|k| k.contains("_list/part-")),
        "the abandoned part landed"
    );
    assert!(
        !objects.keys().any(|k| k.ends_with("manifest.json")),
        "a manifest followed the abandoned write"
    );
}
