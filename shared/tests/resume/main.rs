//! Resumable copies against in-memory stores, on tokio's paused clock: a copy stopped by the
//! cut-off continues where it stopped, no part is uploaded twice, a source that changes makes the
//! copy start over on the new version with the old upload aborted, and nothing is left open.

use bytes::Bytes;
use s3_oss_sync::budget::MemoryBudget;
use s3_oss_sync::store::source::SourceMetadata;
use s3_oss_sync::store::upload::PartPlan;
use s3_oss_sync::sync::copy::{Copier, CopyOptions, Job, JobKind, Limits};
use s3_oss_sync::sync::resume::Resume;
use s3_oss_sync::testing::memory::MemoryCheckpoints;
use s3_oss_sync::testing::memory::MemoryDestination;
use s3_oss_sync::testing::memory::MemorySource;
use std::time::Duration;

mod changes;
mod cut_off;
mod fan_out;

const KIB: u64 = 1024;

const PART: u64 = 256 * KIB;

fn body(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

fn dest(delay_ms: u64) -> MemoryDestination {
    MemoryDestination::with_parts(
        PartPlan {
            threshold: PART,
            part_size: PART,
            parts_in_flight: 3,
            budget: MemoryBudget::new(64 * 1024 * KIB),
            pace: Default::default(),
        },
        Duration::from_millis(delay_ms),
    )
}

fn job(key: &str) -> Job<'_> {
    Job {
        kind: JobKind::Create,
        source_key: key,
        dest_key: key,
        etag: None,
        size: None,
        sequencer: None,
        message_id: Some("m-1"),
        answers_for: &[],
        range: None,
        first_delivery: false,
    }
}

/// What a resumable copy writes to: OSS and the checkpoints, with the copy's options.
struct Rig {
    dest: MemoryDestination,
    store: MemoryCheckpoints,
    options: CopyOptions,
}

impl Rig {
    /// OSS answering each part after `delay_ms` ([`dest`]), no checkpoints yet, and `options`.
    fn new(delay_ms: u64, options: CopyOptions) -> Self {
        Self {
            dest: dest(delay_ms),
            store: MemoryCheckpoints::default(),
            options,
        }
    }

    /// A copier from `source` into these stores, its copies in parts keeping their checkpoints.
    fn copier<'a, S>(&'a self, source: &'a S) -> Copier<'a, S, MemoryDestination> {
        Copier {
            source,
            dest: &self.dest,
            options: &self.options,
            write_ahead: None,
            resume: Some(resume(&self.store)),
        }
    }
}

/// An in-memory source holding `bytes` at `key`.
fn holding(key: &str, bytes: Bytes) -> MemorySource {
    let source = MemorySource::default();
    source.put(key, bytes, SourceMetadata::default());
    source
}

fn resume(store: &MemoryCheckpoints) -> Resume<'_> {
    Resume {
        store,
        task: "t",
        results_prefix: "results",
        source_bucket: "src",
    }
}

fn limits(ms: u64) -> Limits {
    Limits {
        cutoff: Some(tokio::time::Instant::now() + Duration::from_millis(ms)),
        bytes_per_sec: (PART * 3 * 10) as f64,
    }
}
