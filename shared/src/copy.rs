//! The convergent copy: the job for an event is "make the destination match the source now".
//!
//! A round observes the source (a GET, whose body is the copy's body), acts (skip, copy, or
//! delete), then checks with a HEAD that the source is still what was observed. If it is not, a
//! slower, older copy may have overwritten a newer one, so another round runs (bounded). Every
//! source read of a copy is pinned to the first ETag seen (`If-Match`), so a copy is never torn
//! across two versions. The destination is changed destructively only after a GET said
//! `NoSuchKey`, never on a bare 404 from HEAD (which a missing bucket also gives).

use crate::destination::DestinationStore;
use crate::metadata::{
    copied_fingerprint, copied_version, holds_event, map_metadata, metadata_fingerprint,
};
use crate::oss::{self, BodySource, ByteStream, UploadRequest};
use crate::outcome::OutcomeKind;
use crate::source::{error_chain, SourceError, SourceStore};
use futures_util::future::BoxFuture;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

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
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            sync_deletes: false,
            sync_tags: false,
            storage_classes: Vec::new(),
            max_rounds: 3,
        }
    }
}

/// What the event asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// The object was created or overwritten.
    Create,
    /// The object was removed.
    Remove,
}

/// One key's job.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// What the event asks for.
    pub kind: JobKind,
    /// Source key.
    pub source_key: &'a str,
    /// Destination key.
    pub dest_key: &'a str,
    /// The event's ETag, if it gave one.
    pub etag: Option<&'a str>,
    /// The event's size, if it gave one.
    pub size: Option<u64>,
    /// The event's S3 sequencer, if it gave one.
    pub sequencer: Option<&'a str>,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    /// Error code (OSS, S3, or ours).
    pub code: String,
    /// What happened, with the error's causes.
    pub message: String,
    /// Whether a later attempt may succeed.
    pub transient: bool,
}

/// What a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    /// The outcome.
    pub outcome: OutcomeKind,
    /// Source ETag of the version acted on.
    pub source_etag: Option<String>,
    /// Source version id of the version acted on.
    pub version_id: Option<String>,
    /// Size of the version acted on.
    pub size: Option<u64>,
    /// Bytes written to the destination.
    pub bytes_moved: u64,
    /// CRC-64 of the destination object, when known.
    pub crc64: Option<u64>,
    /// Rounds run.
    pub rounds: u32,
    /// Requests made to the source and destination (retries inside the clients included where
    /// they are counted).
    pub requests: u32,
    /// Destination request ids.
    pub request_ids: Vec<String>,
    /// Metadata names that could not be carried.
    pub dropped_metadata: Vec<String>,
    /// A note on why this outcome (for `superseded`, `skipped` and failures).
    pub note: Option<String>,
    /// The failure, for `failed`.
    pub error: Option<JobError>,
}

impl JobReport {
    fn new() -> Self {
        Self {
            outcome: OutcomeKind::Failed,
            source_etag: None,
            version_id: None,
            size: None,
            bytes_moved: 0,
            crc64: None,
            rounds: 0,
            requests: 0,
            request_ids: Vec::new(),
            dropped_metadata: Vec::new(),
            note: None,
            error: None,
        }
    }

    fn done(mut self, outcome: OutcomeKind, note: impl Into<Option<String>>) -> Self {
        self.outcome = outcome;
        self.note = note.into();
        self
    }

    fn failed(mut self, code: &str, message: String, transient: bool) -> Self {
        self.outcome = OutcomeKind::Failed;
        self.error = Some(JobError {
            code: code.to_owned(),
            message,
            transient,
        });
        self
    }

    fn oss_failed(mut self, e: &oss::Error) -> Self {
        if let Some(id) = e.request_id() {
            self.request_ids.push(id.to_owned());
        }
        self.failed(e.code(), error_chain(e), e.is_transient())
    }

    fn source_failed(self, e: &SourceError) -> Self {
        self.failed(e.code(), e.to_string(), e.is_transient())
    }
}

