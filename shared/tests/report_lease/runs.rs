//! The runs and their checks: one report run against the shared bucket, the hundred pairs of
//! concurrent runs, and a write running past the lease.

use super::{lease_settings, lock, results, settings, End, Event, Shared, View};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use s3_oss_sync::report::build::ReportError;
use s3_oss_sync::report::lease::{lease_key, Clock, LeaseHolder, LeasedRun};
use s3_oss_sync::testing::memory::MemoryBucket;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use time::macros::datetime;
use time::Duration;

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
