//! How copies are made ([`CopyOptions`]) and how long a job has ([`Limits`]): the instants a
//! copy in parts stops starting parts, drops those still running, and last starts its completion.

use std::time::Duration;

/// How copies are made.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Whether deletes are synced (otherwise removal events are ignored).
    pub sync_deletes: bool,
    /// Whether tags are copied (one more source request when an object has tags).
    pub sync_tags: bool,
    /// S3 storage class → OSS storage class.
    pub storage_classes: Vec<(String, String)>,
    /// Rounds before giving up on a source that keeps changing.
    pub max_rounds: u32,
    /// Objects larger than this are copied by range jobs on several function instances
    /// ([`crate::sync::resume`]); `None` copies each object in one job.
    pub fan_out_threshold: Option<u64>,
    /// Bytes per range job when a copy fans out.
    pub fan_out_range: u64,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            sync_deletes: false,
            sync_tags: false,
            storage_classes: Vec::new(),
            max_rounds: 3,
            fan_out_threshold: None,
            fan_out_range: 1 << 30,
        }
    }
}

/// How long a job has: the invocation's cut-off, and the copy rate to expect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No work starts after this instant, and copies that could not finish by then do not start.
    pub cutoff: Option<tokio::time::Instant>,
    /// Bytes per second a copy is expected to move (what this process has seen).
    pub bytes_per_sec: f64,
}

impl Limits {
    /// No cut-off.
    pub fn none() -> Self {
        Self {
            cutoff: None,
            bytes_per_sec: 0.0,
        }
    }

    pub(super) fn left(&self) -> Option<Duration> {
        self.cutoff
            .map(|c| c.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// When a copy in parts stops starting parts and saves its checkpoint: before the cut-off by
    /// a tenth of the time left (at least 50 ms, at most 2 s), kept for that save.
    pub(super) fn stop_parts_at(&self) -> Option<tokio::time::Instant> {
        self.before_cutoff(10, Duration::from_millis(50), Duration::from_secs(2))
    }

    /// When a copy in parts drops the parts still running and saves its progress: before the
    /// cut-off by a fortieth of the time left (25 to 500 ms), kept for that one write.
    pub(super) fn drop_parts_at(&self) -> Option<tokio::time::Instant> {
        self.before_cutoff(40, Duration::from_millis(25), Duration::from_millis(500))
    }

    /// The last instant a copy in parts may start its completion: before the cut-off by a quarter
    /// of the time left (at least 200 ms, at most 30 s), kept for the completion, which OSS may
    /// take seconds over for many parts, and the source check after it.
    pub(super) fn complete_by(&self) -> Option<tokio::time::Instant> {
        self.before_cutoff(4, Duration::from_millis(200), Duration::from_secs(30))
    }

    fn before_cutoff(
        &self,
        share: u32,
        least: Duration,
        most: Duration,
    ) -> Option<tokio::time::Instant> {
        let reserve = (self.left()? / share).clamp(least, most);
        self.cutoff.map(|c| c.checked_sub(reserve).unwrap_or(c))
    }
}
