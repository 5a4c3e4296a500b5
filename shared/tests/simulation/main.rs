//! A seeded, deterministic simulation of the whole sync protocol: users write to an in-memory
//! S3 with per-key sequencers, events reach an SQS model late, reordered and duplicated, batches
//! go to several concurrent invocations of `SyncService::handle` that a single-threaded
//! executor interleaves at every await point, store calls fail and invocations are killed; once
//! the users stop and the queue drains, every key's OSS object must be the source's final state,
//! and every delivery must have exactly its records.
//!
//! `SIM_SCHEDULES` (default 10,000) schedules from `SIM_SEED_BASE` (default 0); `SIM_SEED=n`
//! replays one. A failing schedule is replayed with its trace, which the panic shows.
//! Schedules fan copies out to range jobs in a tenth of those with copies in parts;
//! `SIM_FAN_OUT=1` makes it 40 %, `SIM_FAN_OUT=0` none (a seed draws the same other parameters
//! either way).

#[path = "../sim/mod.rs"]
mod sim;

use sim::exec::Sim;
use sim::schedule::{describe, run, run_or_describe, Stats};
use sim::world::{lock, Shared, World};
use std::time::Instant;

mod defects;
mod parts;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {v:?}")),
    )
}

#[test]
fn seeded_schedules_converge() {
    let seeds = match env_u64("SIM_SEED") {
        Some(seed) => seed..seed + 1,
        None => {
            let base = env_u64("SIM_SEED_BASE").unwrap_or(0);
            base..base + env_u64("SIM_SCHEDULES").unwrap_or(10_000)
        }
    };
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut failing = Vec::new();
    for seed in seeds.clone() {
        match run(seed, false).0 {
            Ok(s) => stats.add(&s),
            Err(_) => failing.push(seed),
        }
    }
    eprintln!(
        "simulation: {} schedules (seeds {seeds:?}) in {:.1?}, {} failed; {} messages, {} deliveries, {} invocations, {} killed, {} writes landed after their invocation was gone; records {:?}",
        seeds.end - seeds.start,
        started.elapsed(),
        failing.len(),
        stats.messages,
        stats.deliveries,
        stats.invocations,
        stats.killed,
        stats.late_writes,
        stats.outcomes
    );
    let r = &stats.resume;
    eprintln!(
        "resumable copies: {} schedules with copies in parts ({} fanning out), {} with deadlines; {} uploads initiated, {} parts stored, {} resumptions, {} parts kept on resumption, {} continuations, {} range jobs, {} completions claimed ({} claims refused), {} uploads completed ({} fanned out, {} after their invocation was gone, {} with the answer lost), {} aborted, {} left open for the sweep, {} checkpoint writes ({} objects left), {} parts, aborts and checkpoint writes landed after their invocation was gone",
        stats.with_parts,
        stats.with_fan_out,
        stats.with_deadlines,
        r.initiated,
        r.parts,
        r.resumed,
        r.parts_kept,
        stats.continuations,
        stats.range_jobs,
        r.claims,
        r.claims_refused,
        r.completed,
        r.completed_fanned,
        r.completed_late,
        r.completed_lost,
        r.aborted,
        stats.open_uploads,
        r.checkpoint_writes,
        stats.checkpoints_left,
        r.late_other
    );
    if let Some(&first) = failing.first() {
        panic!(
            "{} of {} schedules failed; the first seeds: {:?}\n{}",
            failing.len(),
            seeds.end - seeds.start,
            &failing[..failing.len().min(20)],
            describe(first)
        );
    }
}

/// Seeds that diverged on the protocol that skipped on a marker whose sequencer was not below the
/// event's (defect 1): a late write of an older version, then a failure before the job could
/// answer, then the redelivery skipped on the marker that late write left. Which failure:
/// the post-upload source HEAD's 503 (1748, 4989, 7022, 8489, 4153), OSS's answer to the PUT
/// lost after it committed (696, 1607, 4697), a kill (1389, 9777, 6383); the same with a
/// metadata-only change (3327) and with a delete that the late write undid (1407, 2533, 4042).
/// They depend on the handler's exact await points and on how many store calls it makes (each
/// draws from the seed's generator), so a restructuring may make them stop reproducing, passing
/// for no reason of their own: the scripted `defect_1_*` scenarios are the durable regression
/// tests.
const REGRESSION_SEEDS: &[u64] = &[
    696, 1389, 1407, 1607, 1748, 2533, 3327, 4042, 4153, 4697, 4989, 6383, 7022, 8489, 9777,
];

/// Seeds that still diverged with the marker rule fixed (defect 2, see its scripted scenario): a
/// message delivered again while its first delivery was in flight.
const REDELIVERY_SEEDS: &[u64] = &[15213, 18320];

#[test]
fn regression_seeds_converge() {
    let seeds: Vec<u64> = REGRESSION_SEEDS
        .iter()
        .chain(REDELIVERY_SEEDS)
        .copied()
        .collect();
    let failures: Vec<String> = seeds
        .iter()
        .filter_map(|&seed| run_or_describe(seed).err())
        .collect();
    if let Some(first) = failures.first() {
        panic!(
            "{} of {} regression seeds failed\n{first}",
            failures.len(),
            seeds.len()
        );
    }
}

/// A world for a scripted scenario: traced, no faults but the armed ones, and every store call
/// `Pending` once, so each poll advances an invocation by one await point.
fn scripted() -> Shared {
    let mut w = World::new(0, true);
    w.fixed_delay = Some(1);
    w.shared()
}

const KEY: &str = "hot/a.txt";

/// Delivers whatever comes back until the queue drains (bounded), each invocation run to its end.
fn drain(sim: &mut Sim<'_>) {
    drain_with(sim, 10, false);
}

/// [`drain`] with batches of at most `batch` messages; with `ticking`, the virtual clock moves a
/// second at each poll (so checkpoints are saved as parts finish, and deadlines come).
fn drain_with(sim: &mut Sim<'_>, batch: usize, ticking: bool) {
    for _ in 0..40 {
        let landing = lock(&sim.world).landing.iter().map(|(at, _)| *at).min();
        if sim.queue.drained() && landing.is_none() {
            return;
        }
        let next = match (sim.queue.next_visible(), landing) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).expect("nothing in flight"),
        };
        {
            let mut w = lock(&sim.world);
            w.now = w.now.max(next);
            w.land_orphans();
        }
        if let Some(id) = sim.start_batch(batch, 0.0) {
            if ticking {
                run_ticking(sim, &id, |_| false);
            } else {
                sim.run_to_end(&id);
            }
        }
    }
    panic!("the queue did not drain in 40 steps");
}

/// Polls invocation `id`, the virtual clock moving a second before each poll, until `until`
/// holds of the world or it finished; true if it holds.
fn run_ticking(sim: &mut Sim<'_>, id: &str, until: impl Fn(&World) -> bool) -> bool {
    for _ in 0..100_000 {
        if until(&lock(&sim.world)) {
            return true;
        }
        let Some(i) = sim.index(id) else {
            return false;
        };
        {
            let mut w = lock(&sim.world);
            w.now += 1;
            w.land_orphans();
        }
        sim.poll(i);
    }
    panic!("{id} did not finish in 100,000 polls");
}
