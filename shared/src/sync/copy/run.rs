//! A job's rounds: the [`Copier`] operations that make the destination key match the source key
//! (the protocol of [`crate::sync::copy`]).

use super::copier::{dest_state, moved, written, JobRanges, Observed, PinnedBody};
use super::{Copier, JobReport, Limits, FANNED_OUT, RANGE_UPLOADED};
use crate::outcome::OutcomeKind;
use crate::store::destination::DestinationStore;
use crate::store::source::{SourceError, SourceStore};
use crate::store::upload::UploadRequest;
use crate::sync::decide::{self, Job, JobKind, Next, WhenGone};
use crate::sync::metadata::{map_metadata, metadata_fingerprint, WrittenFor};
use crate::sync::resume::{self, Ended, Failure, FanOut, RangeJob, ResumableCopy};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;

impl<S: SourceStore, D: DestinationStore> Copier<'_, S, D> {
    /// Makes the destination key match the source key, as far as the job allows and within its
    /// limits.
    pub async fn run(&self, job: &Job<'_>, limits: &Limits) -> JobReport {
        self.run_counted(job, limits, &AtomicU64::new(0)).await
    }

    /// [`Self::run`], adding to `progress` the bytes of every part of a resumable copy as it lands,
    /// so that a job stopped at the cut-off (its future dropped) still tells what it moved.
    pub async fn run_counted(
        &self,
        job: &Job<'_>,
        limits: &Limits,
        progress: &AtomicU64,
    ) -> JobReport {
        let mut r = JobReport::new();
        r.source_etag = job.etag.map(str::to_owned);
        r.size = job.size;
        if job.kind == JobKind::Remove && !self.options.sync_deletes {
            return r.done(OutcomeKind::Ignored, "delete sync is off".to_owned());
        }
        if limits.left().is_some_and(|left| !decide::may_start(left)) {
            return r.done(
                OutcomeKind::Deferred,
                "the invocation's cut-off came before the job could start".to_owned(),
            );
        }
        // A key OSS cannot hold fails here, before any request: a job that writes first would
        // otherwise leave its write-ahead recheck, and the recheck fail the same way again.
        if let Err(e) = crate::oss::limits::check_key(job.dest_key) {
            return r.oss_failed(&e);
        }
        // The first delivery of a small creation does not read the destination first
        // ([`decide::reads_dest_first`]): it reads it only if the source turns out gone or too
        // large for one PUT, where what the destination holds decides what is done.
        let mut dest_read =
            decide::reads_dest_first(job) || self.resumable(job.size.unwrap_or(0)).is_some();
        let (mut marker, mut dest_exists, mut dest_crc) = if dest_read {
            match self.head_dest(job, &mut r).await {
                Ok(h) => dest_state(h.as_ref()),
                Err(e) => return r.oss_failed(&e),
            }
        } else {
            (None, false, None)
        };
        // A range job is not its event's job: it uploads parts of a copy that another job began,
        // perhaps of a newer version than the event's (a job reads the source, not the event),
        // so the marker's verdict on the event says nothing of it. Its copy in progress does.
        let settled = job
            .range
            .is_none()
            .then(|| decide::settled_by_marker(job, marker.as_ref()))
            .flatten();
        if let Some((kind, note)) = settled {
            r.crc64 = dest_crc;
            return r.done(kind, note);
        }
        // Once this job has written, its own reads of the source are all that can see its write
        // is stale (its message may be acknowledged by another delivery meanwhile), so they are
        // retried harder.
        let mut wrote = false;
        // A range job's parts, until it takes over (below).
        let mut range = job.range;
        let (mut round, mut take_over) = (0, false);
        while take_over || round < self.options.max_rounds {
            if take_over {
                (range, round, take_over) = (None, 0, false);
                let dest_head = match self.head_dest(job, &mut r).await {
                    Ok(h) => h,
                    Err(e) => return r.oss_failed(&e),
                };
                (marker, dest_exists, dest_crc) = dest_state(dest_head.as_ref());
            }
            round += 1;
            r.rounds += 1;
            // A copy in parts reads its parts by range: its first read is a HEAD, not a GET.
            let head_first = range.is_some()
                || marker.is_some()
                || self.resumable(job.size.unwrap_or(0)).is_some();
            let observed = match self.observe(job, head_first, wrote, &mut r).await {
                Ok(o) => o,
                Err(e) => return r.source_failed(&e),
            };
            // The source gone, or larger than a write-first copy may be: what the destination
            // holds decides. After a write of its own the job knows what it may hold (a read
            // now could miss a write still landing).
            let needs_dest = match &observed {
                Observed::Gone => true,
                Observed::Present(head, _) => {
                    head.size > decide::WRITE_FIRST_MAX || self.resumable(head.size).is_some()
                }
            };
            if needs_dest && !dest_read {
                dest_read = true;
                if !wrote {
                    match self.head_dest(job, &mut r).await {
                        Ok(h) => (marker, dest_exists, dest_crc) = dest_state(h.as_ref()),
                        Err(e) => return r.oss_failed(&e),
                    }
                }
            }
            // A range job that will not upload its range (the source is gone, or too small to be
            // copied in parts, or the destination already holds it) gives up its copy; one whose
            // copy is over, replaced or discarded ends below (`RangeOver`). Either way it then
            // takes over: other jobs may have been acknowledged trusting its copy to be carried
            // on (a job that finds a fanned-out copy of the current version leaves it to its
            // range jobs), so it looks at the key afresh, from a new destination HEAD, as its
            // message's own job, and copies, deletes or skips accordingly.
            if let Some(rj) = range {
                let keeps = match &observed {
                    Observed::Gone => false,
                    Observed::Present(head, _) => {
                        let fingerprint = metadata_fingerprint(&head.metadata);
                        !decide::holds_current(marker.as_ref(), head, &fingerprint)
                            && self.resumable(head.size).is_some()
                    }
                };
                if !keeps {
                    if let Some(resume) = self.resume {
                        let given_up =
                            resume::give_up_copy(resume, self.dest, job.dest_key, &rj.upload_id);
                        if let Err(f) = given_up.await {
                            return r.resume_failed(f);
                        }
                    }
                    take_over = true;
                    continue;
                }
            }
            let (head, stream) = match observed {
                Observed::Gone => {
                    let deleted = match decide::when_gone(self.options.sync_deletes, dest_exists) {
                        WhenGone::Done((kind, note)) => return r.done(kind, note),
                        WhenGone::Confirm => false,
                        WhenGone::Delete => {
                            if let Err(why) = self.write_ahead(job).await {
                                return r.not_written(why);
                            }
                            r.requests += 1;
                            if let Err(e) = self.dest.delete(job.dest_key).await {
                                return r.oss_failed(&e);
                            }
                            (dest_exists, marker) = (false, None);
                            true
                        }
                    };
                    wrote |= deleted;
                    let now = match self.head_after_write(job, wrote, &mut r).await {
                        Ok(now) => now,
                        Err(e) => return r.source_failed(&e),
                    };
                    match decide::after_gone(job.kind, deleted, now.as_ref()) {
                        Next::AnotherRound => continue,
                        Next::Done((kind, note)) => {
                            r.crc64 = None;
                            return r.done(kind, Some(note).filter(|n| !n.is_empty()));
                        }
                    }
                }
                Observed::Present(head, stream) => (*head, stream),
            };
            r.source_etag = Some(head.etag.clone());
            r.version_id = head.version_id.clone();
            r.size = Some(head.size);
            let fingerprint = metadata_fingerprint(&head.metadata);
            if decide::holds_current(marker.as_ref(), &head, &fingerprint) {
                r.crc64 = dest_crc;
                // A copy in parts whose completion landed after its job was stopped at the
                // cut-off left its checkpoint: the copy is recorded now, and the checkpoint goes.
                if let Some((_, resume)) = self.resumable(head.size) {
                    match resume::completed_unrecorded(resume, self.dest, job.dest_key, &head, &fingerprint).await {
                        Ok(false) => {}
                        Ok(true) => {
                            return r.done(
                                OutcomeKind::Copied,
                                "the copy in parts was completed by an earlier delivery that its invocation's cut-off stopped before it could record it; confirmed now (its parts' bytes are in the earlier records)".to_owned(),
                            )
                        }
                        Err(f) => return r.resume_failed(f),
                    }
                }
                return r.done(
                    OutcomeKind::Skipped,
                    "the destination already holds the current version".to_owned(),
                );
            }
            if let Some((plan, resume)) = self.resumable(head.size) {
                drop(stream);
                let written_for = WrittenFor {
                    sequencer: job.sequencer,
                    message_id: job.message_id,
                };
                let tags = match self.tags(job, &head, &mut r).await {
                    Ok(t) => t,
                    Err(e) => return r.source_failed(&e),
                };
                let mapped = map_metadata(&head, &tags, &self.options.storage_classes, written_for);
                r.dropped_metadata = mapped.dropped;
                let ranges = self.write_ahead.map(|queue| JobRanges { queue, job });
                let fan_out = self
                    .options
                    .fan_out_threshold
                    .zip(ranges.as_ref())
                    .filter(|_| range.is_none())
                    .map(|(threshold, sender)| FanOut {
                        threshold,
                        range_bytes: self.options.fan_out_range,
                        sender,
                    });
                let copy = ResumableCopy {
                    source: self.source,
                    dest: self.dest,
                    resume,
                    plan: &plan,
                    source_key: job.source_key,
                    dest_key: job.dest_key,
                    head: &head,
                    fingerprint: &fingerprint,
                    metadata: &mapped.metadata,
                    message_id: job.message_id,
                    stop_at: limits.stop_parts_at(),
                    complete_by: limits.complete_by(),
                    drop_at: limits.drop_parts_at(),
                    fan_out,
                    range,
                    progress: Some(progress),
                };
                match copy.run(self.write_ahead(job)).await {
                    Ended::Complete { outcome, moved } => {
                        r.requests += outcome.requests;
                        r.bytes_moved += moved;
                        r.request_ids.push(outcome.request_id);
                        r.crc64 = Some(outcome.crc64);
                        (wrote, dest_exists, dest_crc) = (true, true, Some(outcome.crc64));
                        marker = Some(written(job, &head, &fingerprint));
                    }
                    Ended::Paused {
                        done,
                        parts_done,
                        parts_total,
                        moved,
                        upload_id,
                        dropped,
                    } => {
                        if moved == 0 {
                            // Nothing to continue from this run: it comes again as any deferral.
                            return r.done(
                                OutcomeKind::Deferred,
                                format!(
                                    "the invocation's cut-off came before a part could be copied ({done} of {} bytes are in upload {upload_id})",
                                    head.size
                                ),
                            );
                        }
                        r.bytes_moved += moved;
                        return r.in_progress(
                            done,
                            head.size,
                            (parts_done, parts_total),
                            &upload_id,
                            dropped,
                        );
                    }
                    Ended::StartOver => continue,
                    Ended::FannedOut {
                        ranges,
                        sent,
                        upload_id,
                    } => {
                        let mut r = r.done(
                            OutcomeKind::InProgress,
                            format!(
                                "copy split into {ranges} range jobs ({sent} sent now) uploading into upload {upload_id}; the one that finishes last completes the object"
                            ),
                        );
                        r.code = Some(FANNED_OUT);
                        return r;
                    }
                    Ended::RangeUploaded { moved } => {
                        r.bytes_moved += moved;
                        let range = range.map(RangeJob::attribute).unwrap_or_default();
                        let mut r = r.done(
                            OutcomeKind::InProgress,
                            format!("range {range} uploaded; the range job that finishes last completes the object"),
                        );
                        r.code = Some(RANGE_UPLOADED);
                        return r;
                    }
                    Ended::RangeOver(why) => {
                        // Its copy is over, replaced or discarded: it takes over (see above).
                        tracing::info!(key = job.dest_key, why, "a range job takes over its key");
                        take_over = true;
                        continue;
                    }
                    Ended::Failed(Failure::Dest(e)) => {
                        // The completion may have landed with its answer lost: check as a
                        // failed single upload does.
                        (wrote, dest_exists, marker) = (true, true, None);
                        match self.check_copy(job, &head, &fingerprint, &mut r).await {
                            Ok(Next::AnotherRound) => continue,
                            Ok(Next::Done(_)) | Err(_) => return r.oss_failed(&e),
                        }
                    }
                    Ended::Failed(f) => return r.resume_failed(f),
                }
                match self.check_copy(job, &head, &fingerprint, &mut r).await {
                    Ok(Next::Done((kind, note))) => {
                        return r.done(kind, Some(note).filter(|n| !n.is_empty()))
                    }
                    Ok(Next::AnotherRound) => continue,
                    Err(e) => return r.source_failed(&e),
                }
            }
            if let Some(left) = limits.left() {
                if !decide::copy_fits(head.size, limits.bytes_per_sec, left) {
                    return r.done(
                        OutcomeKind::Deferred,
                        format!(
                            "a copy of {} bytes would not finish before the invocation's cut-off ({} ms left)",
                            head.size,
                            left.as_millis()
                        ),
                    );
                }
            }
            let (head, fingerprint, stream) = match stream {
                Some(s) => (head, fingerprint, s),
                None => {
                    r.requests += 1;
                    match self.source.get(job.source_key, Some(&head.etag)).await {
                        // The GET's headers are the copy's: the metadata may have changed since
                        // the HEAD while the ETag did not.
                        Ok(Some((got, s))) => {
                            let fingerprint = metadata_fingerprint(&got.metadata);
                            (got, fingerprint, s)
                        }
                        Ok(None) | Err(SourceError::Changed { .. }) => continue,
                        Err(e) => return r.source_failed(&e),
                    }
                }
            };
            let tags = match self.tags(job, &head, &mut r).await {
                Ok(t) => t,
                Err(e) => return r.source_failed(&e),
            };
            let written_for = WrittenFor {
                sequencer: job.sequencer,
                message_id: job.message_id,
            };
            let mapped = map_metadata(&head, &tags, &self.options.storage_classes, written_for);
            r.dropped_metadata = mapped.dropped;
            let body = PinnedBody {
                source: self.source,
                key: job.source_key,
                etag: &head.etag,
                first: Mutex::new(Some(stream)),
                reopens: AtomicU32::new(0),
            };
            let req = UploadRequest {
                bucket: self.dest.bucket(),
                key: job.dest_key,
                size: head.size,
                metadata: &mapped.metadata,
                content_md5: head.md5(),
            };
            if let Err(why) = self.write_ahead(job).await {
                return r.not_written(why);
            }
            let uploaded = self.dest.upload(&req, &body).await;
            r.requests += body.reopens.load(Ordering::Relaxed);
            match uploaded {
                Ok(up) => {
                    r.requests += up.requests;
                    r.bytes_moved += head.size;
                    r.request_ids.push(up.request_id);
                    r.crc64 = Some(up.crc64);
                    dest_exists = true;
                    wrote = true;
                    dest_crc = Some(up.crc64);
                    marker = Some(written(job, &head, &fingerprint));
                }
                Err(e) => {
                    // A write may have landed with its answer lost (a reopened body means an
                    // earlier attempt sent it all; some errors come after OSS stored it). What
                    // the destination holds is unknown now. If the source moved on, that write
                    // is stale and this job (whose message another delivery may acknowledge)
                    // must repair it; otherwise the failure stands.
                    (wrote, dest_exists, marker) = (true, true, None);
                    if moved(&e) {
                        continue;
                    }
                    match self.check_copy(job, &head, &fingerprint, &mut r).await {
                        Ok(Next::AnotherRound) => continue,
                        Ok(Next::Done(_)) | Err(_) => return r.oss_failed(&e),
                    }
                }
            }
            match self.check_copy(job, &head, &fingerprint, &mut r).await {
                Ok(Next::Done((kind, note))) => {
                    return r.done(kind, Some(note).filter(|n| !n.is_empty()))
                }
                Ok(Next::AnotherRound) => continue,
                Err(e) => return r.source_failed(&e),
            }
        }
        let rounds = self.options.max_rounds;
        r.failed(
            "SourceKeepsChanging",
            format!("the source object changed during each of {rounds} copy rounds"),
            true,
        )
    }
}
