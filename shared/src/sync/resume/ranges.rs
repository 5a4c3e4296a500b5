//! Fan-out: a copy split into range jobs, each with its own record beside the checkpoint; the
//! keys of those records, of the completion claim and of the note that the range jobs were sent;
//! and the [`ResumableCopy`] operations of a fanned-out copy (sending its range jobs, and a range
//! job's run).

use super::checkpoint::{landed_unrecorded, plan_parts, Checkpoint, DonePart};
use super::run::{Ended, Failure, ResumableCopy, Run, SaveTo};
use crate::store::destination::DestinationStore;
use crate::store::source::SourceStore;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::time::Instant;

/// A range job's progress: which of its parts are done (kept beside the checkpoint, one object
/// per range, so range jobs never write the same object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRecord {
    /// Format version ([`CHECKPOINT_VERSION`](super::CHECKPOINT_VERSION)).
    pub version: u32,
    /// The upload the parts are in.
    pub upload_id: String,
    /// First part number of the range.
    pub first: u32,
    /// Last part number of the range.
    pub last: u32,
    /// When it was written (RFC 3339).
    pub updated_at: String,
    /// Finished parts of the range, by number.
    pub parts: Vec<DonePart>,
}

impl RangeRecord {
    /// Whether every part of the range is done.
    pub fn complete(&self) -> bool {
        let have: std::collections::BTreeSet<u32> = self.parts.iter().map(|p| p.number).collect();
        (self.first..=self.last).all(|n| have.contains(&n))
    }
}

/// A range job: the parts `first..=last` of the fanned-out upload `upload_id`, carried by its
/// message's [`crate::sync::recheck::RANGE`] attribute as `"<first>-<last> <upload id>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeJob {
    /// First part number.
    pub first: u32,
    /// Last part number.
    pub last: u32,
    /// The upload.
    pub upload_id: String,
}

impl RangeJob {
    /// Reads the attribute; `None` when it is not one.
    pub fn parse(attribute: &str) -> Option<Self> {
        let (range, upload_id) = attribute.trim().split_once(' ')?;
        let (first, last) = range.split_once('-')?;
        let (first, last): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
        (first >= 1 && first <= last && !upload_id.trim().is_empty()).then(|| Self {
            first,
            last,
            upload_id: upload_id.trim().to_owned(),
        })
    }

    /// The attribute's value.
    pub fn attribute(&self) -> String {
        format!("{}-{} {}", self.first, self.last, self.upload_id)
    }
}

/// How a copy is split into range jobs: `parts` part numbers in ranges of `per_range` parts.
/// Pure.
pub fn split_ranges(parts: u32, per_range: u32) -> Vec<[u32; 2]> {
    let per_range = per_range.max(1);
    (0..parts.div_ceil(per_range))
        .map(|i| [i * per_range + 1, ((i + 1) * per_range).min(parts)])
        .collect()
}

/// How long a job that finds a fanned-out copy without its note of range jobs sent waits for it,
/// at most [`SENT_NOTE_WAITS`] times, before sending them itself.
pub const SENT_NOTE_WAIT: Duration = Duration::from_millis(500);

/// See [`SENT_NOTE_WAIT`]: 3 s in all, ample for the initiator's few requests between creating the
/// checkpoint and writing the note.
pub const SENT_NOTE_WAITS: u32 = 6;

/// The key of the note that a fanned-out copy's range jobs were all sent, beside its checkpoint:
/// `<checkpoint>.sent-<upload tag>.json`, written once they were. A note of its own, not a field
/// of the checkpoint: the checkpoint of a copy fanned out is only ever created (if absent) and
/// removed, so a job that finds it naming another upload (replaced, or removed by a job that
/// read it before) can rely on it never naming its upload again.
pub fn sent_key(checkpoint_key: &str, upload_id: &str) -> String {
    format!(
        "{}.sent-{}.json",
        checkpoint_key.trim_end_matches(".json"),
        upload_tag(upload_id)
    )
}

/// A short name of an upload for the keys of its range records and claim: 16 hex digits of the
/// SHA-256 of its id (OSS's ids are long; any of their characters is safe this way).
fn upload_tag(upload_id: &str) -> String {
    hex::encode(&Sha256::digest(upload_id.as_bytes())[..8])
}

/// The key of a range job's record, beside its copy's checkpoint:
/// `<checkpoint>.range-<first>-<last>-<upload tag>.json`. Named by the upload, so a job still
/// working on an upload discarded since never writes over (nor removes) a record of the upload
/// that replaced it, whose ranges may be the same.
pub fn range_record_key(checkpoint_key: &str, upload_id: &str, first: u32, last: u32) -> String {
    format!(
        "{}.range-{first}-{last}-{}.json",
        checkpoint_key.trim_end_matches(".json"),
        upload_tag(upload_id)
    )
}

