//! The simulated world every actor shares: the S3 source with its versions and sequencers, the
//! OSS destination, the results store, the fault plan, the virtual clock and the trace.

use super::rng::Rng;
use bytes::Bytes;
use md5::{Digest, Md5};
use s3_oss_sync::event::sequencer_cmp;
use s3_oss_sync::oss::ObjectHead;
use s3_oss_sync::source::{SourceMetadata, SourceObject};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The world, shared by the stores, the writers and the executor.
pub type Shared = Arc<Mutex<World>>;

/// Locks the world (a panic elsewhere does not hide it).
pub fn lock(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(|p| p.into_inner())
}

/// The kinds of store call, for fault rates, scripted faults and the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// S3 HeadObject.
    SourceHead,
    /// S3 GetObject (the request; the body is read in chunks).
    SourceGet,
    /// One chunk of an S3 body.
    SourceBody,
    /// OSS HeadObject.
    DestHead,
    /// OSS PutObject, failing before it commits.
    DestUpload,
    /// OSS PutObject whose answer is lost after it committed.
    DestUploadLost,
    /// OSS DeleteObject.
    DestDelete,
    /// The results store's PutObject.
    Results,
    /// SQS SendMessageBatch of rechecks.
    Recheck,
    /// A user's write to S3, or the operator's event.
    User,
    /// The queue and the Lambda poller.
    Sqs,
    /// An invocation's answer.
    Answer,
}

/// One source version: what S3 holds for a key after a PUT or a CopyObject onto itself.
#[derive(Debug, Clone)]
pub struct Version {
    /// The bytes.
    pub bytes: Bytes,
    /// ETag: the MD5 of the bytes, hex.
    pub etag: String,
    /// Metadata.
    pub meta: SourceMetadata,
    /// The sequencer of the write that made it.
    pub sequencer: String,
}

impl Version {
    /// HEAD's view of it.
    pub fn head(&self) -> SourceObject {
        SourceObject {
            size: self.bytes.len() as u64,
            etag: self.etag.clone(),
            version_id: None,
            tag_count: 0,
            etag_is_md5: true,
            metadata: self.meta.clone(),
        }
    }
}

/// The MD5 of bytes, lower-case hex, as an S3 ETag.
pub fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// A short name for an ETag in traces.
pub fn short(etag: &str) -> &str {
    &etag[..etag.len().min(6)]
}

/// Fault probabilities per store call (0 = never).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// S3 HEAD answers 503.
    pub source_head: f64,
    /// S3 GET answers 503.
    pub source_get: f64,
    /// A body chunk fails (connection reset).
    pub source_body: f64,
    /// OSS HEAD answers 503.
    pub dest_head: f64,
    /// An upload fails before it commits.
    pub dest_upload: f64,
    /// An upload commits, then its answer is lost.
    pub dest_upload_lost: f64,
    /// OSS DELETE answers 503.
    pub dest_delete: f64,
    /// The results store answers 503.
    pub results: f64,
    /// SQS refuses to send rechecks.
    pub recheck: f64,
}

impl Faults {
    fn rate(&self, op: Op) -> f64 {
        match op {
            Op::SourceHead => self.source_head,
            Op::SourceGet => self.source_get,
            Op::SourceBody => self.source_body,
            Op::DestHead => self.dest_head,
            Op::DestUpload => self.dest_upload,
            Op::DestUploadLost => self.dest_upload_lost,
            Op::DestDelete => self.dest_delete,
            Op::Results => self.results,
            Op::Recheck => self.recheck,
            Op::User | Op::Sqs | Op::Answer => 0.0,
        }
    }
}

/// A destination object: OSS's head (metadata, CRC-64) and bytes.
#[derive(Debug, Clone)]
pub struct DestObject {
    /// What OSS HEAD answers.
    pub head: ObjectHead,
    /// The bytes.
    pub bytes: Bytes,
}

/// A message an invocation sent to the queue (a recheck).
#[derive(Debug, Clone)]
pub struct Sent {
    /// The body.
    pub body: String,
    /// Its message attributes.
    pub attributes: Vec<(String, String)>,
    /// The message it stands for.
    pub of: String,
    /// When it becomes visible.
    pub at: u64,
}

/// A write OSS has received whole: it takes effect even if its sender dies now.
#[derive(Debug, Clone)]
pub struct InFlight {
    /// The invocation that sent it.
    pub by: String,
    /// The destination key.
    pub key: String,
    /// The object a PUT stores (`None`: a DELETE).
    pub object: Option<DestObject>,
}

/// One line of the trace.
#[derive(Debug, Clone)]
pub struct TraceLine {
    /// Virtual time.
    pub now: u64,
    /// Who acted (`user`, `sqs`, an invocation id).
    pub actor: String,
    /// The key concerned, if one.
    pub key: Option<String>,
    /// What kind of step.
    pub op: Op,
    /// What happened.
    pub text: String,
}

