//! The users and the operator: writes to S3 (PUT, overwrite with the same or other bytes,
//! metadata-only CopyObject, DELETE, re-create) on a few hot keys, each emitting its S3 event
//! with a per-key sequencer; and the operator's `ctl backfill`/`retry-failed` events, which carry
//! the current ETag and size but no sequencer. Events reach SQS late, reordered, sometimes twice,
//! and sometimes several records for one key share a message.

use super::exec::{Sim, SOURCE_BUCKET};
use super::world::{lock, md5_hex, short, Op, Version};
use bytes::Bytes;
use s3_oss_sync::store::source::SourceMetadata;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// The hot keys (one needs form-encoding in events).
pub const KEYS: [&str; 3] = ["hot/a.txt", "hot/b c+d.txt", "cold/e"];

/// How events travel.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Most time between a write and its event becoming visible.
    pub late: u64,
    /// Chance an event is sent twice (S3 is at-least-once).
    pub duplicate: f64,
    /// Chance an event waits to share a message with the key's next event.
    pub group: f64,
    /// Chance a user step is the operator's backfill or retry event instead.
    pub operator: f64,
}

/// The users' state: writes left, and events held to share a message.
#[derive(Debug)]
pub struct Users {
    /// The keys written.
    pub keys: Vec<&'static str>,
    /// Writes left.
    pub left: u32,
    /// The variants (1-4) written large ([`big_bytes_of`]), so they are copied in parts.
    pub big: Vec<u64>,
    held: BTreeMap<&'static str, Vec<Value>>,
}

/// Form-encodes a key as S3 writes it in notifications.
fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An event time from virtual milliseconds.
fn event_time(now: u64) -> String {
    let s = now / 1000;
    format!(
        "2026-11-30T{:02}:{:02}:{:02}.{:03}Z",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        now % 1000
    )
}

/// One S3 event record in the notification's shape.
pub fn record(
    name: &str,
    key: &str,
    now: u64,
    object: Option<(&str, u64)>,
    sequencer: Option<&str>,
) -> Value {
    let mut o = json!({"key": encode_key(key)});
    if let Some((etag, size)) = object {
        o["eTag"] = etag.into();
        o["size"] = size.into();
    }
    if let Some(s) = sequencer {
        o["sequencer"] = s.into();
    }
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-west-2",
        "eventTime": event_time(now),
        "eventName": name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "sim",
            "bucket": {"name": SOURCE_BUCKET, "arn": format!("arn:aws:s3:::{SOURCE_BUCKET}")},
            "object": o,
        }
    })
}

/// A message body of records.
pub fn body(records: &[Value]) -> String {
    json!({ "Records": records }).to_string()
}

/// The bytes of a key's variant `v` (variants repeat, so old bytes come back).
pub fn bytes_of(key: &str, v: u64) -> Bytes {
    if v == 0 {
        return Bytes::new();
    }
    Bytes::from(format!("{key}|v{v}|").repeat(v as usize))
}

/// Sizes of the large variants 1-4: one part; then, in parts of 100 KiB (OSS's least, which the
/// copy's part size is raised to), two parts, the last a few bytes; two; three (in parts of
/// 128 KiB: one, one, two, two).
pub const BIG: [usize; 4] = [
    40 * 1024 + 7,
    100 * 1024 + 13,
    128 * 1024 + 5,
    200 * 1024 + 1,
];

/// Bodies over this size have their ETag cached (their MD5 is slow in debug builds).
const CACHED: usize = 4096;

