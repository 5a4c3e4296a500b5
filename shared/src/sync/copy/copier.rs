//! The [`Copier`] and what a job's rounds use: the write-ahead ([`WriteAhead`]), a copy's body
//! pinned to the source ETag, a fanned-out copy's range jobs sent through the write-ahead, and
//! the [`Copier`] operations that read the source and the destination (HEADs counted in the
//! report, tags, the check after a write).

use super::{CopyOptions, JobReport, CONFIRM_ATTEMPTS};
use crate::errors::error_chain;
use crate::oss;
use crate::store::destination::DestinationStore;
use crate::store::object::ByteStream;
use crate::store::source::{SourceError, SourceObject, SourceStore};
use crate::store::upload::{BodySource, PartPlan};
use crate::sync::decide::{self, Job, Next};
use crate::sync::metadata::{metadata_fingerprint, read_marker, Marker};
use crate::sync::resume::{RangeJob, RangeSender, Resume};
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Marks a body-source error meaning "the pinned source version is gone or replaced".
#[derive(Debug, thiserror::Error)]
#[error("the source object {0} since the copy began")]
struct SourceMoved(&'static str);

pub(super) fn moved(e: &oss::Error) -> bool {
    matches!(e, oss::Error::Source { source, .. }
        if source.get_ref().is_some_and(|inner| inner.is::<SourceMoved>()))
}

/// A copy's body: the stream of the first GET, then, for retries, GETs pinned to its ETag.
pub(super) struct PinnedBody<'a, S> {
    pub(super) source: &'a S,
    pub(super) key: &'a str,
    pub(super) etag: &'a str,
    pub(super) first: Mutex<Option<ByteStream>>,
    pub(super) reopens: AtomicU32,
}

impl<S: SourceStore> BodySource for PinnedBody<'_, S> {
    fn open(&self) -> BoxFuture<'_, Result<ByteStream, oss::Error>> {
        Box::pin(async move {
            let first = self.first.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(stream) = first {
                return Ok(stream);
            }
            self.reopens.fetch_add(1, Ordering::Relaxed);
            let moved = |what| oss::Error::Source {
                key: self.key.to_owned(),
                transient: false,
                source: std::io::Error::other(SourceMoved(what)),
            };
            match self.source.get(self.key, Some(self.etag)).await {
                Ok(Some((_, stream))) => Ok(stream),
                Ok(None) => Err(moved("was deleted")),
                Err(SourceError::Changed { .. }) => Err(moved("changed")),
                Err(e) => Err(oss::Error::Source {
                    key: self.key.to_owned(),
                    transient: e.is_transient(),
                    source: std::io::Error::other(e),
                }),
            }
        })
    }
}

/// What must happen before a job first changes the destination: the handler leaves a delayed
/// recheck of the job's message on the queue (see "Why it converges"), so that whatever this
/// write does, the key is looked at again once the writer is surely gone.
pub trait WriteAhead: Sync {
    /// Makes sure the write-ahead of the job's message is done (once per message, however many
    /// of its jobs write); an error stops the job before it writes.
    fn before_write<'a>(&'a self, job: &'a Job<'_>) -> BoxFuture<'a, Result<(), String>>;

    /// Sends range jobs for the job's message ([`crate::sync::resume`], fan-out): each is the message
    /// again, carrying its range. The default cannot, and the copy is then made by one job.
    fn send_ranges<'a>(
        &'a self,
        _job: &'a Job<'_>,
        _ranges: &'a [RangeJob],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Err("range jobs cannot be sent from here".to_owned()) })
    }
}

/// A job's range jobs, sent through its handler's [`WriteAhead`].
pub(super) struct JobRanges<'a, 'j> {
    pub(super) queue: &'a dyn WriteAhead,
    pub(super) job: &'a Job<'j>,
}

impl RangeSender for JobRanges<'_, '_> {
    fn send<'a>(&'a self, ranges: &'a [RangeJob]) -> BoxFuture<'a, Result<(), String>> {
        self.queue.send_ranges(self.job, ranges)
    }
}

/// Runs jobs against a source and a destination.
pub struct Copier<'a, S, D> {
    /// The source bucket.
    pub source: &'a S,
    /// The destination bucket.
    pub dest: &'a D,
    /// How copies are made.
    pub options: &'a CopyOptions,
    /// Called before each write (a copy or a delete); `None` writes without one (tests, tools
    /// whose writes are confirmed in the same process).
    pub write_ahead: Option<&'a dyn WriteAhead>,
    /// Where copies in parts keep their checkpoints, so that a copy the invocation's cut-off
    /// stops continues in a later one ([`crate::sync::resume`]); `None` copies every object within one
    /// run.
    pub resume: Option<Resume<'a>>,
}

