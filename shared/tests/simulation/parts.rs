//! Scripted copies in parts: killed midway and resumed from the checkpoint, stopped by the
//! deadline and continued, and fanned out to range jobs.

use super::{drain, drain_with, run_ticking, KEY};
use crate::sim::exec::{service_with, Sim};
use crate::sim::users::{big_bytes_of, body, bytes_of, meta_of, put};
use crate::sim::world::{lock, Op, PartSettings, Shared, World};
use serde_json::Value;

/// Copies in parts fanned out to range jobs of one part each (threshold, bytes per range job).
const FAN_OUT: Option<(u64, u64)> = Some((0, 100 * 1024));

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

/// Runs `scenario` on a service over a fresh [`scripted_parts`] world, fanning out as `fan_out` says.
fn with_parts(fan_out: Option<(u64, u64)>, scenario: impl FnOnce(&Shared, &mut Sim<'_>)) {
    let world = scripted_parts();
    let svc = service_with(&world, true, 4, 300, fan_out);
    let mut sim = Sim::new(world.clone(), &svc);
    scenario(&world, &mut sim);
}

/// Writes a large version of the key (several parts) to the source; its event.
fn put_big(sim: &Sim<'_>) -> Value {
    put(
        sim,
        KEY,
        big_bytes_of(KEY, 4),
        meta_of(0),
        "ObjectCreated:Put",
    )
}

/// Sends a message with the event of a large version of the key, written to the source now.
fn send_big(sim: &mut Sim<'_>) {
    let ev = put_big(sim);
    sim.queue.send(body(&[ev]), vec![KEY.into()], 0);
}

/// Whether OSS holds the source's current bytes for the key.
fn holds_source(sim: &Sim<'_>) -> bool {
    let w = lock(&sim.world);
    match (w.source.get(KEY), w.dest.get(KEY)) {
        (Some(s), Some(d)) => s.bytes == d.bytes,
        _ => false,
    }
}

/// Asserts that OSS holds the source's current bytes for the key, with the trace if not.
fn assert_holds_source(sim: &Sim<'_>) {
    assert!(
        holds_source(sim),
        "OSS does not hold the source's bytes; trace:\n{}",
        trace_of(sim)
    );
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
    with_parts(None, |world, sim| {
        send_big(sim);
        let first = sim.start_batch(10, 0.0).expect("the message is visible");
        let two_parts = run_ticking(sim, &first, |w| {
            w.trace
                .iter()
                .any(|t| t.op == Op::Checkpoint && t.text.contains("parts [1, 2]"))
        });
        assert!(two_parts, "the copy never checkpointed two parts");
        let i = sim.index(&first).expect("the copy is still running");
        sim.kill(i);
        drain(sim);
        assert_holds_source(sim);
        let r = lock(world).resume.clone();
        assert_eq!(r.initiated, 1, "the copy started over instead of resuming");
        assert!(r.resumed >= 1 && r.parts_kept >= 2, "{r:?}");
    });
}

/// A copy in parts that cannot finish before its invocation's deadline stops starting parts,
/// saves its checkpoint and is recorded `in_progress`; its message is sent back at once (a
/// continuation) and acknowledged, and the deliveries that follow resume the upload until it is
/// complete.
#[test]
fn a_copy_in_parts_stopped_by_the_deadline_continues_in_the_next_delivery() {
    with_parts(None, |world, sim| {
        sim.deadline = Some(40);
        send_big(sim);
        let first = sim.start_batch(10, 0.0).expect("the message is visible");
        run_ticking(sim, &first, |_| false);
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
            trace_of(sim)
        );
        assert!(answer.report.response.batch_item_failures.is_empty());
        assert!(
            lock(world)
                .immediate
                .iter()
                .any(|(by, of, _)| *by == first && of == "m1"),
            "no continuation was sent"
        );
        drain_with(sim, 10, true);
        assert_holds_source(sim);
        let r = lock(world).resume.clone();
        assert_eq!(r.initiated, 1, "the copy started over instead of resuming");
        assert!(r.parts_kept >= 1, "{r:?}");
    });
}

