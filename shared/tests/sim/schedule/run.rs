//! Running one schedule: the world set up from its parameters, the scheduling loop, and the
//! checks once the users stop and the queue drains.

use super::{fail, Failure, Params, Stats, MAX_STEPS};
use crate::sim::exec::{service_with, Sim};
use crate::sim::users::Users;
use crate::sim::world::{lock, short, World};
use s3_oss_sync::outcome::{Outcome, OutcomeKind};
use s3_oss_sync::sync::handler::failed_ids;
use s3_oss_sync::sync::metadata::{metadata_fingerprint, read_marker};
use std::collections::{BTreeMap, BTreeSet};

/// Runs the schedule of `seed`; with `tracing`, the world keeps its trace, returned either way.
pub fn run(seed: u64, tracing: bool) -> (Result<Stats, Failure>, World) {
    let p = Params::of(seed);
    let mut world = World::new(seed, tracing);
    world.faults = p.faults.clone();
    world.max_delay = p.max_delay;
    world.chunk = p.chunk;
    world.big_reads = p.big_reads;
    world.parts = p.parts;
    world.hold_after_checkpoints = p.deadline.is_some();
    let world = world.shared();
    let svc = service_with(&world, p.sync_deletes, p.concurrency, p.lifetime, p.fan_out);
    let mut sim = Sim::new(world.clone(), &svc);
    sim.queue.same_count = p.same_count;
    sim.deadline = p.deadline;
    let result = drive(&mut sim, &p).and_then(|()| check(&sim, &p));
    drop(sim);
    drop(svc);
    let world = std::sync::Arc::try_unwrap(world)
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_else(|_| panic!("the world is still shared after the schedule"));
    (result, world)
}

/// The scheduling loop: until the users are done, nothing is in flight and the queue drained.
fn drive(sim: &mut Sim<'_>, p: &Params) -> Result<(), Failure> {
    let mut users = Users::new(p.keys, p.writes);
    users.big.clone_from(&p.big);
    for _ in 0..MAX_STEPS {
        let now = {
            let mut w = lock(&sim.world);
            w.now += 1;
            w.land_orphans();
            w.now
        };
        // Lambda stops an invocation at its timeout.
        while let Some(i) = sim
            .live
            .iter()
            .position(|l| now >= l.started_at + p.lifetime)
        {
            sim.kill(i);
        }
        let writing = users.left > 0;
        let can_start = sim.live.len() < p.lambdas && sim.queue.any_visible(now);
        if !writing && !can_start && sim.live.is_empty() {
            let landing = lock(&sim.world).landing.iter().map(|(at, _)| *at).min();
            let next = match (sim.queue.next_visible(), landing) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match next {
                // (Landing writes take effect at the top of the next step.)
                Some(at) => lock(&sim.world).now = at.max(now).saturating_sub(1).max(now),
                None if sim.queue.drained() => return Ok(()),
                None => return fail(None, "messages are in flight with no invocation".into()),
            }
            continue;
        }
        let busy = can_start || !sim.live.is_empty();
        let (user, pick, kill, batch) = {
            let mut w = lock(&sim.world);
            (
                writing && (!busy || w.rng.chance(p.pace)),
                w.rng.below(u64::from(can_start) + sim.live.len() as u64),
                w.rng.chance(p.kill),
                w.rng.range(1, p.batch as u64) as usize,
            )
        };
        if user {
            users.step(sim, &p.delivery);
        } else if can_start && pick == 0 {
            sim.start_batch(batch, p.redeliver);
        } else {
            let i = (pick - u64::from(can_start)) as usize;
            if kill {
                sim.kill(i);
            } else {
                sim.poll(i);
            }
        }
    }
    fail(
        None,
        format!("the queue did not drain in {MAX_STEPS} steps (a livelock, or a message that always fails)"),
    )
}