/// Everything the actors share.
#[derive(Debug)]
pub struct World {
    /// The schedule's chance.
    pub rng: Rng,
    /// Fault rates.
    pub faults: Faults,
    /// Faults armed by a script: the next call of this kind for this key fails.
    pub armed: Vec<(Op, String)>,
    /// Most `Pending`s before a store call takes effect (each call draws 0..=this).
    pub max_delay: u32,
    /// Bytes per chunk of a source body (each chunk is an await point).
    pub chunk: usize,
    /// When set, every store call is `Pending` exactly this many times (scripted scenarios).
    pub fixed_delay: Option<u32>,
    /// The S3 source: the current version of each key.
    pub source: BTreeMap<String, Version>,
    /// The last sequencer number given per key (every PUT and DELETE takes the next).
    pub sequencers: BTreeMap<String, u64>,
    /// The OSS destination.
    pub dest: BTreeMap<String, DestObject>,
    /// The results store's objects, in order of writing.
    pub results: Vec<(String, Bytes)>,
    /// Rechecks sent by invocations, for the executor to put on the queue.
    pub outbox: Vec<Sent>,
    /// Messages invocations deleted themselves (handed over to rechecks).
    pub deleted: Vec<String>,
    /// Uploads committed (request ids).
    pub uploads: u64,
    /// Writes sent to OSS and not yet taken effect, by ticket: if their invocation is killed now,
    /// they still land (OSS has the whole request).
    pub in_flight: BTreeMap<u64, InFlight>,
    /// Writes of killed invocations that land later: when, and what.
    pub landing: Vec<(u64, InFlight)>,
    /// The last ticket given.
    pub tickets: u64,
    /// Writes that landed after their invocation was gone.
    pub landed_late: u64,
    /// Who is acting now.
    pub actor: String,
    /// Virtual time (milliseconds).
    pub now: u64,
    /// Whether the trace is kept (schedules run without it, and are replayed with it on failure).
    pub tracing: bool,
    /// The trace.
    pub trace: Vec<TraceLine>,
    /// Broken rules seen while running (a torn copy, a lost wake-up).
    pub violations: Vec<String>,
}

impl World {
    /// An empty world.
    pub fn new(seed: u64, tracing: bool) -> Self {
        Self {
            rng: Rng::new(seed),
            faults: Faults::default(),
            armed: Vec::new(),
            max_delay: 0,
            chunk: 8,
            fixed_delay: None,
            source: BTreeMap::new(),
            sequencers: BTreeMap::new(),
            dest: BTreeMap::new(),
            results: Vec::new(),
            outbox: Vec::new(),
            deleted: Vec::new(),
            uploads: 0,
            in_flight: BTreeMap::new(),
            landing: Vec::new(),
            tickets: 0,
            landed_late: 0,
            actor: String::new(),
            now: 0,
            tracing,
            trace: Vec::new(),
            violations: Vec::new(),
        }
    }

    /// Notes a write sent whole by the acting invocation; its ticket.
    pub fn send_write(&mut self, key: &str, object: Option<DestObject>) -> u64 {
        self.tickets += 1;
        let w = InFlight {
            by: self.actor.clone(),
            key: key.to_owned(),
            object,
        };
        self.in_flight.insert(self.tickets, w);
        self.tickets
    }

    /// The acting invocation's write, taking effect now (its sender lives).
    pub fn arrive(&mut self, ticket: u64) {
        self.in_flight.remove(&ticket);
    }

    /// Invocation `by` is killed: its writes in flight land within `within` virtual seconds.
    pub fn orphan_writes(&mut self, by: &str, within: u64) {
        let tickets: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, w)| w.by == by)
            .map(|(&t, _)| t)
            .collect();
        for t in tickets {
            if let Some(w) = self.in_flight.remove(&t) {
                let at = self.now + self.rng.below(within + 1);
                self.landing.push((at, w));
            }
        }
    }

    /// Applies the orphaned writes whose time has come.
    pub fn land_orphans(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.landing)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.landing = later;
        for (_, w) in due {
            self.landed_late += 1;
            let key = w.key.clone();
            match w.object {
                Some(o) => {
                    self.note(Op::DestUpload, Some(&key), || {
                        format!(
                            "OSS PUT commits {} marker {:?} (sent by {} before it was killed)",
                            short(&md5_hex(&o.bytes)),
                            o.head.metadata.user,
                            w.by
                        )
                    });
                    self.dest.insert(key, o);
                }
                None => {
                    self.note(Op::DestDelete, Some(&key), || {
                        format!("OSS DELETE (sent by {} before it was killed)", w.by)
                    });
                    self.dest.remove(&key);
                }
            }
        }
    }

    /// Into the shared handle.
    pub fn shared(self) -> Shared {
        Arc::new(Mutex::new(self))
    }

    /// Adds a trace line (the text is built only when tracing).
    pub fn note(&mut self, op: Op, key: Option<&str>, text: impl FnOnce() -> String) {
        if self.tracing {
            self.trace.push(TraceLine {
                now: self.now,
                actor: self.actor.clone(),
                key: key.map(str::to_owned),
                op,
                text: text(),
            });
        }
    }

    /// How many times the next store call is `Pending`.
    pub fn delay(&mut self) -> u32 {
        match self.fixed_delay {
            Some(n) => n,
            None => self.rng.below(u64::from(self.max_delay) + 1) as u32,
        }
    }

    /// Whether this call of `op` on `key` fails: a scripted fault, or chance.
    pub fn fault(&mut self, op: Op, key: &str) -> bool {
        if let Some(i) = self.armed.iter().position(|(o, k)| *o == op && k == key) {
            self.armed.remove(i);
            return true;
        }
        let p = self.faults.rate(op);
        self.rng.chance(p)
    }

    /// The next sequencer for a key: per key and increasing, upper-case hex as S3 writes it,
    /// sometimes without its trailing zeros (S3's lengths vary; they compare right-padded).
    pub fn next_sequencer(&mut self, key: &str) -> String {
        let start = 0x0055_AED6_DCD9_0000 + self.rng.below(1 << 12) * 0x100;
        let n = self.sequencers.entry(key.to_owned()).or_insert(start);
        *n += 1 + self.rng.below(3) * 0x10;
        let n = *n;
        let full = format!("{n:016X}");
        let s = if self.rng.chance(0.3) {
            full.trim_end_matches('0').to_owned()
        } else {
            full
        };
        let before = format!("{:016X}", n - 1);
        assert_eq!(
            sequencer_cmp(&s, &before),
            std::cmp::Ordering::Greater,
            "the model's sequencers must increase per key as S3's do"
        );
        s
    }
}
