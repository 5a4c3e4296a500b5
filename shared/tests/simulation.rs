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

mod sim;

use sim::exec::{service, service_with, Sim};
use sim::schedule::{describe, run, run_or_describe, Stats};
use sim::users::{big_bytes_of, body, bytes_of, meta_of, put};
use sim::world::{lock, Op, PartSettings, Shared, World};
use std::time::Instant;

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

/// A defect-1 scenario under way: the executor, the ETags of versions A and B, and the id of the
/// invocation whose job still holds A.
struct Defect1<'a> {
    sim: Sim<'a>,
    a: String,
    b: String,
    old: String,
}

/// Defect 1, up to the point where the two scenarios differ: version A is written and its event
/// goes to `inv-1`, whose job reads A; then B is written and its job (`inv-2`) copies B and
/// finishes, acknowledged. `inv-1` is still holding A's bytes.
fn defect_1_setup(sim: Sim<'_>) -> Defect1<'_> {
    let mut sim = sim;
    let ev_a = put(&sim, KEY, bytes_of(KEY, 1), meta_of(0), "ObjectCreated:Put");
    let a = lock(&sim.world).source[KEY].etag.clone();
    sim.queue.send(body(&[ev_a]), vec![KEY.into()], 0);
    let old = sim.start_batch(10, 0.0).expect("A's message is visible");
    let read_a = sim.run_until(&old, |w| {
        w.trace
            .iter()
            .any(|t| t.actor == old && t.op == Op::SourceGet && t.text.starts_with("S3 GET →"))
    });
    assert!(read_a, "the old job never read the source");

    let ev_b = put(&sim, KEY, bytes_of(KEY, 2), meta_of(1), "ObjectCreated:Put");
    let b = lock(&sim.world).source[KEY].etag.clone();
    sim.queue.send(body(&[ev_b]), vec![KEY.into()], 0);
    let new = sim.start_batch(10, 0.0).expect("B's message is visible");
    let answer = sim.run_to_end(&new);
    assert!(
        answer.report.response.batch_item_failures.is_empty(),
        "B's job must succeed: {:?}",
        answer.report.outcomes
    );
    assert_eq!(dest_etag(&sim), Some(b.clone()), "B's job copied B");
    Defect1 { sim, a, b, old }
}

/// The ETag (as the source gives it) of the bytes OSS holds for the key.
fn dest_etag(sim: &Sim<'_>) -> Option<String> {
    lock(&sim.world)
        .dest
        .get(KEY)
        .map(|d| sim::world::md5_hex(&d.bytes))
}

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

fn assert_holds_b(d: &Defect1<'_>) {
    let w = lock(&d.sim.world);
    let trace: Vec<String> = w
        .trace
        .iter()
        .map(|t| format!("t={} {} {}", t.now, t.actor, t.text))
        .collect();
    drop(w);
    let held = dest_etag(&d.sim);
    assert_eq!(
        held.as_deref(),
        Some(d.b.as_str()),
        "after the queue drained OSS must hold B ({}), the source's version, not A ({}); trace:\n{}",
        d.b,
        d.a,
        trace.join("\n")
    );
}

/// Defect 1 exactly: the old job's write of A lands after B's job finished, its post-upload
/// source HEAD fails (503), and the redelivered event for A must not be skipped on the marker
/// A's own late write left (same ETag, same sequencer): OSS ends holding B.
#[test]
fn defect_1_a_late_write_whose_confirmation_fails_is_repaired() {
    let world = scripted();
    let svc = service(&world, true, 4, 300);
    let mut d = defect_1_setup(Sim::new(world.clone(), &svc));
    lock(&world).armed.push((Op::SourceHead, KEY.into()));
    let old = d.old.clone();
    let records = d.sim.run_to_end(&old).report.outcomes.clone();
    if dest_etag(&d.sim).as_deref() != Some(d.a.as_str()) {
        eprintln!("note: the old job's write of A no longer lands over B; the scenario now checks convergence only");
    }
    eprintln!("the old job's records: {records:?}");
    drain(&mut d.sim);
    assert_holds_b(&d);
}

/// The same with a kill: the old job's write of A lands after B's job finished, then the
/// invocation is killed (a crash or a timeout) before it answers; the redelivered event for A
/// must not be skipped on A's marker: OSS ends holding B.
#[test]
fn defect_1_a_late_write_then_a_kill_is_repaired() {
    let world = scripted();
    let svc = service(&world, true, 4, 300);
    let mut d = defect_1_setup(Sim::new(world.clone(), &svc));
    let old = d.old.clone();
    let landed = d.sim.run_until(&old, |w| {
        w.trace.iter().any(|t| {
            t.actor == old && t.op == Op::DestUpload && t.text.starts_with("OSS PUT commits")
        })
    });
    assert!(landed, "the old job never wrote A");
    let i = d.sim.index(&old).expect("the old job is still running");
    d.sim.kill(i);
    drain(&mut d.sim);
    assert_holds_b(&d);
}

/// A's message is delivered again while the old job still holds it; that second delivery must
/// acknowledge it. Its records.
fn second_delivery_acknowledges(d: &mut Defect1<'_>) -> Vec<s3_oss_sync::outcome::Outcome> {
    let second = d
        .sim
        .start_batch(10, 1.0)
        .expect("A's message is delivered again");
    let answer = d.sim.run_to_end(&second);
    assert!(
        answer.report.response.batch_item_failures.is_empty(),
        "the second delivery acknowledges A's message: {:?}",
        answer.report.outcomes
    );
    answer.report.outcomes.clone()
}

/// The old job's late write of A lands over B, then its invocation is killed before it can check;
/// whatever comes back is delivered until the queue drains.
fn late_write_of_a_then_a_kill(d: &mut Defect1<'_>) {
    let old = d.old.clone();
    let landed = d.sim.run_until(&old, |w| {
        w.trace.iter().any(|t| {
            t.actor == old && t.op == Op::DestUpload && t.text.starts_with("OSS PUT commits")
        })
    });
    assert!(landed, "the old job never wrote A");
    assert_eq!(
        dest_etag(&d.sim).as_deref(),
        Some(d.a.as_str()),
        "the late write of A landed over B"
    );
    let i = d.sim.index(&old).expect("the old job is still running");
    d.sim.kill(i);
    drain(&mut d.sim);
}

/// What the simulation still found after defects 1 and 2 (17 of 300,000 schedules): A's message
/// is delivered a second time while its first delivery holds it; the second finds the key on B
/// and acknowledges the message; then the first delivery's late write of A lands and the
/// invocation is killed (a timeout, a crash) before it can check. Nothing of A's message is left
/// on the queue, so only the recheck the second delivery left behind (it was not the first to
/// receive the message) can bring the key back to B.
#[test]
fn defect_3_a_late_write_then_a_kill_after_a_second_delivery_acknowledged_is_repaired() {
    let world = scripted();
    let svc = service(&world, true, 4, 300);
    let mut d = defect_1_setup(Sim::new(world.clone(), &svc));
    let outcomes = second_delivery_acknowledges(&mut d);
    assert_eq!(outcomes[0].receive_count, 2);
    let queued = lock(&world)
        .trace
        .iter()
        .any(|t| t.op == Op::Sqs && t.text.starts_with("recheck "));
    assert!(queued, "the second delivery left no recheck");
    late_write_of_a_then_a_kill(&mut d);
    assert_holds_b(&d);
}

/// What the simulation found once a second delivery may carry the same receive count as the
/// first (Lambda's poller invoking one batch twice; the count is approximate): the second
/// delivery is not known to be one, works on the message, finds the key on B and acknowledges
/// it; then the first delivery's late write of A lands and it is killed before it can check.
/// No hand-over happened, so only the recheck the first delivery left before its write can bring
/// the key back to B (2 of 100,000 schedules diverged without it).
#[test]
fn defect_4_a_late_write_then_a_kill_after_a_same_count_duplicate_acknowledged_is_repaired() {
    let world = scripted();
    let svc = service(&world, true, 4, 300);
    let mut d = defect_1_setup(Sim::new(world.clone(), &svc));
    d.sim.queue.same_count = 1.0;
    let outcomes = second_delivery_acknowledges(&mut d);
    assert_eq!(outcomes[0].receive_count, 1);
    assert_ne!(
        outcomes[0].error_code.as_deref(),
        Some("Rechecking"),
        "a same-count delivery cannot know it is a second one"
    );
    late_write_of_a_then_a_kill(&mut d);
    assert_holds_b(&d);
    let queued = lock(&world)
        .trace
        .iter()
        .any(|t| t.op == Op::Sqs && t.text.contains(" of m1 queued"));
    assert!(
        queued,
        "the old job wrote A without leaving a recheck first"
    );
}

/// Found by the simulation beyond defect 1 (seeds 15213, 18320 with only the marker rule fixed):
/// SQS delivers A's message again while its first delivery is still in flight (at-least-once; a
/// visibility timeout shorter than the work). The first job reads A; the key is deleted and the
/// delete synced; the second delivery of A's message finds nothing to do and acknowledges it;
/// then the first job's write of A lands and its confirming source HEAD fails (503). Its failure
/// report brings nothing back (the message is gone), so nothing repairs the late write unless
/// the job that wrote confirms it itself.
#[test]
fn defect_2_a_late_write_whose_message_was_acknowledged_by_a_second_delivery_is_repaired() {
    let world = scripted();
    let svc = service(&world, true, 4, 300);
    let mut sim = Sim::new(world.clone(), &svc);
    let ev_a = put(&sim, KEY, bytes_of(KEY, 1), meta_of(0), "ObjectCreated:Put");
    sim.queue.send(body(&[ev_a]), vec![KEY.into()], 0);
    let first = sim.start_batch(10, 0.0).expect("A's message is visible");
    let read_a = sim.run_until(&first, |w| {
        w.trace
            .iter()
            .any(|t| t.actor == first && t.op == Op::SourceGet && t.text.starts_with("S3 GET →"))
    });
    assert!(read_a, "the first job never read the source");

    let ev_delete = sim::users::delete(&sim, KEY);
    sim.queue.send(body(&[ev_delete]), vec![KEY.into()], 0);
    let deleting = sim
        .start_batch(10, 0.0)
        .expect("the delete's message is visible");
    sim.run_to_end(&deleting);
    // A's message again, while the first delivery still holds it.
    let second = sim
        .start_batch(10, 1.0)
        .expect("A's message is delivered again");
    let answer = sim.run_to_end(&second);
    assert!(
        answer.report.response.batch_item_failures.is_empty(),
        "the second delivery has nothing to do: {:?}",
        answer.report.outcomes
    );

    lock(&world).armed.push((Op::SourceHead, KEY.into()));
    sim.run_to_end(&first);
    drain(&mut sim);
    let w = lock(&world);
    let trace: Vec<String> = w
        .trace
        .iter()
        .map(|t| format!("t={} {} {}", t.now, t.actor, t.text))
        .collect();
    assert!(
        !w.dest.contains_key(KEY),
        "the source object is deleted and the queue drained, yet OSS holds it; trace:\n{}",
        trace.join("\n")
    );
}

/// A scripted world whose destination copies objects above 16 bytes in parts (of 100 KiB, the
/// least OSS takes): the large variants take several.
fn scripted_parts() -> Shared {
    let mut w = World::new(0, true);
    w.fixed_delay = Some(1);
    w.parts = Some(PartSettings {
        threshold: 16,
        part_size: 100 * 1024,
        in_flight: 1,
    });
    w.shared()
}

/// Whether OSS holds the source's current bytes for the key.
fn holds_source(sim: &Sim<'_>) -> bool {
    let w = lock(&sim.world);
    match (w.source.get(KEY), w.dest.get(KEY)) {
        (Some(s), Some(d)) => s.bytes == d.bytes,
        _ => false,
    }
}

/// The trace, for an assertion's message.
fn trace_of(sim: &Sim<'_>) -> String {
    let w = lock(&sim.world);
    let lines: Vec<String> = w
        .trace
        .iter()
        .map(|t| format!("t={} {} {}", t.now, t.actor, t.text))
        .collect();
    lines.join("\n")
}

/// A copy in parts whose invocation is killed after two of its three parts were checkpointed:
/// its message comes again, is handed to a recheck, and the recheck resumes the upload, keeping
/// the two parts (ListParts and the checkpoint agree on them) and uploading the third.
#[test]
fn a_copy_in_parts_killed_midway_resumes_from_its_checkpoint() {
    let world = scripted_parts();
    let svc = service(&world, true, 4, 300);
    let mut sim = Sim::new(world.clone(), &svc);
    let ev = put(
        &sim,
        KEY,
        big_bytes_of(KEY, 4),
        meta_of(0),
        "ObjectCreated:Put",
    );
    sim.queue.send(body(&[ev]), vec![KEY.into()], 0);
    let first = sim.start_batch(10, 0.0).expect("the message is visible");
    let two_parts = run_ticking(&mut sim, &first, |w| {
        w.trace
            .iter()
            .any(|t| t.op == Op::Checkpoint && t.text.contains("parts [1, 2]"))
    });
    assert!(two_parts, "the copy never checkpointed two parts");
    let i = sim.index(&first).expect("the copy is still running");
    sim.kill(i);
    drain(&mut sim);
    assert!(
        holds_source(&sim),
        "OSS does not hold the source's bytes; trace:\n{}",
        trace_of(&sim)
    );
    let r = lock(&world).resume.clone();
    assert_eq!(r.initiated, 1, "the copy started over instead of resuming");
    assert!(r.resumed >= 1 && r.parts_kept >= 2, "{r:?}");
}

/// A copy in parts that cannot finish before its invocation's deadline stops starting parts,
/// saves its checkpoint and is recorded `in_progress`; its message is sent back at once (a
/// continuation) and acknowledged, and the deliveries that follow resume the upload until it is
/// complete.
#[test]
fn a_copy_in_parts_stopped_by_the_deadline_continues_in_the_next_delivery() {
    let world = scripted_parts();
    let svc = service(&world, true, 4, 300);
    let mut sim = Sim::new(world.clone(), &svc);
    sim.deadline = Some(40);
    let ev = put(
        &sim,
        KEY,
        big_bytes_of(KEY, 4),
        meta_of(0),
        "ObjectCreated:Put",
    );
    sim.queue.send(body(&[ev]), vec![KEY.into()], 0);
    let first = sim.start_batch(10, 0.0).expect("the message is visible");
    run_ticking(&mut sim, &first, |_| false);
    let answer = sim
        .finished
        .iter()
        .find(|f| f.id == first)
        .expect("the first invocation answered before its deadline");
    let o = &answer.report.outcomes[0];
    assert_eq!(
        o.outcome,
        s3_oss_sync::outcome::OutcomeKind::InProgress,
        "{o:?}; trace:\n{}",
        trace_of(&sim)
    );
    assert!(answer.report.response.batch_item_failures.is_empty());
    assert!(
        lock(&world)
            .immediate
            .iter()
            .any(|(by, of, _)| *by == first && of == "m1"),
        "no continuation was sent"
    );
    drain_with(&mut sim, 10, true);
    assert!(
        holds_source(&sim),
        "OSS does not hold the source's bytes; trace:\n{}",
        trace_of(&sim)
    );
    let r = lock(&world).resume.clone();
    assert_eq!(r.initiated, 1, "the copy started over instead of resuming");
    assert!(r.parts_kept >= 1, "{r:?}");
}

/// Defect A (found with `SIM_FAN_OUT=1`, e.g. seeds 19, 54, 199): a fanned-out copy's range jobs
/// are sent together, so SQS often hands several to one invocation. The handler makes one job per
/// destination key: one range job is worked on, the others are recorded `superseded` and
/// acknowledged with it, and their ranges are never uploaded; the copy never completes.
#[test]
fn fan_out_range_jobs_delivered_in_one_batch_all_upload_their_ranges() {
    let world = scripted_parts();
    let svc = service_with(&world, true, 4, 300, Some((0, 100 * 1024)));
    let mut sim = Sim::new(world.clone(), &svc);
    let ev = put(
        &sim,
        KEY,
        big_bytes_of(KEY, 4),
        meta_of(0),
        "ObjectCreated:Put",
    );
    sim.queue.send(body(&[ev]), vec![KEY.into()], 0);
    let first = sim.start_batch(10, 0.0).expect("the message is visible");
    sim.run_to_end(&first);
    assert_eq!(
        lock(&world).immediate.len(),
        3,
        "three range jobs were sent"
    );
    // The three range jobs, in one batch.
    let ranges = sim
        .start_batch(10, 0.0)
        .expect("the range jobs are visible");
    sim.run_to_end(&ranges);
    drain(&mut sim);
    assert!(
        holds_source(&sim),
        "OSS does not hold the source's bytes; trace:\n{}",
        trace_of(&sim)
    );
}

/// Defect B (e.g. seeds 217, 286 with `SIM_FAN_OUT=1`): the copy's checkpoint, with its ranges,
/// is created, but a range job cannot be sent (an entry of SendMessageBatch fails); the message
/// comes again, and every later job that found the checkpoint within a grace period of its
/// writing (on the wall clock, which the simulation does not move) left the range jobs to their
/// initiator and acknowledged its message: the range never sent was never uploaded. Now the
/// next job that finds range jobs not known to be sent sends them.
#[test]
fn a_fanned_out_copy_whose_range_job_could_not_be_sent_is_completed() {
    let world = scripted_parts();
    let svc = service_with(&world, true, 4, 300, Some((0, 100 * 1024)));
    let mut sim = Sim::new(world.clone(), &svc);
    let ev = put(
        &sim,
        KEY,
        big_bytes_of(KEY, 4),
        meta_of(0),
        "ObjectCreated:Put",
    );
    sim.queue.send(body(&[ev]), vec![KEY.into()], 0);
    // The first entry of the first SendMessageBatch (the range jobs) fails.
    lock(&world).armed.push((Op::Recheck, String::new()));
    let first = sim.start_batch(10, 0.0).expect("the message is visible");
    let answer = sim.run_to_end(&first);
    assert_eq!(
        answer.report.outcomes[0].error_code.as_deref(),
        Some(s3_oss_sync::sync::copy::RECHECK_NOT_QUEUED)
    );
    drain_with(&mut sim, 1, false);
    assert!(
        holds_source(&sim),
        "OSS does not hold the source's bytes; trace:\n{}",
        trace_of(&sim)
    );
}

/// Defect C (seed 18091 with `SIM_FAN_OUT=1`): a range job carries its message's event, and the
/// job is settled by that event's marker like any job. Here S3 sends version 1's event twice: the
/// first delivery writes version 1; the duplicate's job, which began before that write landed,
/// finds version 2 (large) and fans it out; the first job then sees version 2 and leaves it to
/// the range jobs. Each range job finds the marker of its own event (version 1, written by the
/// other message) and is `skipped`: version 2 is never uploaded.
#[test]
fn a_range_job_is_not_settled_by_the_marker_its_event_left() {
    let world = scripted_parts();
    let svc = service_with(&world, true, 4, 300, Some((0, 100 * 1024)));
    let mut sim = Sim::new(world.clone(), &svc);
    let by = |id: &str, op: Op, text: &'static str| {
        let id = id.to_owned();
        move |w: &World| {
            w.trace
                .iter()
                .any(|t| t.actor == id && t.op == op && t.text.starts_with(text))
        }
    };
    let ev1 = put(&sim, KEY, bytes_of(KEY, 1), meta_of(0), "ObjectCreated:Put");
    sim.queue
        .send(body(std::slice::from_ref(&ev1)), vec![KEY.into()], 0);
    let a = sim
        .start_batch(1, 0.0)
        .expect("version 1's event is visible");
    assert!(sim.run_until(&a, by(&a, Op::SourceGet, "S3 GET →")));
    // S3's duplicate of the event, and version 2, whose event comes later.
    sim.queue.send(body(&[ev1]), vec![KEY.into()], 0);
    let ev2 = put(
        &sim,
        KEY,
        big_bytes_of(KEY, 4),
        meta_of(0),
        "ObjectCreated:Put",
    );
    let b = sim.start_batch(1, 0.0).expect("the duplicate is visible");
    assert!(sim.run_until(&b, by(&b, Op::DestHead, "OSS HEAD → 404")));
    assert!(sim.run_until(&a, by(&a, Op::DestUpload, "OSS PUT commits")));
    sim.run_to_end(&b);
    assert_eq!(
        lock(&world).immediate.len(),
        3,
        "the duplicate's job fanned version 2 out"
    );
    sim.run_to_end(&a);
    sim.queue.send(body(&[ev2]), vec![KEY.into()], 0);
    drain_with(&mut sim, 1, false);
    assert!(
        holds_source(&sim),
        "OSS does not hold the source's bytes; trace:\n{}",
        trace_of(&sim)
    );
}
