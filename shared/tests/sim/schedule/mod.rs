//! One seeded schedule: its parameters, the scheduling loop (users, the Lambda poller and the
//! live invocations take turns by chance; invocations are sometimes killed), and the checks once
//! the users stop and the queue drains.

use super::rng::Rng;
use super::users::Delivery;
use super::world::{Faults, PartSettings, ResumeCounts};
use s3_oss_sync::outcome::OutcomeKind;
use std::collections::BTreeMap;

mod run;

pub use run::run;

/// Steps after which a schedule that has not drained fails.
const MAX_STEPS: u64 = 300_000;

/// Whether the schedule of `seed`, drawn to fan out (40 % of the schedules with copies in
/// parts), does: by default a quarter of them (seeds divisible by 4; about 10 % of the schedules
/// with copies in parts, so the default run stays short), all of them with `SIM_FAN_OUT=1`, none
/// with `SIM_FAN_OUT=0`. A seed draws the same other parameters either way.
pub fn fans_out(seed: u64) -> bool {
    match std::env::var("SIM_FAN_OUT").as_deref().map(str::trim) {
        Ok("0") => false,
        Ok("1") => true,
        _ => seed.is_multiple_of(4),
    }
}

/// Virtual seconds between an invocation's deadline and Lambda stopping it.
pub const DEADLINE_EARLY: u64 = 10;

/// What a seed chooses for a schedule.
#[derive(Debug, Clone)]
pub struct Params {
    /// Hot keys (1–3).
    pub keys: usize,
    /// User writes.
    pub writes: u32,
    /// `CopyOptions.sync_deletes`.
    pub sync_deletes: bool,
    /// Jobs run at once inside an invocation.
    pub concurrency: usize,
    /// Invocations at once (Lambda scaling out).
    pub lambdas: usize,
    /// Most messages in a batch.
    pub batch: usize,
    /// Most `Pending`s before a store call takes effect.
    pub max_delay: u32,
    /// Bytes per chunk of a source body.
    pub chunk: usize,
    /// Chunks a large body is read in.
    pub big_reads: usize,
    /// Fault rates.
    pub faults: Faults,
    /// Chance, per step, that a user writes (while writes are left).
    pub pace: f64,
    /// Chance, per turn of an invocation, that it is killed instead.
    pub kill: f64,
    /// Chance a batch also gets a message already in flight elsewhere.
    pub redeliver: f64,
    /// Chance such a message comes with the same receive count as the delivery before.
    pub same_count: f64,
    /// How events travel.
    pub delivery: Delivery,
    /// Virtual seconds an invocation lives before Lambda stops it (a timeout: a kill).
    pub lifetime: u64,
    /// The deadline invocations are given, in virtual seconds after they start (copies in parts
    /// pause before it and continue in the next delivery; other jobs are cut off and come
    /// again); `None` for none.
    pub deadline: Option<u64>,
    /// How the destination takes objects in parts (`None`: every copy is one PutObject).
    pub parts: Option<PartSettings>,
    /// The variants (1-4) written large, so they are copied in several parts.
    pub big: Vec<u64>,
    /// Copies in parts above this size fan out to range jobs of this many bytes.
    pub fan_out: Option<(u64, u64)>,
}

