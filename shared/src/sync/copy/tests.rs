//! Tests of the convergent copy.

use super::*;
use crate::oss;
use crate::outcome::OutcomeKind;
use crate::store::destination::DestinationStore;
use crate::store::object::ByteStream;
use crate::store::object::ObjectHead;
use crate::store::source::{SourceError, SourceStore};
use crate::store::source::{SourceMetadata, SourceObject};
use crate::store::upload::UploadOutcome;
use crate::store::upload::{BodySource, UploadRequest};
use crate::testing::memory::{MemoryDestination, MemorySource};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU32, Ordering};

fn job<'a>(kind: JobKind, key: &'a str, etag: Option<&'a str>, size: Option<u64>) -> Job<'a> {
    Job {
        kind,
        source_key: key,
        dest_key: key,
        etag,
        size,
        sequencer: None,
        message_id: None,
        answers_for: &[],
        range: None,
        first_delivery: false,
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
    async fn tags(&self, k: &str, v: Option<&str>) -> Result<Vec<(String, String)>, SourceError> {
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
        write_ahead: None,
        resume: None,
    };
    c.run(&job(JobKind::Create, "k", None, None), &Limits::none())
        .await
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
        write_ahead: None,
        resume: None,
    };
    source.put("k", "new!", SourceMetadata::default());
    assert_eq!(
        c.run(&job(JobKind::Create, "k", None, None), &Limits::none())
            .await
            .outcome,
        OutcomeKind::Copied
    );
    let r = c
        .run(
            &job(JobKind::Create, "k", Some(&old), Some(3)),
            &Limits::none(),
        )
        .await;
    assert_eq!(r.outcome, OutcomeKind::Skipped);
    assert_eq!(
        r.requests, 2,
        "destination HEAD, then a source HEAD (no body is read)"
    );
    assert_eq!(
        source.gets.load(Ordering::SeqCst),
        1,
        "only the copy read a body"
    );
    assert_eq!(dest.uploads.load(Ordering::SeqCst), 1);
}
