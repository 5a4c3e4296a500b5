//! What a process learns across batches: the copy rate it sees ([`Throughput`]), and the keys it
//! copied lately and whether the destination accepts its requests ([`RecentWrites`]).

use crate::outcome::OutcomeKind;
use crate::sync::copy::JobReport;
use std::sync::Mutex;
use std::time::Duration;

/// The copy rate assumed before this process has measured one: 25 MiB/s.
pub const ASSUMED_BYTES_PER_SEC: f64 = 25.0 * 1024.0 * 1024.0;

/// The copy rate this process has seen (an exponentially weighted average over copies of at least
/// 1 MiB), used to decide whether a copy can finish before an invocation's cut-off.
#[derive(Debug)]
pub struct Throughput(Mutex<f64>);

impl Default for Throughput {
    fn default() -> Self {
        Self(Mutex::new(ASSUMED_BYTES_PER_SEC))
    }
}

impl Throughput {
    /// Bytes per second expected of the next copy.
    pub fn bytes_per_sec(&self) -> f64 {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Learns from one copy.
    pub fn observe(&self, bytes: u64, took: Duration) {
        if bytes < 1 << 20 || took.is_zero() {
            return;
        }
        let rate = bytes as f64 / took.as_secs_f64();
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *r = 0.7 * *r + 0.3 * rate;
    }
}

/// What this process has learned from its own work on the destination: the keys it copied lately
/// (the last [`RecentWrites::CAPACITY`] distinct ones), and whether the destination has accepted
/// its requests since it started or last refused them for the configuration.
///
/// [`decide::reads_dest_first`] lets a small object's first delivery write without reading the
/// destination first, its write-ahead recheck sent just before the write. That is only a cost
/// rule, and a job reads the destination first after all
/// - for a key this process copied lately: S3's duplicate of an event it just copied is settled by
///   one HEAD instead of copied again;
/// - until the destination has accepted a request of this process (a fresh instance), and again
///   after it refused one for the credentials, the permissions or the bucket: the HEAD is then
///   what is refused, before any recheck is sent, so a wrong secret leaves one failed message per
///   event (not the event's and its write-ahead's).
///
/// [`decide::reads_dest_first`]: crate::sync::decide::reads_dest_first
#[derive(Debug)]
pub struct RecentWrites {
    capacity: usize,
    keys: Mutex<(
        std::collections::HashSet<String>,
        std::collections::VecDeque<String>,
    )>,
    accepted: std::sync::atomic::AtomicBool,
}

impl Default for RecentWrites {
    fn default() -> Self {
        Self::new(Self::CAPACITY)
    }
}

impl RecentWrites {
    /// Keys remembered by default (about half a MiB of keys).
    pub const CAPACITY: usize = 4096;

    /// Remembers up to `capacity` keys (0: none); the destination is not taken as accepting yet.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            keys: Mutex::default(),
            accepted: Default::default(),
        }
    }

    /// The same, with the destination taken as accepting this process's requests (a warm
    /// instance's state after its first write).
    pub fn accepting(self) -> Self {
        self.accepted
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self
    }

    /// Whether the destination accepted this process's requests since it started or last
    /// refused one for the configuration.
    pub fn destination_accepts(&self) -> bool {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Learns from a finished job: what it wrote, and what the destination said.
    pub(super) fn observe(&self, dest_key: &str, report: &JobReport) {
        use std::sync::atomic::Ordering::Relaxed;
        match report.outcome {
            OutcomeKind::Copied => {
                self.add(dest_key);
                self.accepted.store(true, Relaxed);
            }
            OutcomeKind::Skipped | OutcomeKind::Deleted | OutcomeKind::InProgress => {
                self.accepted.store(true, Relaxed);
            }
            OutcomeKind::Failed
                if report
                    .error
                    .as_ref()
                    .is_some_and(|e| crate::oss::error::refuses_configuration(&e.code)) =>
            {
                self.accepted.store(false, Relaxed);
            }
            _ => {}
        }
    }

    /// Whether a first delivery for `key` reads the destination first after all.
    pub(super) fn reads_first(&self, key: &str) -> bool {
        !self.destination_accepts() || self.contains(key)
    }

    /// Whether `key` was copied lately.
    pub fn contains(&self, key: &str) -> bool {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.0.contains(key)
    }

    fn add(&self, key: &str) {
        if self.capacity == 0 {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let (set, order) = &mut *keys;
        if set.insert(key.to_owned()) {
            order.push_back(key.to_owned());
            while order.len() > self.capacity {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }
}