/// The checks once the queue drained.
fn check(sim: &Sim<'_>, p: &Params) -> Result<Stats, Failure> {
    let w = lock(&sim.world);
    if let Some(v) = w.violations.first() {
        return fail(None, v.clone());
    }
    let mut stats = Stats {
        schedules: 1,
        messages: sim.queue.sent,
        deliveries: sim.queue.deliveries,
        invocations: sim.finished.len() as u64,
        killed: sim.killed,
        late_writes: w.landed_late,
        resume: w.resume.clone(),
        open_uploads: w.open_uploads.len() as u64,
        checkpoints_left: w.checkpoints.len() as u64,
        with_parts: u64::from(p.parts.is_some()),
        with_deadlines: u64::from(p.deadline.is_some()),
        with_fan_out: u64::from(p.fan_out.is_some() && p.parts.is_some()),
        range_jobs: w
            .immediate
            .iter()
            .filter_map(|(_, _, range)| range.as_deref())
            .collect::<BTreeSet<_>>()
            .len() as u64,
        ..Stats::default()
    };
    let stored: BTreeMap<&str, &[u8]> = w
        .results
        .iter()
        .map(|(k, b)| (k.as_str(), b.as_ref()))
        .collect();
    let mut continuations: BTreeSet<(&str, &str)> = BTreeSet::new();
    for f in &sim.finished {
        let r = &f.report;
        let failed = failed_ids(&r.response);
        // Exactly one record per event record of every message delivered.
        let mut expected: Vec<(&str, u32, &str)> = Vec::new();
        for d in &f.delivered {
            for k in &d.keys {
                expected.push((&d.message_id, d.receive_count, k));
            }
        }
        let mut got: Vec<(&str, u32, &str)> = r
            .outcomes
            .iter()
            .map(|o| {
                (
                    o.message_id.as_str(),
                    o.receive_count,
                    o.source_key.as_deref().unwrap_or("<none>"),
                )
            })
            .collect();
        expected.sort();
        got.sort();
        if expected != got {
            let key = expected.first().map(|e| e.2);
            return fail(
                key,
                format!(
                    "{}: records {got:?}, but the event records delivered were {expected:?}",
                    f.id
                ),
            );
        }
        for o in &r.outcomes {
            *stats.outcomes.entry(o.outcome).or_default() += 1;
            if matches!(o.outcome, OutcomeKind::Invalid | OutcomeKind::Filtered) {
                return fail(
                    o.source_key.as_deref(),
                    format!(
                        "{}: a well-formed event of the task was recorded {}",
                        f.id, o.outcome
                    ),
                );
            }
            // A record that says its event comes again (a failure or deferral that is not final)
            // only for a message reported failed.
            let comes_again = matches!(
                o.outcome,
                OutcomeKind::Failed | OutcomeKind::Deferred | OutcomeKind::Invalid
            ) && !o.is_final;
            // A delivery handed over to a recheck is acknowledged (unless the records could not be
            // written): the recheck must be on the queue, sent by that invocation.
            if o.error_code.as_deref() == Some(s3_oss_sync::sync::decide::RECHECKING) {
                let of = o.recheck_of.as_deref().unwrap_or(&o.message_id);
                if !sim.queue.recheck_sent_for(of, &f.id) {
                    return fail(
                        o.source_key.as_deref(),
                        format!(
                            "{}: {}#{} was handed to a recheck that is not on the queue",
                            f.id, o.message_id, o.receive_count
                        ),
                    );
                }
                continue;
            }
            // A copy in progress whose message is acknowledged was sent back at once (a
            // continuation) by this invocation.
            if o.outcome == OutcomeKind::InProgress
                && o.error_code.is_none()
                && !failed.contains(o.message_id.as_str())
            {
                let of = o.recheck_of.as_deref().unwrap_or(&o.message_id);
                if !w.immediate.iter().any(|(by, m, _)| *by == f.id && m == of) {
                    return fail(
                        o.source_key.as_deref(),
                        format!(
                            "{}: {}#{} is in progress and acknowledged, but no continuation was sent",
                            f.id, o.message_id, o.receive_count
                        ),
                    );
                }
                continuations.insert((f.id.as_str(), o.message_id.as_str()));
            }
            if comes_again && !failed.contains(o.message_id.as_str()) {
                return fail(
                    o.source_key.as_deref(),
                    format!(
                        "{}: {}#{} is recorded {} but was acknowledged",
                        f.id, o.message_id, o.receive_count, o.outcome
                    ),
                );
            }
        }
        // Nothing is acknowledged without its records in the results store.
        match &r.results_error {
            Some(_) => {
                for d in &f.delivered {
                    if !failed.contains(d.message_id.as_str()) {
                        return fail(
                            d.keys.first().map(String::as_str),
                            format!(
                                "{}: the records were not written, yet {} was acknowledged",
                                f.id, d.message_id
                            ),
                        );
                    }
                }
            }
            None => {
                let Some(body) = stored.get(r.results_key.as_str()) else {
                    return fail(
                        None,
                        format!("{}: no results object at {}", f.id, r.results_key),
                    );
                };
                let back: Result<Vec<Outcome>, _> = body
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(serde_json::from_slice::<Outcome>)
                    .collect();
                if back.as_ref().ok() != Some(&r.outcomes) {
                    return fail(
                        None,
                        format!(
                            "{}: the results object does not hold the invocation's records",
                            f.id
                        ),
                    );
                }
            }
        }
    }
    stats.continuations = continuations.len() as u64;
    // Every key: the destination is the source's final state.
    let keys: BTreeSet<&str> = w
        .source
        .keys()
        .chain(w.dest.keys())
        .map(String::as_str)
        .collect();
    for key in keys {
        match (w.source.get(key), w.dest.get(key)) {
            (None, None) => {}
            (None, Some(_)) if !p.sync_deletes => {}
            (None, Some(d)) => {
                return fail(
                    Some(key),
                    format!(
                        "the source object is deleted, but OSS still holds {} marker {:?}",
                        short(&crate::sim::world::md5_hex(&d.bytes)),
                        d.head.metadata.user
                    ),
                );
            }
            (Some(s), None) => {
                return fail(
                    Some(key),
                    format!("the source holds {} but OSS holds nothing", short(&s.etag)),
                );
            }
            (Some(s), Some(d)) => {
                let h = &d.head;
                let user = |u: &[(String, String)]| -> Vec<(String, String)> {
                    u.iter()
                        .filter(|(k, _)| !k.starts_with(s3_oss_sync::sync::metadata::MARKER_PREFIX))
                        .cloned()
                        .collect()
                };
                let marker = read_marker(h);
                let same = d.bytes == s.bytes
                    && marker.as_ref().map(|m| (m.etag.as_str(), m.size))
                        == Some((s.etag.as_str(), s.bytes.len() as u64))
                    && marker.as_ref().and_then(|m| m.fingerprint.as_deref())
                        == Some(metadata_fingerprint(&s.meta).as_str())
                    && h.metadata.content_type == s.meta.content_type
                    && user(&h.metadata.user) == user(&s.meta.user);
                if !same {
                    return fail(
                        Some(key),
                        format!(
                            "the source holds {} rev {:?} (seq {}), OSS holds {} {:?} marker {:?}",
                            short(&s.etag),
                            s.meta.user,
                            s.sequencer,
                            short(&crate::sim::world::md5_hex(&d.bytes)),
                            h.metadata.content_type,
                            h.metadata.user
                        ),
                    );
                }
            }
        }
    }
    Ok(stats)
}