/// Defect A (found with `SIM_FAN_OUT=1`, e.g. seeds 19, 54, 199): a fanned-out copy's range jobs
/// are sent together, so SQS often hands several to one invocation. The handler makes one job per
/// destination key: one range job is worked on, the others are recorded `superseded` and
/// acknowledged with it, and their ranges are never uploaded; the copy never completes.
#[test]
fn fan_out_range_jobs_delivered_in_one_batch_all_upload_their_ranges() {
    with_parts(FAN_OUT, |world, sim| {
        send_big(sim);
        let first = sim.start_batch(10, 0.0).expect("the message is visible");
        sim.run_to_end(&first);
        assert_eq!(lock(world).immediate.len(), 3, "three range jobs were sent");
        // The three range jobs, in one batch.
        let ranges = sim
            .start_batch(10, 0.0)
            .expect("the range jobs are visible");
        sim.run_to_end(&ranges);
        drain(sim);
        assert_holds_source(sim);
    });
}

/// Defect B (e.g. seeds 217, 286 with `SIM_FAN_OUT=1`): the copy's checkpoint, with its ranges,
/// is created, but a range job cannot be sent (an entry of SendMessageBatch fails); the message
/// comes again, and every later job that found the checkpoint within a grace period of its
/// writing (on the wall clock, which the simulation does not move) left the range jobs to their
/// initiator and acknowledged its message: the range never sent was never uploaded. Now the
/// next job that finds range jobs not known to be sent sends them.
#[test]
fn a_fanned_out_copy_whose_range_job_could_not_be_sent_is_completed() {
    with_parts(FAN_OUT, |world, sim| {
        send_big(sim);
        // The first entry of the first SendMessageBatch (the range jobs) fails.
        lock(world).armed.push((Op::Recheck, String::new()));
        let first = sim.start_batch(10, 0.0).expect("the message is visible");
        let answer = sim.run_to_end(&first);
        assert_eq!(
            answer.report.outcomes[0].error_code.as_deref(),
            Some(s3_oss_sync::sync::copy::RECHECK_NOT_QUEUED)
        );
        drain_with(sim, 1, false);
        assert_holds_source(sim);
    });
}

/// Defect C (seed 18091 with `SIM_FAN_OUT=1`): a range job carries its message's event, and the
/// job is settled by that event's marker like any job. Here S3 sends version 1's event twice: the
/// first delivery writes version 1; the duplicate's job, which began before that write landed,
/// finds version 2 (large) and fans it out; the first job then sees version 2 and leaves it to
/// the range jobs. Each range job finds the marker of its own event (version 1, written by the
/// other message) and is `skipped`: version 2 is never uploaded.
#[test]
fn a_range_job_is_not_settled_by_the_marker_its_event_left() {
    with_parts(FAN_OUT, |world, sim| {
        let by = |id: &str, op: Op, text: &'static str| {
            let id = id.to_owned();
            move |w: &World| {
                w.trace
                    .iter()
                    .any(|t| t.actor == id && t.op == op && t.text.starts_with(text))
            }
        };
        let ev1 = put(sim, KEY, bytes_of(KEY, 1), meta_of(0), "ObjectCreated:Put");
        sim.queue
            .send(body(std::slice::from_ref(&ev1)), vec![KEY.into()], 0);
        let a = sim
            .start_batch(1, 0.0)
            .expect("version 1's event is visible");
        assert!(sim.run_until(&a, by(&a, Op::SourceGet, "S3 GET →")));
        // S3's duplicate of the event, and version 2, whose event comes later.
        sim.queue.send(body(&[ev1]), vec![KEY.into()], 0);
        let ev2 = put_big(sim);
        let b = sim.start_batch(1, 0.0).expect("the duplicate is visible");
        assert!(sim.run_until(&b, by(&b, Op::DestHead, "OSS HEAD → 404")));
        assert!(sim.run_until(&a, by(&a, Op::DestUpload, "OSS PUT commits")));
        sim.run_to_end(&b);
        assert_eq!(
            lock(world).immediate.len(),
            3,
            "the duplicate's job fanned version 2 out"
        );
        sim.run_to_end(&a);
        sim.queue.send(body(&[ev2]), vec![KEY.into()], 0);
        drain_with(sim, 1, false);
        assert_holds_source(sim);
    });
}