/// Marks a body-source error meaning "the pinned source version is gone or replaced".
#[derive(Debug, thiserror::Error)]
#[error("the source object {0} since the copy began")]
struct SourceMoved(&'static str);

fn moved(e: &oss::Error) -> bool {
    matches!(e, oss::Error::Source { source, .. }
        if source.get_ref().is_some_and(|inner| inner.is::<SourceMoved>()))
}

/// A copy's body: the stream of the first GET, then, for retries, GETs pinned to its ETag.
struct PinnedBody<'a, S> {
    source: &'a S,
    key: &'a str,
    etag: &'a str,
    first: Mutex<Option<ByteStream>>,
    reopens: AtomicU32,
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

/// Runs jobs against a source and a destination.
pub struct Copier<'a, S, D> {
    /// The source bucket.
    pub source: &'a S,
    /// The destination bucket.
    pub dest: &'a D,
    /// How copies are made.
    pub options: &'a CopyOptions,
}

impl<S: SourceStore, D: DestinationStore> Copier<'_, S, D> {
    /// Makes the destination key match the source key, as far as the job allows.
    pub async fn run(&self, job: &Job<'_>) -> JobReport {
        let mut r = JobReport::new();
        r.source_etag = job.etag.map(str::to_owned);
        r.size = job.size;
        if job.kind == JobKind::Remove && !self.options.sync_deletes {
            return r.done(OutcomeKind::Ignored, "delete sync is off".to_owned());
        }
        r.requests += 1;
        let dest_head = match self.dest.head(job.dest_key).await {
            Ok(h) => h,
            Err(e) => return r.oss_failed(&e),
        };
        if let Some(h) = &dest_head {
            r.request_ids.push(h.request_id.clone());
        }
        // A duplicate or already-synced event: one request.
        if let (JobKind::Create, Some(etag), Some(size), Some(h)) =
            (job.kind, job.etag, job.size, &dest_head)
        {
            if holds_event(h, etag, size, job.sequencer) {
                r.crc64 = h.crc64;
                return r.done(
                    OutcomeKind::Skipped,
                    "the destination already holds this version".to_owned(),
                );
            }
        }
        let mut dest_exists = dest_head.is_some();
        // The source version the destination holds: ETag, size, metadata fingerprint.
        let mut dest_holds: Option<(String, u64, Option<String>)> =
            dest_head.as_ref().and_then(|h| {
                let (etag, size) = copied_version(h)?;
                Some((
                    etag.to_owned(),
                    size,
                    copied_fingerprint(h).map(str::to_owned),
                ))
            });
        let mut dest_crc = dest_head.as_ref().and_then(|h| h.crc64);
        for round in 1..=self.options.max_rounds {
            r.rounds = round;
            r.requests += 1;
            let got = match self.source.get(job.source_key, None).await {
                Ok(g) => g,
                Err(e) => return r.source_failed(&e),
            };
            let Some((head, stream)) = got else {
                // The source says NoSuchKey.
                if !self.options.sync_deletes {
                    return r.done(
                        OutcomeKind::Superseded,
                        "the source object no longer exists".to_owned(),
                    );
                }
                let deleted = dest_exists;
                if dest_exists {
                    r.requests += 1;
                    if let Err(e) = self.dest.delete(job.dest_key).await {
                        return r.oss_failed(&e);
                    }
                    dest_exists = false;
                    dest_holds = None;
                }
                r.requests += 1;
                match self.source.head(job.source_key).await {
                    Err(e) => return r.source_failed(&e),
                    Ok(Some(_)) => continue, // re-created meanwhile
                    Ok(None) => {}
                }
                r.crc64 = None;
                return match (job.kind, deleted) {
                    (JobKind::Remove, true) => r.done(OutcomeKind::Deleted, None),
                    (JobKind::Remove, false) => r.done(
                        OutcomeKind::Skipped,
                        "the destination object was already absent".to_owned(),
                    ),
                    (JobKind::Create, _) => r.done(
                        OutcomeKind::Superseded,
                        "the source object was deleted; the destination matches".to_owned(),
                    ),
                };
            };
            r.source_etag = Some(head.etag.clone());
            r.version_id = head.version_id.clone();
            r.size = Some(head.size);
            let fingerprint = metadata_fingerprint(&head.metadata);
            if dest_holds.as_ref().is_some_and(|(etag, size, meta)| {
                *etag == head.etag
                    && *size == head.size
                    && meta.as_deref() == Some(fingerprint.as_str())
            }) {
                drop(stream);
                r.crc64 = dest_crc;
                return r.done(
                    OutcomeKind::Skipped,
                    "the destination already holds the current version".to_owned(),
                );
            }
            let tags = if self.options.sync_tags && head.tag_count > 0 {
                r.requests += 1;
                match self
                    .source
                    .tags(job.source_key, head.version_id.as_deref())
                    .await
                {
                    Ok(t) => t,
                    Err(e) => return r.source_failed(&e),
                }
            } else {
                Vec::new()
            };
            let mapped = map_metadata(&head, &tags, &self.options.storage_classes, job.sequencer);
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
            let uploaded = self.dest.upload(&req, &body).await;
            r.requests += body.reopens.load(Ordering::Relaxed);
            match uploaded {
                Ok(up) => {
                    r.requests += up.requests;
                    r.bytes_moved += head.size;
                    r.request_ids.push(up.request_id);
                    r.crc64 = Some(up.crc64);
                    dest_exists = true;
                    dest_holds = Some((head.etag.clone(), head.size, Some(fingerprint.clone())));
                    dest_crc = Some(up.crc64);
                }
                Err(e) if moved(&e) => continue,
                Err(e) => return r.oss_failed(&e),
            }
            // Did the source change while we copied? Then what we wrote may be older than what
            // a faster copy of the newer version wrote before us.
            r.requests += 1;
            match self.source.head(job.source_key).await {
                Err(e) => return r.source_failed(&e),
                Ok(Some(now))
                    if now.etag == head.etag
                        && metadata_fingerprint(&now.metadata) == fingerprint =>
                {
                    return r.done(OutcomeKind::Copied, None);
                }
                Ok(Some(_)) => continue,
                Ok(None) if !self.options.sync_deletes => {
                    return r.done(
                        OutcomeKind::Superseded,
                        "copied, but the source object was deleted meanwhile".to_owned(),
                    );
                }
                // Confirmed by the next round's GET before anything is deleted.
                Ok(None) => continue,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{MemoryDestination, MemorySource};
    use crate::oss::{ObjectHead, UploadOutcome};
    use crate::source::{SourceMetadata, SourceObject};
    use std::sync::atomic::AtomicBool;

    fn job<'a>(kind: JobKind, key: &'a str, etag: Option<&'a str>, size: Option<u64>) -> Job<'a> {
        Job {
            kind,
            source_key: key,
            dest_key: key,
            etag,
            size,
            sequencer: None,
        }
    }

    /// A source overwritten at every HEAD: a copy can never be confirmed.
    struct Restless(MemorySource, AtomicU32);

    impl SourceStore for Restless {
        async fn head(&self, key: &str) -> Result<Option<SourceObject>, SourceError> {
            let n = self.1.fetch_add(1, Ordering::SeqCst);
            self.0
                .put(key, format!("version {n}"), SourceMetadata::default());
            self.0.head(key).await
        }
        async fn get(
            &self,
            key: &str,
            if_match: Option<&str>,
        ) -> Result<Option<(SourceObject, ByteStream)>, SourceError> {
            self.0.get(key, if_match).await
        }
        async fn tags(
            &self,
            k: &str,
            v: Option<&str>,
        ) -> Result<Vec<(String, String)>, SourceError> {
            self.0.tags(k, v).await
        }
    }

    #[tokio::test]
    async fn a_source_that_never_settles_fails_transiently_after_the_bound() {
        let source = Restless(MemorySource::default(), AtomicU32::new(0));
        source.0.put("k", "v", SourceMetadata::default());
        let dest = MemoryDestination::default();
        let r = create(&source, &dest, &CopyOptions::default()).await;
        assert_eq!(r.outcome, OutcomeKind::Failed);
        assert_eq!(r.rounds, 3);
        let e = r.error.unwrap();
        assert_eq!(e.code, "SourceKeepsChanging");
        assert!(e.transient);
    }

    /// A destination that reads the body, then (as a retried PutObject does) opens it again; the
    /// source is overwritten in between, once.
    struct Reopening<'a> {
        inner: MemoryDestination,
        source: &'a MemorySource,
        overwritten: AtomicBool,
    }

    impl DestinationStore for Reopening<'_> {
        async fn head(&self, key: &str) -> Result<Option<ObjectHead>, oss::Error> {
            self.inner.head(key).await
        }
        async fn upload(
            &self,
            req: &UploadRequest<'_>,
            body: &dyn BodySource,
        ) -> Result<UploadOutcome, oss::Error> {
            drop(body.open().await?);
            if !self.overwritten.swap(true, Ordering::SeqCst) {
                self.source
                    .put(req.key, "newer bytes", SourceMetadata::default());
            }
            self.inner.upload(req, body).await
        }
        async fn delete(&self, key: &str) -> Result<(), oss::Error> {
            self.inner.delete(key).await
        }
        fn bucket(&self) -> &str {
            "reopening"
        }
    }

    #[tokio::test]
    async fn a_retried_read_is_pinned_to_the_first_etag() {
        let source = MemorySource::default();
        source.put("k", "old", SourceMetadata::default());
        let dest = Reopening {
            inner: MemoryDestination::default(),
            source: &source,
            overwritten: AtomicBool::new(false),
        };
        let r = create(&source, &dest, &CopyOptions::default()).await;
        // Round 1's re-read found a new ETag (412) and gave up rather than mix versions; round 2
        // copied the new version whole.
        assert_eq!((r.outcome, r.rounds), (OutcomeKind::Copied, 2));
        assert_eq!(&dest.inner.get("k").unwrap().1[..], b"newer bytes");
        assert_eq!(r.bytes_moved, 11);
    }

    async fn create<S: SourceStore, D: DestinationStore>(
        source: &S,
        dest: &D,
        options: &CopyOptions,
    ) -> JobReport {
        let c = Copier {
            source,
            dest,
            options,
        };
        c.run(&job(JobKind::Create, "k", None, None)).await
    }

    #[tokio::test]
    async fn a_create_for_a_gone_source_is_superseded_and_deletes_only_when_on() {
        let source = MemorySource::default();
        source.put("k", "v", SourceMetadata::default());
        let dest = MemoryDestination::default();
        let on = CopyOptions {
            sync_deletes: true,
            ..CopyOptions::default()
        };
        let off = CopyOptions::default();
        create(&source, &dest, &off).await;
        source.delete("k");
        let r = create(&source, &dest, &off).await;
        assert_eq!(r.outcome, OutcomeKind::Superseded);
        assert!(
            dest.get("k").is_some(),
            "nothing is deleted with delete sync off"
        );
        let r = create(&source, &dest, &on).await;
        assert_eq!(r.outcome, OutcomeKind::Superseded);
        assert!(dest.get("k").is_none());
    }

    #[tokio::test]
    async fn an_event_for_an_older_version_skips_when_the_destination_is_current() {
        let source = MemorySource::default();
        let old = source.put("k", "old", SourceMetadata::default());
        let dest = MemoryDestination::default();
        let options = CopyOptions::default();
        let c = Copier {
            source: &source,
            dest: &dest,
            options: &options,
        };
        source.put("k", "new!", SourceMetadata::default());
        assert_eq!(
            c.run(&job(JobKind::Create, "k", None, None)).await.outcome,
            OutcomeKind::Copied
        );
        let r = c.run(&job(JobKind::Create, "k", Some(&old), Some(3))).await;
        assert_eq!(r.outcome, OutcomeKind::Skipped);
        assert_eq!(
            r.requests, 2,
            "destination HEAD, then a source GET whose body is not read"
        );
        assert_eq!(dest.uploads.load(Ordering::SeqCst), 1);
    }
}
