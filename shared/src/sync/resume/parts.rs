//! The [`ResumableCopy`] operations on parts: reading a part's range pinned to the source
//! version and uploading it, several in flight under the run's deadlines, saving progress as they
//! finish, and completing the upload once all are done.

use super::checkpoint::{etag_is_md5_of, Checkpoint, DonePart, PART_READ_ATTEMPTS, SAVE_EVERY};
use super::run::{Ended, Failure, PartError, ResumableCopy, Run, SaveTo};
use crate::checksum::{crc64, crc64_combine};
use crate::store::destination::DestinationStore;
use crate::store::source::{SourceError, SourceStore};
use crate::store::upload::{PartUpload, UploadCompletion, UploadOutcome};
use bytes::{Bytes, BytesMut};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

impl<S: SourceStore, D: DestinationStore> ResumableCopy<'_, S, D> {
    /// Reads part `number` of the pinned version and uploads it; returns it as done.
    /// Reads part `number` (pinned) and uploads it, unless `landed` is the ETag of a part OSS
    /// already holds for it and that ETag is the MD5 of the bytes read: then the part is kept as
    /// it is. Says whether the part was sent.
    async fn part(
        &self,
        cp: &Checkpoint,
        number: u32,
        landed: Option<&String>,
    ) -> Result<(DonePart, bool), PartError> {
        let (start, len) = cp.range(number);
        let _memory = self.plan.budget.acquire(len).await;
        let mut attempt = 1;
        let data = loop {
            match self.read_range(cp, start, len).await {
                Ok(d) => break d,
                Err(PartError::Source(e)) if e.is_transient() && attempt < PART_READ_ATTEMPTS => {
                    tracing::warn!(key = self.source_key, number, attempt, error = %crate::errors::error_chain(&e), "part read failed; reading it again");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let crc = crc64(&data);
        let done = |etag| DonePart {
            number,
            size: len,
            etag,
            crc64: format!("{crc:016x}"),
        };
        if let Some(etag) = landed.filter(|etag| etag_is_md5_of(etag, &data)) {
            tracing::info!(
                key = cp.dest_key,
                number,
                "part already on OSS with the source's bytes (its ETag is their MD5); kept, not sent again"
            );
            return Ok((done(etag.clone()), false));
        }
        let etag = self
            .dest
            .upload_part(PartUpload {
                key: &cp.dest_key,
                upload_id: &cp.upload_id,
                number,
                data,
                crc,
            })
            .await
            .map_err(PartError::Dest)?;
        Ok((done(etag), true))
    }

    async fn read_range(&self, cp: &Checkpoint, start: u64, len: u64) -> Result<Bytes, PartError> {
        let stream = match self
            .source
            .get_range(
                self.source_key,
                &cp.etag,
                cp.version_id.as_deref(),
                start,
                len,
            )
            .await
        {
            Ok(Some(s)) => s,
            Ok(None) | Err(SourceError::Changed { .. }) => return Err(PartError::Moved),
            Err(e) => return Err(PartError::Source(e)),
        };
        let mut stream = stream;
        let mut buf = BytesMut::with_capacity(len as usize);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                PartError::Source(SourceError::Transport {
                    op: "GetObject",
                    key: self.source_key.to_owned(),
                    source: Box::new(crate::errors::Context::new(
                        format!("reading bytes {start}-{}", start + len - 1),
                        e,
                    )),
                    transient: true,
                })
            })?;
            if (buf.len() + chunk.len()) as u64 > len {
                return Err(PartError::Source(SourceError::Transport {
                    op: "GetObject",
                    key: self.source_key.to_owned(),
                    source: format!("the range at {start} gave more than {len} bytes").into(),
                    transient: true,
                }));
            }
            buf.extend_from_slice(&chunk);
        }
        if buf.len() as u64 != len {
            return Err(PartError::Source(SourceError::Transport {
                op: "GetObject",
                key: self.source_key.to_owned(),
                source: format!("the range at {start} gave {} of {len} bytes", buf.len()).into(),
                transient: true,
            }));
        }
        Ok(buf.freeze())
    }

    /// Reads and uploads the parts `todo` into `parts`, saving to `to` at most every
    /// [`SAVE_EVERY`] and at the end, until they are done, the stop time, a failure, or the
    /// source moving.
    pub(super) async fn upload_parts(
        &self,
        target: &Checkpoint,
        todo: Vec<u32>,
        landed: &BTreeMap<u32, String>,
        parts: &mut Vec<DonePart>,
        to: &SaveTo,
    ) -> Run {
        let mut todo: VecDeque<u32> = todo.into();
        let in_flight = self.plan.parts_in_flight.max(1);
        let mut running = FuturesUnordered::new();
        let mut moved = 0u64;
        let mut slowest: Option<Duration> = None;
        let mut last_save = Instant::now();
        let mut dirty = false;
        let paced = self.plan.pace.expect(target.part_size);
        let mut failure: Option<Failure> = None;
        let mut stopped = false;
        let mut dropped = 0u32;
        let mut started = 0u32;
        loop {
            while running.len() < in_flight && failure.is_none() {
                let Some(&n) = todo.front() else { break };
                if let Some(stop) = self.stop_at {
                    let needs = slowest.max(paced).map(|d| d.mul_f64(1.25));
                    let now = Instant::now();
                    // One part is tried in every run that has time at all, whatever the pace
                    // says: a pace measured under load must not stop a copy for good.
                    if now + needs.unwrap_or_default() > stop && (started > 0 || now >= stop) {
                        stopped = true;
                        break;
                    }
                }
                started += 1;
                todo.pop_front();
                running.push(async move {
                    let began = Instant::now();
                    (self.part(target, n, landed.get(&n)).await, began.elapsed())
                });
            }
            if running.is_empty() {
                break;
            }
            let next = match self.drop_at.or(self.stop_at) {
                Some(at) => tokio::select! {
                    r = running.next() => r,
                    () = tokio::time::sleep_until(at) => None,
                },
                None => running.next().await,
            };
            let Some((result, took)) = next else {
                // The stop time: parts still running are dropped (in doubt next time).
                stopped = true;
                dropped = running.len() as u32;
                break;
            };
            match result {
                Ok((done, sent)) => {
                    moved += done.size;
                    if sent {
                        if let Some(p) = self.progress {
                            p.fetch_add(done.size, std::sync::atomic::Ordering::Relaxed);
                        }
                        self.plan.pace.observe(done.size, target.part_size, took);
                        slowest = Some(slowest.map_or(took, |s| s.max(took)));
                    }
                    parts.push(done);
                    dirty = true;
                }
                Err(PartError::Moved) => return Run::Moved,
                // The parts in flight may finish; no new one starts.
                Err(PartError::Source(e)) => failure = failure.or(Some(Failure::Source(e))),
                Err(PartError::Dest(e)) => failure = failure.or(Some(Failure::Dest(e))),
            }
            if dirty && last_save.elapsed() >= SAVE_EVERY && failure.is_none() {
                if let Err(f) = self.save(to, target, parts).await {
                    return Run::Failed(f);
                }
                (last_save, dirty) = (Instant::now(), false);
            }
        }
        drop(running);
        if dirty {
            if let Err(f) = self.save(to, target, parts).await {
                return Run::Failed(failure.unwrap_or(f));
            }
        }
        match failure {
            Some(f) => Run::Failed(f),
            None if stopped || !todo.is_empty() => Run::Stopped { moved, dropped },
            None => Run::Done(moved),
        }
    }

    /// Whether the completion may start now: before `complete_by`, and with the slowest finish
    /// this process has seen (half again) fitting before the drop time. Otherwise the run
    /// pauses with every part done, and the next delivery completes at once.
    pub(super) fn may_finish(&self) -> bool {
        let now = Instant::now();
        let fits = match (self.drop_at, self.plan.pace.expect_finish()) {
            (Some(at), Some(finish)) => now + finish.mul_f64(1.5) <= at,
            _ => true,
        };
        fits && self.complete_by.is_none_or(|by| now < by)
    }

    /// Completes the upload from `parts` (all of them), the write-ahead first; then forgets the
    /// copy's checkpoint. A completion that ends well teaches the process's [`PartPace`](crate::store::upload::PartPace) how
    /// long a finish takes.
    pub(super) async fn finish(
        &self,
        key: &str,
        target: &Checkpoint,
        parts: &mut [DonePart],
        moved: u64,
        before_complete: impl std::future::Future<Output = Result<(), String>>,
    ) -> Ended {
        parts.sort_by_key(|p| p.number);
        let whole = parts.iter().fold(0, |acc, p| {
            crc64_combine(acc, p.crc().unwrap_or_default(), p.size)
        });
        let began = Instant::now();
        if let Err(why) = before_complete.await {
            return Ended::Failed(Failure::NotQueued(why));
        }
        let etags: Vec<(u32, String)> = parts.iter().map(|p| (p.number, p.etag.clone())).collect();
        let outcome = match self
            .dest
            .complete(UploadCompletion {
                key: &target.dest_key,
                upload_id: &target.upload_id,
                parts: &etags,
                crc: whole,
            })
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                // Another job may have completed the same upload (the same bytes) first.
                match self.dest.head(&target.dest_key).await {
                    Ok(Some(h)) if h.crc64 == Some(whole) && h.size == target.size => {
                        UploadOutcome {
                            etag: h.etag,
                            crc64: whole,
                            requests: 1,
                            parts: parts.len() as u32,
                            request_id: h.request_id,
                        }
                    }
                    _ => return Ended::Failed(Failure::Dest(e)),
                }
            }
        };
        self.plan.pace.observe_finish(began.elapsed());
        if let Err(e) = self.forget(key, target).await {
            // Found again later: its upload is gone, so it is removed then.
            tracing::warn!(checkpoint = key, error = ?e, "could not remove a finished copy's checkpoint");
        }
        Ended::Complete { outcome, moved }
    }
}
