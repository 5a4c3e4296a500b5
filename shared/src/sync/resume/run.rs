//! A resumable copy: where its checkpoints are kept ([`Resume`]), how its run ends ([`Ended`],
//! [`Failure`]), and the [`ResumableCopy`] operations that start it (a new upload, a checkpoint
//! resumed, or a copy found fanned out), save its progress and run it.

use super::checkpoint::{
    checkpoint_key, landed_unrecorded, plan_resume, Checkpoint, DonePart, CHECKPOINT_VERSION,
};
use super::cleanup::{discard, forget, load};
use super::ranges::{split_ranges, RangeJob, RangeRecord};
use crate::oss;
use crate::store::checkpoints::CheckpointStore;
use crate::store::destination::DestinationStore;
use crate::store::object::ObjectMetadata;
use crate::store::source::{SourceError, SourceObject, SourceStore};
use crate::store::upload::{PartPlan, UploadOutcome};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::collections::BTreeMap;
use time::OffsetDateTime;
use tokio::time::Instant;

/// Where a job's resumable copies keep their checkpoints.
#[derive(Clone, Copy)]
pub struct Resume<'a> {
    /// The store (the results bucket).
    pub store: &'a dyn CheckpointStore,
    /// The task id.
    pub task: &'a str,
    /// The results prefix (checkpoints go beside it, see [`checkpoint_key`]).
    pub results_prefix: &'a str,
    /// The source bucket (recorded in checkpoints).
    pub source_bucket: &'a str,
}

/// How a run of a resumable copy ended.
#[derive(Debug)]
pub enum Ended {
    /// The object is complete in the destination (its checkpoint removed).
    Complete {
        /// What the completion achieved.
        outcome: UploadOutcome,
        /// Bytes uploaded by this run.
        moved: u64,
    },
    /// The stop time came first; the checkpoint holds every finished part.
    Paused {
        /// Bytes in finished parts.
        done: u64,
        /// Parts finished.
        parts_done: u32,
        /// Parts in all.
        parts_total: u32,
        /// Bytes uploaded by this run.
        moved: u64,
        /// The upload id.
        upload_id: String,
        /// Parts still in flight at the drop time, dropped: in doubt (one may land after the
        /// next run has listed the upload's parts, and then be sent twice).
        dropped: u32,
    },
    /// The source is no longer the pinned version (the upload was aborted and the checkpoint
    /// removed), or no longer the version the job holds (a copy of a newer one is in progress,
    /// left as it is): the copy must start over on the current version.
    StartOver,
    /// The copy failed; parts finished before the failure are in the checkpoint.
    Failed(Failure),
    /// The copy was split into range jobs, sent to the queue; the one that finishes last
    /// completes the object.
    FannedOut {
        /// Range jobs in all.
        ranges: usize,
        /// Range jobs sent now (the ranges not yet uploaded).
        sent: usize,
        /// The upload id.
        upload_id: String,
    },
    /// A range job uploaded its range; another range job completes (or completed) the object.
    RangeUploaded {
        /// Bytes uploaded by this run.
        moved: u64,
    },
    /// A range job has nothing to do: its copy is over or its source changed (why).
    RangeOver(String),
}

/// Why a resumable copy's run failed.
#[derive(Debug)]
pub enum Failure {
    /// The destination failed.
    Dest(oss::Error),
    /// The source failed.
    Source(SourceError),
    /// The checkpoint could not be read or written.
    Checkpoint(SourceError),
    /// The write-ahead before the completion could not be left (see [`crate::sync::copy`]).
    NotQueued(String),
}