/// The large bodies made so far, by key and variant, and their ETags by address.
#[allow(clippy::type_complexity)]
fn big_cache() -> &'static Mutex<(
    BTreeMap<(String, u64), Bytes>,
    BTreeMap<(usize, usize), String>,
)> {
    static CACHE: OnceLock<
        Mutex<(
            BTreeMap<(String, u64), Bytes>,
            BTreeMap<(usize, usize), String>,
        )>,
    > = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The bytes of a key's large variant `v` (1-4): [`BIG`] bytes, made once per process (the cache
/// holds them, so their address names them).
pub fn big_bytes_of(key: &str, v: u64) -> Bytes {
    let mut cache = big_cache().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(b) = cache.0.get(&(key.to_owned(), v)) {
        return b.clone();
    }
    let size = BIG[(v.clamp(1, 4) - 1) as usize];
    let unit = format!("{key}|V{v}|");
    let mut body = unit.repeat(size / unit.len() + 1);
    body.truncate(size);
    let b = Bytes::from(body);
    cache.1.insert((b.as_ptr() as usize, b.len()), md5_hex(&b));
    cache.0.insert((key.to_owned(), v), b.clone());
    b
}

/// The ETag of a body: its MD5, looked up for the large bodies.
pub fn etag_of(b: &Bytes) -> String {
    if b.len() > CACHED {
        let cache = big_cache().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = cache.1.get(&(b.as_ptr() as usize, b.len())) {
            return e.clone();
        }
    }
    md5_hex(b)
}

/// Metadata variant `m`: content type and a user `rev`.
pub fn meta_of(m: u64) -> SourceMetadata {
    SourceMetadata {
        content_type: Some(["text/plain", "application/json"][(m % 2) as usize].into()),
        user: vec![("rev".into(), (m / 2).to_string())],
        storage_class: Some("STANDARD".into()),
        ..SourceMetadata::default()
    }
}

/// Writes a version to the source (a PUT, or a CopyObject onto itself); returns its event record.
pub fn put(sim: &Sim<'_>, key: &str, bytes: Bytes, meta: SourceMetadata, name: &str) -> Value {
    let mut w = lock(&sim.world);
    let sequencer = w.next_sequencer(key);
    let etag = etag_of(&bytes);
    let size = bytes.len() as u64;
    w.versions
        .entry(etag.clone())
        .or_insert_with(|| bytes.clone());
    w.actor = "user".into();
    w.note(Op::User, Some(key), || {
        format!(
            "user {name}: {} ({size} B) rev {:?} seq {sequencer}",
            short(&etag),
            meta.user
        )
    });
    let now = w.now;
    let rec = record(name, key, now, Some((&etag, size)), Some(&sequencer));
    w.source.insert(
        key.to_owned(),
        Version {
            bytes,
            etag,
            meta,
            sequencer,
        },
    );
    rec
}

/// Deletes a key from the source; returns its event record.
pub fn delete(sim: &Sim<'_>, key: &str) -> Value {
    let mut w = lock(&sim.world);
    let sequencer = w.next_sequencer(key);
    w.actor = "user".into();
    w.note(Op::User, Some(key), || {
        format!("user DELETE seq {sequencer}")
    });
    w.source.remove(key);
    record("ObjectRemoved:Delete", key, w.now, None, Some(&sequencer))
}

impl Users {
    /// Users who will make `writes` writes to `keys` hot keys.
    pub fn new(keys: usize, writes: u32) -> Self {
        Self {
            keys: KEYS[..keys.clamp(1, KEYS.len())].to_vec(),
            left: writes,
            big: Vec::new(),
            held: BTreeMap::new(),
        }
    }

    /// One user (or operator) step.
    pub fn step(&mut self, sim: &mut Sim<'_>, d: &Delivery) {
        let (key, roll, variant, m, exists, operator) = {
            let mut w = lock(&sim.world);
            let key = self.keys[w.rng.index(self.keys.len())];
            (
                key,
                w.rng.below(100),
                w.rng.below(5),
                w.rng.below(6),
                w.source.get(key).cloned(),
                w.rng.chance(d.operator),
            )
        };
        self.left = self.left.saturating_sub(1);
        let bytes = if self.big.contains(&variant) {
            big_bytes_of(key, variant)
        } else {
            bytes_of(key, variant)
        };
        let rec = match exists {
            Some(v) if operator => {
                let mut w = lock(&sim.world);
                let name = if w.rng.chance(0.5) {
                    "ObjectCreated:Backfill"
                } else {
                    "ObjectCreated:Retry"
                };
                w.actor = "operator".into();
                w.note(Op::User, Some(key), || {
                    format!("operator sends {name} for {}", short(&v.etag))
                });
                let size = v.bytes.len() as u64;
                record(name, key, w.now, Some((&v.etag, size)), None)
            }
            None => put(sim, key, bytes, meta_of(m), "ObjectCreated:Put"),
            Some(v) => match roll {
                0..=39 => put(sim, key, bytes, meta_of(m), "ObjectCreated:Put"),
                40..=54 => {
                    let meta = if m % 2 == 0 { v.meta } else { meta_of(m) };
                    put(sim, key, v.bytes, meta, "ObjectCreated:Put")
                }
                55..=69 => put(sim, key, v.bytes, meta_of(m), "ObjectCreated:Copy"),
                _ => delete(sim, key),
            },
        };
        let mut group = self.held.remove(key).unwrap_or_default();
        group.push(rec);
        let hold = self.left > 0 && lock(&sim.world).rng.chance(d.group);
        if hold {
            self.held.insert(key, group);
        } else {
            send(sim, d, key, group);
        }
        if self.left == 0 {
            for (key, group) in std::mem::take(&mut self.held) {
                send(sim, d, key, group);
            }
        }
    }
}

/// Sends a key's records as one message (sometimes twice), visible after a random delay.
pub fn send(sim: &mut Sim<'_>, d: &Delivery, key: &str, mut records: Vec<Value>) {
    let mut w = lock(&sim.world);
    w.rng.shuffle(&mut records);
    let text = body(&records);
    let copies = if w.rng.chance(d.duplicate) { 2 } else { 1 };
    for _ in 0..copies {
        let at = w.now + w.rng.below(d.late + 1);
        let id = sim
            .queue
            .send(text.clone(), vec![key.to_owned(); records.len()], at);
        w.actor = "s3".into();
        w.note(Op::Sqs, Some(key), || {
            format!("s3 sends {id} ({} records), visible at {at}", records.len())
        });
    }
}