impl Params {
    /// The parameters of a seed.
    pub fn of(seed: u64) -> Self {
        let mut r = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5);
        // A third of the schedules race: few keys and writes, several invocations at once, slow
        // store calls, and failures after the write (where defect 1 lives).
        let race = r.chance(0.35);
        let f = [0.0, 0.02, 0.05, 0.1][r.index(4)];
        let f = |r: &mut Rng, scale: f64| f * scale * (0.5 + r.below(100) as f64 / 100.0);
        let mut p = Self {
            keys: r.range(1, 3) as usize,
            writes: r.range(2, 16) as u32,
            sync_deletes: r.chance(0.75),
            concurrency: r.range(1, 4) as usize,
            lambdas: r.range(1, 4) as usize,
            batch: [1, 2, 3, 5, 10][r.index(5)],
            max_delay: r.range(0, 4) as u32,
            chunk: 8,
            big_reads: 4,
            faults: Faults {
                source_head: f(&mut r, 1.5),
                source_get: f(&mut r, 1.0),
                source_body: f(&mut r, 0.3),
                dest_head: f(&mut r, 1.0),
                dest_upload: f(&mut r, 1.0),
                dest_upload_lost: f(&mut r, 0.5),
                dest_delete: f(&mut r, 1.0),
                results: f(&mut r, 0.5),
                recheck: f(&mut r, 0.5),
                ..Faults::default()
            },
            pace: [0.1, 0.3, 0.6][r.index(3)],
            kill: [0.0, 0.0, 0.003, 0.01, 0.03][r.index(5)],
            redeliver: [0.0, 0.02, 0.1][r.index(3)],
            delivery: Delivery {
                late: [0, 5, 40, 200][r.index(4)],
                duplicate: [0.0, 0.05, 0.2][r.index(3)],
                group: [0.0, 0.1, 0.3][r.index(3)],
                operator: [0.0, 0.05, 0.15][r.index(3)],
            },
            // Invocations take 7 virtual seconds at the median, 122 at the 99th percentile and 360
            // at most (seeds 0-999): the shorter timeout stops the slowest (a timeout that stops
            // most work is a livelock, as in Lambda), the longer makes rechecks hop (over 900 s).
            lifetime: [400, 1_200][r.index(2)],
            same_count: 0.0,
            deadline: None,
            parts: None,
            big: Vec::new(),
            fan_out: None,
        };
        if race {
            p.keys = r.range(1, 2) as usize;
            p.writes = r.range(2, 4) as u32;
            p.lambdas = r.range(2, 4) as usize;
            p.batch = r.range(1, 2) as usize;
            p.max_delay = r.range(2, 6) as u32;
            p.chunk = r.range(2, 6) as usize;
            p.faults.source_head = [0.05, 0.15, 0.3][r.index(3)];
            p.faults.dest_upload_lost = [0.0, 0.05, 0.15][r.index(3)];
            p.kill = [0.0, 0.01, 0.03][r.index(3)];
            p.pace = [0.01, 0.03, 0.1][r.index(3)];
            p.delivery.late = [0, 5, 20][r.index(3)];
        }
        // Drawn last, so the other parameters of a seed stay as they were.
        p.same_count = [0.0, 0.5, 1.0][r.index(3)];
        // Resumable copies (drawn after the rest, as above): half the schedules copy objects
        // above a few bytes in parts (OSS's least part is 100 KiB, so most take one part; the
        // large variants take two or three), keeping checkpoints, with faults of their own; some
        // fan out to range jobs.
        if r.chance(0.5) {
            p.parts = Some(PartSettings {
                threshold: [16, 1024][r.index(2)],
                part_size: [100 * 1024, 128 * 1024][r.index(2)],
                in_flight: r.range(1, 3) as usize,
            });
            p.big = (1..=4).filter(|_| r.chance(0.3)).collect();
            let g = [0.0, 0.02, 0.05, 0.1][r.index(4)];
            let g = |r: &mut Rng, scale: f64| g * scale * (0.5 + r.below(100) as f64 / 100.0);
            p.faults.dest_initiate = g(&mut r, 1.0);
            p.faults.dest_part = g(&mut r, 1.0);
            p.faults.dest_list = g(&mut r, 1.0);
            p.faults.dest_complete = g(&mut r, 1.0);
            p.faults.dest_complete_lost = g(&mut r, 0.5);
            p.faults.dest_abort = g(&mut r, 1.0);
            p.faults.checkpoint = g(&mut r, 0.5);
            let fan_out = r.chance(0.4);
            let threshold = [0, 100 * 1024][r.index(2)];
            let range = [1, 2][r.index(2)] * 100 * 1024;
            if fan_out && fans_out(seed) {
                p.fan_out = Some((threshold, range));
            }
        }
        // Deadlines, in a third of the schedules: shorter lifetimes, and a deadline a little
        // before Lambda stops the invocation (as a configured timeout below the function's),
        // since every step of the model takes a virtual second or more and the handler's last
        // steps after its cut-off (the results write, the answer) need a few; copies in parts
        // pause before it and continue (in_progress, a continuation).
        if r.chance(0.3) {
            p.lifetime = [120, 240][r.index(2)];
            p.deadline = Some(p.lifetime - DEADLINE_EARLY);
            // Small bodies read in few chunks, large ones in many, so that jobs whose work cannot
            // be resumed fit well within a deadline and copies in parts often do not.
            p.chunk = p.chunk.max(8);
            p.max_delay = p.max_delay.min(3);
            p.big_reads = 16;
            if p.parts.is_some() {
                // The variants that take several parts are written large.
                p.big = vec![2, 3, 4];
            }
        }
        p
    }
}