/// One resumable copy: the job's key, the source version to copy, and its metadata.
pub struct ResumableCopy<'a, S, D> {
    /// The source bucket.
    pub source: &'a S,
    /// The destination bucket.
    pub dest: &'a D,
    /// Where checkpoints are kept.
    pub resume: Resume<'a>,
    /// How parts are made.
    pub plan: &'a PartPlan,
    /// Source key.
    pub source_key: &'a str,
    /// Destination key.
    pub dest_key: &'a str,
    /// The source's current version (from a HEAD or GET).
    pub head: &'a SourceObject,
    /// Fingerprint of its metadata.
    pub fingerprint: &'a str,
    /// The destination metadata (with the sync marker) for a new upload.
    pub metadata: &'a ObjectMetadata,
    /// The message a new upload is initiated for.
    pub message_id: Option<&'a str>,
    /// When this run must stop: no part starts that would not finish by then (by the slowest
    /// part of this run, or the process's [`PartPace`](crate::store::upload::PartPace); one part is tried in every run that has
    /// time); parts still running are dropped at `drop_at`.
    pub stop_at: Option<Instant>,
    /// The completion (and the write-ahead before it) starts only before this instant; a run
    /// whose parts are all done later pauses, and the next completes at once.
    pub complete_by: Option<Instant>,
    /// When parts still running are dropped (in doubt next time) and the progress saved: after
    /// the stop time, so a part started in time is rarely lost.
    pub drop_at: Option<Instant>,
    /// Whether (and how) a new copy of a large object is split into range jobs.
    pub fan_out: Option<FanOut<'a>>,
    /// For a range job: the parts it uploads.
    pub range: Option<&'a RangeJob>,
    /// Where the bytes of each part uploaded are added as it lands (read by the handler when it
    /// stops the job at the cut-off).
    pub progress: Option<&'a std::sync::atomic::AtomicU64>,
}

/// Sends range jobs to the task queue.
pub trait RangeSender: Sync {
    /// Sends one message per range job (each carrying the job's message and its range).
    fn send<'a>(&'a self, ranges: &'a [RangeJob]) -> BoxFuture<'a, Result<(), String>>;
}

/// How a new copy of a large object fans out to range jobs.
#[derive(Clone, Copy)]
pub struct FanOut<'a> {
    /// Objects larger than this are split.
    pub threshold: u64,
    /// Bytes per range job (whole parts; at least one).
    pub range_bytes: u64,
    /// Where range jobs go.
    pub sender: &'a dyn RangeSender,
}

/// What a part read or upload failed with.
pub(super) enum PartError {
    Moved,
    Source(SourceError),
    Dest(oss::Error),
}

fn now_text() -> String {
    crate::outcome::format_time(OffsetDateTime::now_utc())
}

