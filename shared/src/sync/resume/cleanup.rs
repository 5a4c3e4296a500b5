//! Loading a copy's checkpoint, and forgetting or discarding a copy (its checkpoint, range
//! records, claim, note and upload); [`give_up_copy`] and [`completed_unrecorded`], called by a
//! job outside any run.

use super::checkpoint::{checkpoint_key, Checkpoint};
use super::ranges::{claim_key, range_record_key, sent_key};
use super::run::{Failure, Resume};
use crate::store::checkpoints::CheckpointStore;
use crate::store::destination::DestinationStore;
use crate::store::source::SourceObject;

/// Drops a checkpoint, its range records and its upload (a stale pin, or a source that
/// moved). The checkpoint is removed only if it still names that upload.
pub(super) async fn discard<D: DestinationStore>(
    store: &dyn CheckpointStore,
    dest: &D,
    key: &str,
    cp: &Checkpoint,
) -> Result<(), Failure> {
    dest.abort(&cp.dest_key, &cp.upload_id)
        .await
        .map_err(Failure::Dest)?;
    tracing::info!(
        key = cp.dest_key,
        upload_id = cp.upload_id,
        "resumable copy discarded: the source is no longer the version it was pinned to"
    );
    forget(store, key, cp).await
}

/// Removes a finished or discarded copy's checkpoint, range records, claim and sent note (if the
/// checkpoint still names its upload: another copy may have replaced it).
pub(super) async fn forget(
    store: &dyn CheckpointStore,
    key: &str,
    cp: &Checkpoint,
) -> Result<(), Failure> {
    for [first, last] in &cp.ranges {
        store
            .remove(&range_record_key(key, &cp.upload_id, *first, *last))
            .await
            .map_err(Failure::Checkpoint)?;
    }
    if !cp.ranges.is_empty() {
        for note in [claim_key(key, &cp.upload_id), sent_key(key, &cp.upload_id)] {
            store.remove(&note).await.map_err(Failure::Checkpoint)?;
        }
    }
    let same = load(store, key)
        .await?
        .is_some_and(|c| c.upload_id == cp.upload_id);
    if same {
        store.remove(key).await.map_err(Failure::Checkpoint)?;
    }
    Ok(())
}

/// The checkpoint at `key`, if there is a readable one.
pub(super) async fn load(
    store: &dyn CheckpointStore,
    key: &str,
) -> Result<Option<Checkpoint>, Failure> {
    let stored = store.load(key).await.map_err(Failure::Checkpoint)?;
    Ok(stored.and_then(|body| match Checkpoint::parse(&body) {
        Ok(cp) => Some(cp),
        Err(why) => {
            tracing::warn!(checkpoint = key, why, "unreadable checkpoint replaced");
            None
        }
    }))
}

/// Gives up a range job's copy: if the copy in progress of `dest_key` is still the upload
/// `upload_id`, the upload is aborted and the checkpoint, range records and claim removed. A
/// range job that will not upload its range (the source is gone, or is a version the copy is
/// not of, or the destination already holds it) calls this before it looks at the key afresh,
/// so that no copy is left that other jobs take to be carried on by range jobs that have ended.
pub async fn give_up_copy<D: DestinationStore>(
    resume: Resume<'_>,
    dest: &D,
    dest_key: &str,
    upload_id: &str,
) -> Result<(), Failure> {
    let key = checkpoint_key(resume.results_prefix, resume.task, dest.bucket(), dest_key);
    match load(resume.store, &key).await? {
        Some(cp) if cp.upload_id == upload_id => discard(resume.store, dest, &key, &cp).await,
        _ => Ok(()),
    }
}

/// Whether the copy in parts of `dest_key` pinned to `head` (whose metadata has fingerprint
/// `fingerprint`), which the destination is known to hold, was completed by a job that could not
/// record it: its checkpoint is still there and its upload is gone. A completion in flight when
/// the invocation's cut-off stopped its job may land after the job was recorded `deferred`; the
/// next job for the key then finds the destination holding the version, and records the copy
/// instead of a skip. The checkpoint (and, for a copy fanned out, its range records, claim and
/// note) is removed. A checkpoint of another version, or whose upload is still open, is left to
/// the copy that owns it.
pub async fn completed_unrecorded<D: DestinationStore>(
    resume: Resume<'_>,
    dest: &D,
    dest_key: &str,
    head: &SourceObject,
    fingerprint: &str,
) -> Result<bool, Failure> {
    let key = checkpoint_key(resume.results_prefix, resume.task, dest.bucket(), dest_key);
    let Some(cp) = load(resume.store, &key).await? else {
        return Ok(false);
    };
    if cp.dest_key != dest_key || !cp.pinned_to(head, fingerprint) {
        return Ok(false);
    }
    match dest.list_parts(&cp.dest_key, &cp.upload_id).await {
        Ok(Some(_)) => Ok(false),
        Ok(None) => {
            tracing::info!(
                key = cp.dest_key,
                upload_id = cp.upload_id,
                "a copy in parts completed by a job stopped at its cut-off: recorded now"
            );
            forget(resume.store, &key, &cp).await?;
            Ok(true)
        }
        Err(e) => Err(Failure::Dest(e)),
    }
}