/// The marker of the copy this job just wrote of `head` (its metadata fingerprinted), as the
/// next round compares it with the source.
pub(super) fn written(job: &Job<'_>, head: &SourceObject, fingerprint: &str) -> Marker {
    Marker {
        etag: head.etag.clone(),
        size: head.size,
        fingerprint: Some(fingerprint.to_owned()),
        sequencer: job.sequencer.map(str::to_owned),
        message_id: job.message_id.map(str::to_owned),
    }
}

/// What a destination HEAD says: the sync marker, whether the object exists, its CRC-64.
pub(super) fn dest_state(
    head: Option<&crate::store::object::ObjectHead>,
) -> (Option<Marker>, bool, Option<u64>) {
    (
        head.and_then(read_marker),
        head.is_some(),
        head.and_then(|h| h.crc64),
    )
}

/// What a round's source read found.
pub(super) enum Observed {
    /// The source's current version, with a stream of its body when it was read by a GET.
    Present(Box<SourceObject>, Option<ByteStream>),
    /// A GET said `NoSuchKey`.
    Gone,
}

impl<S: SourceStore, D: DestinationStore> Copier<'_, S, D> {
    pub(super) async fn write_ahead(&self, job: &Job<'_>) -> Result<(), String> {
        match self.write_ahead {
            Some(w) => w.before_write(job).await,
            None => Ok(()),
        }
    }

    /// A HEAD of the destination key, counted in the report.
    pub(super) async fn head_dest(
        &self,
        job: &Job<'_>,
        r: &mut JobReport,
    ) -> Result<Option<crate::store::object::ObjectHead>, oss::Error> {
        r.requests += 1;
        let head = self.dest.head(job.dest_key).await?;
        if let Some(h) = &head {
            r.request_ids.push(h.request_id.clone());
        }
        Ok(head)
    }

    /// The plan and checkpoint place for a copy of `size` bytes, when it is made in parts,
    /// resumably.
    pub(super) fn resumable(&self, size: u64) -> Option<(PartPlan, Resume<'_>)> {
        let resume = self.resume?;
        let plan = self.dest.part_plan().filter(|p| size > p.threshold)?;
        Some((plan, resume))
    }

    /// The source version's tags, when they are copied and it has some.
    pub(super) async fn tags(
        &self,
        job: &Job<'_>,
        head: &SourceObject,
        r: &mut JobReport,
    ) -> Result<Vec<(String, String)>, SourceError> {
        if !(self.options.sync_tags && head.tag_count > 0) {
            return Ok(Vec::new());
        }
        r.requests += 1;
        self.source
            .tags(job.source_key, head.version_id.as_deref())
            .await
    }

    /// After a write of `copied` (metadata `fingerprint`), whether the source is still that
    /// version ([`decide::after_copy`]).
    pub(super) async fn check_copy(
        &self,
        job: &Job<'_>,
        copied: &SourceObject,
        fingerprint: &str,
        r: &mut JobReport,
    ) -> Result<Next, SourceError> {
        let now = self.head_after_write(job, true, r).await?;
        let fingerprint_now = now.as_ref().map(|n| metadata_fingerprint(&n.metadata));
        Ok(decide::after_copy(
            copied,
            fingerprint,
            now.as_ref(),
            fingerprint_now.as_deref(),
            self.options.sync_deletes,
        ))
    }

    /// A source HEAD; after this job wrote, transient errors are tried again up to
    /// [`CONFIRM_ATTEMPTS`] in all (the S3 client backs off within each attempt).
    pub(super) async fn head_after_write(
        &self,
        job: &Job<'_>,
        wrote: bool,
        r: &mut JobReport,
    ) -> Result<Option<SourceObject>, SourceError> {
        let attempts = if wrote { CONFIRM_ATTEMPTS } else { 1 };
        let mut attempt = 1;
        loop {
            r.requests += 1;
            match self.source.head(job.source_key).await {
                Err(e) if e.is_transient() && attempt < attempts => {
                    tracing::warn!(key = job.source_key, attempt, error = %error_chain(&e), "the check of a write failed; trying again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Reads the source for a round: a HEAD first when the destination holds a marked copy (a
    /// duplicate or a metadata check then costs no body), otherwise a GET whose body is the copy's.
    /// A HEAD that finds nothing is confirmed by a GET before anything is deleted.
    pub(super) async fn observe(
        &self,
        job: &Job<'_>,
        dest_marked: bool,
        wrote: bool,
        r: &mut JobReport,
    ) -> Result<Observed, SourceError> {
        if dest_marked {
            if let Some(head) = self.head_after_write(job, wrote, r).await? {
                return Ok(Observed::Present(Box::new(head), None));
            }
        }
        r.requests += 1;
        Ok(match self.source.get(job.source_key, None).await? {
            Some((head, stream)) => Observed::Present(Box::new(head), Some(stream)),
            None => Observed::Gone,
        })
    }
}