/// The key of a fanned-out copy's completion claim, beside its checkpoint:
/// `<checkpoint>.claim-<upload tag>.json`, created only if absent, by the range job that
/// completes the upload. Named by the upload, so a claim left by a range job of an upload
/// discarded since (written late, or after the discard removed the claims it knew of) never
/// stands in the way of the upload that replaced it.
pub fn claim_key(checkpoint_key: &str, upload_id: &str) -> String {
    format!(
        "{}.claim-{}.json",
        checkpoint_key.trim_end_matches(".json"),
        upload_tag(upload_id)
    )
}

impl<S: SourceStore, D: DestinationStore> ResumableCopy<'_, S, D> {
    /// Sends the range jobs of a fanned-out copy whose range is not uploaded: all of them for a
    /// new one; for one found, only if they are not known to be sent (the note at [`sent_key`]
    /// is written once they are). A copy whose initiator failed or was killed before it had sent
    /// them all is so carried on by the next job that finds it, whatever its message: the
    /// initiator's own chain may end without another look (a marker may settle its event). A
    /// job that finds the copy between its creation and that write sends them again: a range
    /// job sent twice costs a duplicate upload of its parts, never a wrong object. (A duplicate
    /// event of a copy whose range jobs were sent sends nothing: they carry it.)
    pub(super) async fn fan_out(&self, key: &str, cp: Checkpoint, fresh: bool) -> Ended {
        let Some(f) = self.fan_out else {
            return Ended::Failed(Failure::NotQueued(
                "a copy split into range jobs, but this job cannot send them".into(),
            ));
        };
        let quiet = Ended::FannedOut {
            ranges: cp.ranges.len(),
            sent: 0,
            upload_id: cp.upload_id.clone(),
        };
        let sent_at = sent_key(key, &cp.upload_id);
        if !fresh {
            // The initiator notes the range jobs sent right after sending them: a job that finds
            // the copy in between (a duplicate event delivered at once to another instance)
            // waits a little for the note rather than sending every range job again, and sends
            // them itself only if the note does not come (the initiator failed or was killed).
            let mut waits = 0;
            loop {
                let note = match waits {
                    0 => self.resume.store.load(&sent_at).await,
                    _ => self.resume.store.load_after(&sent_at, SENT_NOTE_WAIT).await,
                };
                match note {
                    Ok(Some(_)) => return quiet,
                    Ok(None) => {}
                    Err(e) => return Ended::Failed(Failure::Checkpoint(e)),
                }
                let next = Instant::now() + SENT_NOTE_WAIT;
                if waits == SENT_NOTE_WAITS || self.stop_at.is_some_and(|stop| next >= stop) {
                    break;
                }
                waits += 1;
            }
        }
        let records = match self.range_records(key, &cp).await {
            Ok(r) => r,
            Err(e) => return Ended::Failed(e),
        };
        let jobs: Vec<RangeJob> = cp
            .ranges
            .iter()
            .zip(&records)
            .filter(|(_, r)| !r.as_ref().is_some_and(RangeRecord::complete))
            .map(|([first, last], _)| RangeJob {
                first: *first,
                last: *last,
                upload_id: cp.upload_id.clone(),
            })
            .collect();
        if let Err(why) = f.sender.send(&jobs).await {
            return Ended::Failed(Failure::NotQueued(format!(
                "the range jobs could not be sent: {why}"
            )));
        }
        tracing::info!(
            key = cp.dest_key,
            upload_id = cp.upload_id,
            ranges = cp.ranges.len(),
            sent = jobs.len(),
            "copy fanned out to range jobs"
        );
        let note = Bytes::from(cp.upload_id.clone());
        if let Err(e) = self.resume.store.save(&sent_at, note).await {
            // Sent all the same; the next job that finds the copy sends them again.
            tracing::warn!(checkpoint = key, error = ?e, "could not note that the range jobs were sent");
        }
        Ended::FannedOut {
            ranges: cp.ranges.len(),
            sent: jobs.len(),
            upload_id: cp.upload_id.clone(),
        }
    }

    /// Each range's record (`None` where there is none yet, or it is for another upload).
    async fn range_records(
        &self,
        key: &str,
        cp: &Checkpoint,
    ) -> Result<Vec<Option<RangeRecord>>, Failure> {
        let mut out = Vec::with_capacity(cp.ranges.len());
        for [first, last] in &cp.ranges {
            let body = self
                .resume
                .store
                .load(&range_record_key(key, &cp.upload_id, *first, *last))
                .await
                .map_err(Failure::Checkpoint)?;
            out.push(
                body.and_then(|b| serde_json::from_slice::<RangeRecord>(&b).ok())
                    .filter(|r| r.upload_id == cp.upload_id),
            );
        }
        Ok(out)
    }

    /// A range job: uploads its parts, then, if every range is uploaded, claims the completion
    /// (a conditional create: exactly one range job completes) and completes the object.
    pub(super) async fn run_range(
        &self,
        key: &str,
        range: &RangeJob,
        before_complete: impl std::future::Future<Output = Result<(), String>>,
    ) -> Ended {
        let cp = match self.load(key).await {
            Ok(Some(cp)) if cp.upload_id == range.upload_id => cp,
            Ok(_) => {
                return Ended::RangeOver(format!(
                    "upload {} is no longer this key's copy in progress (completed, or replaced by a copy of a newer version)",
                    range.upload_id
                ))
            }
            Err(f) => return Ended::Failed(f),
        };
        if !cp.pinned_to(self.head, self.fingerprint) {
            return match self.discard(key, &cp).await {
                Ok(()) => Ended::RangeOver(
                    "the source changed since the copy began; its upload was aborted, and the new version's event copies it"
                        .into(),
                ),
                Err(f) => Ended::Failed(f),
            };
        }
        let last = range.last.min(cp.parts_total());
        let target = Checkpoint {
            parts: Vec::new(),
            ..cp.clone()
        };
        let record_key = range_record_key(key, &cp.upload_id, range.first, range.last);
        let recorded = match self.resume.store.load(&record_key).await {
            Ok(body) => body
                .and_then(|b| serde_json::from_slice::<RangeRecord>(&b).ok())
                .filter(|r| r.upload_id == cp.upload_id)
                .map(|r| r.parts)
                .unwrap_or_default(),
            Err(e) => return Ended::Failed(Failure::Checkpoint(e)),
        };
        let listed = match self.dest.list_parts(&cp.dest_key, &cp.upload_id).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Ended::RangeOver(format!(
                    "upload {} no longer exists (completed or aborted)",
                    cp.upload_id
                ))
            }
            Err(e) => return Ended::Failed(Failure::Dest(e)),
        };
        let (mut parts, todo) = plan_parts(&cp, &recorded, &listed, range.first..=last);
        let landed = landed_unrecorded(&cp, &listed, &todo);
        let to = SaveTo::Range(record_key, range.first, range.last);
        let moved = match self.upload_parts(&target, todo, &landed, &mut parts, &to).await {
            Run::Done(moved) => moved,
            Run::Stopped { moved, dropped } => {
                return self.paused(&target, &parts, moved, dropped)
            }
            Run::Moved => {
                return match self.discard(key, &target).await {
                    Ok(()) => Ended::RangeOver(
                        "the source changed during the copy; its upload was aborted, and the new version's event copies it"
                            .into(),
                    ),
                    Err(f) => Ended::Failed(f),
                }
            }
            Run::Failed(f) => return Ended::Failed(f),
        };
        // The record says every part of the range is done (upload_parts saved it) before any
        // range job can see every range done.
        let records = match self.range_records(key, &cp).await {
            Ok(r) => r,
            Err(f) => return Ended::Failed(f),
        };
        if !records
            .iter()
            .all(|r| r.as_ref().is_some_and(RangeRecord::complete))
        {
            return Ended::RangeUploaded { moved };
        }
        let claim = Bytes::from(range.attribute());
        let claim_at = claim_key(key, &cp.upload_id);
        let claimed = match self.resume.store.create(&claim_at, claim.clone()).await {
            Ok(true) => true,
            // Already claimed: by this range (its earlier delivery) or by another.
            Ok(false) => match self.resume.store.load(&claim_at).await {
                Ok(Some(b)) => b == claim,
                Ok(None) => false,
                Err(e) => return Ended::Failed(Failure::Checkpoint(e)),
            },
            Err(e) => return Ended::Failed(Failure::Checkpoint(e)),
        };
        if !claimed {
            return Ended::RangeUploaded { moved };
        }
        if !self.may_finish() {
            // The claim is this range's: its next delivery completes.
            return self.paused(&target, &parts, moved, 0);
        }
        let mut all: Vec<DonePart> = records
            .into_iter()
            .flatten()
            .flat_map(|r| r.parts)
            .collect();
        all.sort_by_key(|p| p.number);
        all.dedup_by_key(|p| p.number);
        self.finish(key, &target, &mut all, moved, before_complete)
            .await
    }
}