/// What a schedule did, summed over schedules.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Schedules run.
    pub schedules: u64,
    /// Messages sent.
    pub messages: u64,
    /// Deliveries to invocations.
    pub deliveries: u64,
    /// Invocations that ended.
    pub invocations: u64,
    /// Invocations killed.
    pub killed: u64,
    /// Writes that landed after their invocation was gone.
    pub late_writes: u64,
    /// Records by outcome.
    pub outcomes: BTreeMap<OutcomeKind, u64>,
    /// What the resumable copies did.
    pub resume: ResumeCounts,
    /// Continuations sent (a copy in progress at the deadline, its message sent back at once).
    pub continuations: u64,
    /// Range jobs sent (a fanned-out copy's ranges).
    pub range_jobs: u64,
    /// Multipart uploads open once the queue drained (left to the stale-upload sweep).
    pub open_uploads: u64,
    /// Checkpoint objects left once the queue drained.
    pub checkpoints_left: u64,
    /// Schedules with copies in parts, with deadlines, with fan-out.
    pub with_parts: u64,
    /// Schedules whose invocations had deadlines.
    pub with_deadlines: u64,
    /// Schedules whose copies could fan out.
    pub with_fan_out: u64,
}

impl Stats {
    /// Adds another's counts.
    pub fn add(&mut self, o: &Stats) {
        self.schedules += o.schedules;
        self.messages += o.messages;
        self.deliveries += o.deliveries;
        self.invocations += o.invocations;
        self.killed += o.killed;
        self.late_writes += o.late_writes;
        for (k, n) in &o.outcomes {
            *self.outcomes.entry(*k).or_default() += n;
        }
        let (a, b) = (&mut self.resume, &o.resume);
        a.initiated += b.initiated;
        a.parts += b.parts;
        a.resumed += b.resumed;
        a.parts_kept += b.parts_kept;
        a.completed += b.completed;
        a.completed_fanned += b.completed_fanned;
        a.completed_late += b.completed_late;
        a.completed_lost += b.completed_lost;
        a.aborted += b.aborted;
        a.checkpoint_writes += b.checkpoint_writes;
        a.claims += b.claims;
        a.claims_refused += b.claims_refused;
        a.late_other += b.late_other;
        self.continuations += o.continuations;
        self.range_jobs += o.range_jobs;
        self.open_uploads += o.open_uploads;
        self.checkpoints_left += o.checkpoints_left;
        self.with_parts += o.with_parts;
        self.with_deadlines += o.with_deadlines;
        self.with_fan_out += o.with_fan_out;
    }
}

/// Why a schedule failed: what, and the key it concerns (for the trace).
#[derive(Debug, Clone)]
pub struct Failure {
    /// The key concerned, if one.
    pub key: Option<String>,
    /// What went wrong.
    pub what: String,
}

fn fail<T>(key: Option<&str>, what: String) -> Result<T, Failure> {
    Err(Failure {
        key: key.map(str::to_owned),
        what,
    })
}

/// Runs a seed; on failure replays it with the trace on and describes it.
pub fn run_or_describe(seed: u64) -> Result<Stats, String> {
    match run(seed, false).0 {
        Ok(s) => Ok(s),
        Err(_) => Err(describe(seed)),
    }
}

/// A failing seed's description: what failed, the parameters, and the trace of the key.
pub fn describe(seed: u64) -> String {
    let (result, world) = run(seed, true);
    let Err(f) = result else {
        return format!(
            "seed {seed} failed untraced but passed traced: the schedule is not deterministic"
        );
    };
    let mut out = format!(
        "schedule seed {seed} failed: {}\n  replay: SIM_SEED={seed} cargo test -p s3-oss-sync-shared --test simulation\n  {:?}\n",
        f.what,
        Params::of(seed)
    );
    for finding in world.fan_out_findings(f.key.as_deref()) {
        out.push_str(&format!("  fan-out: {finding}\n"));
    }
    let lines: Vec<_> = world
        .trace
        .iter()
        .filter(|t| f.key.is_none() || t.key == f.key)
        .collect();
    let skip = lines.len().saturating_sub(150);
    out.push_str(&format!(
        "  trace of {} ({} lines, the last {}):\n",
        f.key.as_deref().unwrap_or("every key"),
        lines.len(),
        lines.len() - skip
    ));
    for t in &lines[skip..] {
        out.push_str(&format!("    t={:<6} {:<8} {}\n", t.now, t.actor, t.text));
    }
    out
}