impl<S: SourceStore, D: DestinationStore> ResumableCopy<'_, S, D> {
    fn key(&self) -> String {
        checkpoint_key(
            self.resume.results_prefix,
            self.resume.task,
            self.dest.bucket(),
            self.dest_key,
        )
    }

    pub(super) async fn save(
        &self,
        to: &SaveTo,
        target: &Checkpoint,
        parts: &mut [DonePart],
    ) -> Result<(), Failure> {
        parts.sort_by_key(|p| p.number);
        let (key, body) = match to {
            SaveTo::Checkpoint(key) => {
                let cp = Checkpoint {
                    updated_at: now_text(),
                    parts: parts.to_vec(),
                    ..target.clone()
                };
                (key, cp.to_bytes())
            }
            SaveTo::Range(key, first, last) => {
                let r = RangeRecord {
                    version: CHECKPOINT_VERSION,
                    upload_id: target.upload_id.clone(),
                    first: *first,
                    last: *last,
                    updated_at: now_text(),
                    parts: parts.to_vec(),
                };
                (
                    key,
                    Bytes::from(serde_json::to_vec_pretty(&r).unwrap_or_default()),
                )
            }
        };
        self.resume
            .store
            .save(key, body)
            .await
            .map_err(Failure::Checkpoint)
    }

    pub(super) async fn discard(&self, key: &str, cp: &Checkpoint) -> Result<(), Failure> {
        discard(self.resume.store, self.dest, key, cp).await
    }

    pub(super) async fn forget(&self, key: &str, cp: &Checkpoint) -> Result<(), Failure> {
        forget(self.resume.store, key, cp).await
    }

    pub(super) async fn load(&self, key: &str) -> Result<Option<Checkpoint>, Failure> {
        load(self.resume.store, key).await
    }

    /// Whether the version this job holds is still the source's, so that `cp`, a copy in
    /// progress pinned to another version, is of an older one and may be discarded. The job's
    /// HEAD may predate the copy: a newer version written since, whose job began the copy (and
    /// may have fanned it out, its message acknowledged), must not be discarded by a job holding
    /// the version it replaced, so the source is read again.
    async fn holds_latest(&self, cp: &Checkpoint) -> Result<bool, Failure> {
        if cp.dest_key != self.dest_key {
            return Ok(true);
        }
        let now = self
            .source
            .head(self.source_key)
            .await
            .map_err(Failure::Source)?;
        Ok(now.is_some_and(|now| {
            let fingerprint = crate::sync::metadata::metadata_fingerprint(&now.metadata);
            now.etag == self.head.etag
                && now.size == self.head.size
                && now.version_id == self.head.version_id
                && fingerprint == self.fingerprint
                && !cp.pinned_to(&now, &fingerprint)
        }))
    }

    /// The checkpoint to continue from and the parts still to upload, or a new upload (with its
    /// ranges, when it fans out).
    async fn start(&self, key: &str) -> Result<Start, Failure> {
        // Two jobs may start a copy of the key at once: the checkpoint is created only if absent,
        // and the job that finds one there gives up its upload and continues the other's.
        let mut tries = 0;
        loop {
            tries += 1;
            match self.start_once(key).await? {
                Some(start) => return Ok(start),
                None if tries < 3 => continue,
                None => {
                    return Err(Failure::Checkpoint(SourceError::Transport {
                        op: "PutObject",
                        key: key.to_owned(),
                        source: "another copy of this key kept starting at the same time".into(),
                        transient: true,
                    }))
                }
            }
        }
    }

    /// One try of [`Self::start`]: `None` when another job created the checkpoint first.
    async fn start_once(&self, key: &str) -> Result<Option<Start>, Failure> {
        if let Some(cp) = self.load(key).await? {
            if cp.dest_key == self.dest_key && cp.pinned_to(self.head, self.fingerprint) {
                match self.dest.list_parts(&cp.dest_key, &cp.upload_id).await {
                    Ok(Some(_)) if !cp.ranges.is_empty() => {
                        return Ok(Some(Start::FannedOut(cp, false)))
                    }
                    Ok(Some(listed)) => {
                        let (kept, todo) = plan_resume(&cp, &listed);
                        let landed = landed_unrecorded(&cp, &listed, &todo);
                        tracing::info!(
                            key = cp.dest_key,
                            upload_id = cp.upload_id,
                            kept = kept.len(),
                            todo = todo.len(),
                            to_verify = landed.len(),
                            "resuming a copy"
                        );
                        let cp = Checkpoint { parts: kept, ..cp };
                        return Ok(Some(Start::Parts(cp, todo, landed)));
                    }
                    // The upload is gone (completed by another job, aborted, swept).
                    Ok(None) => self.forget(key, &cp).await?,
                    Err(e) => return Err(Failure::Dest(e)),
                }
            } else if self.holds_latest(&cp).await? {
                self.discard(key, &cp).await?;
            } else {
                return Ok(Some(Start::Stale));
            }
        }
        let part_size =
            oss::limits::part_size_for(self.head.size, self.plan.part_size).map_err(|limit| {
                Failure::Dest(oss::Error::TooLarge {
                    key: self.dest_key.to_owned(),
                    size: self.head.size,
                    limit,
                })
            })?;
        let upload_id = self
            .dest
            .initiate(self.dest_key, self.metadata)
            .await
            .map_err(Failure::Dest)?;
        let now = now_text();
        let mut cp = Checkpoint {
            version: CHECKPOINT_VERSION,
            task: self.resume.task.to_owned(),
            source_bucket: self.resume.source_bucket.to_owned(),
            source_key: self.source_key.to_owned(),
            etag: self.head.etag.clone(),
            version_id: self.head.version_id.clone(),
            size: self.head.size,
            fingerprint: self.fingerprint.to_owned(),
            dest_bucket: self.dest.bucket().to_owned(),
            dest_key: self.dest_key.to_owned(),
            part_size,
            upload_id,
            message_id: self.message_id.map(str::to_owned),
            started_at: now.clone(),
            updated_at: now,
            parts: Vec::new(),
            ranges: Vec::new(),
        };
        if let Some(f) = self.fan_out.filter(|f| self.head.size > f.threshold) {
            let per_range = (f.range_bytes / part_size).max(1) as u32;
            cp.ranges = split_ranges(cp.parts_total(), per_range);
        }
        match self.resume.store.create(key, cp.to_bytes()).await {
            Ok(true) => {}
            created => {
                // Without its checkpoint nobody would find the upload again.
                let _ = self.dest.abort(&cp.dest_key, &cp.upload_id).await;
                return match created {
                    Ok(_) => Ok(None),
                    Err(e) => Err(Failure::Checkpoint(e)),
                };
            }
        }
        if !cp.ranges.is_empty() {
            return Ok(Some(Start::FannedOut(cp, true)));
        }
        let todo = (1..=cp.parts_total()).collect();
        Ok(Some(Start::Parts(cp, todo, BTreeMap::new())))
    }

    /// Runs the copy until it is complete, paused at the stop time, fanned out, or failed.
    /// `before_complete` runs just before the completion (the write-ahead: the completion is the
    /// only request that changes the destination key); its error ends the run with the parts
    /// kept.
    pub async fn run(
        &self,
        before_complete: impl std::future::Future<Output = Result<(), String>>,
    ) -> Ended {
        let key = self.key();
        if let Some(range) = self.range {
            return self.run_range(&key, range, before_complete).await;
        }
        let (cp, todo, landed) = match self.start(&key).await {
            Ok(Start::Parts(cp, todo, landed)) => (cp, todo, landed),
            Ok(Start::FannedOut(cp, fresh)) => return self.fan_out(&key, cp, fresh).await,
            Ok(Start::Stale) => return Ended::StartOver,
            Err(f) => return Ended::Failed(f),
        };
        let target = Checkpoint {
            parts: Vec::new(),
            ..cp.clone()
        };
        let mut parts = cp.parts;
        let to = SaveTo::Checkpoint(key.clone());
        let moved = match self
            .upload_parts(&target, todo, &landed, &mut parts, &to)
            .await
        {
            Run::Done(moved) => moved,
            Run::Stopped { moved, dropped } => return self.paused(&target, &parts, moved, dropped),
            Run::Moved => return self.moved(&key, &target).await,
            Run::Failed(f) => return Ended::Failed(f),
        };
        if !self.may_finish() {
            return self.paused(&target, &parts, moved, 0);
        }
        self.finish(&key, &target, &mut parts, moved, before_complete)
            .await
    }

    pub(super) fn paused(
        &self,
        target: &Checkpoint,
        parts: &[DonePart],
        moved: u64,
        dropped: u32,
    ) -> Ended {
        Ended::Paused {
            done: parts.iter().map(|p| p.size).sum(),
            parts_done: parts.len() as u32,
            parts_total: target.parts_total(),
            moved,
            upload_id: target.upload_id.clone(),
            dropped,
        }
    }

    async fn moved(&self, key: &str, target: &Checkpoint) -> Ended {
        match self.discard(key, target).await {
            Ok(()) => Ended::StartOver,
            Err(f) => Ended::Failed(f),
        }
    }
}

/// Where a run's progress is saved.
pub(super) enum SaveTo {
    /// The copy's checkpoint (a copy not fanned out).
    Checkpoint(String),
    /// A range job's record: key, first and last part.
    Range(String, u32, u32),
}

/// How a copy begins.
enum Start {
    /// The parts still to upload, from a new or resumed checkpoint, and those of them OSS may
    /// already hold ([`landed_unrecorded`]).
    Parts(Checkpoint, Vec<u32>, BTreeMap<u32, String>),
    /// A copy fanned out to range jobs: new (its range jobs to send), or found.
    FannedOut(Checkpoint, bool),
    /// The source is no longer the version the job holds (a copy of a newer one is in
    /// progress): the job must read it again.
    Stale,
}

/// How uploading a set of parts ended.
pub(super) enum Run {
    Done(u64),
    Stopped { moved: u64, dropped: u32 },
    Moved,
    Failed(Failure),
}
