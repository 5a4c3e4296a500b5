//! The checkpoint store over the world: checkpoint objects in the results bucket, their reads,
//! writes and conditional creates, and how the trace names them.

use super::{hold_rest_of_poll, pause, s3_unavailable};
use crate::sim::world::{lock, short, Effect, Op, Shared};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use s3_oss_sync::store::checkpoints::CheckpointStore;
use s3_oss_sync::store::source::SourceError;

/// The checkpoint store: objects in the results bucket, each read and write an await point that
/// may fail; a write may take effect and lose its answer, and a write sent whole lands even if
/// its invocation is killed.
pub struct SimCheckpoints(pub Shared);

/// What a checkpoint object says, for the trace.
fn describe(body: &Option<Bytes>) -> String {
    use s3_oss_sync::sync::resume::{Checkpoint, RangeRecord};
    let Some(b) = body else {
        return String::new();
    };
    let numbers = |parts: &[s3_oss_sync::sync::resume::DonePart]| -> Vec<u32> {
        parts.iter().map(|p| p.number).collect()
    };
    if let Ok(cp) = Checkpoint::parse(b) {
        return format!(
            ": upload {} of {} parts {:?} ranges {:?}",
            cp.upload_id,
            short(&cp.etag),
            numbers(&cp.parts),
            cp.ranges
        );
    }
    if let Ok(r) = serde_json::from_slice::<RangeRecord>(b) {
        return format!(": upload {} parts {:?}", r.upload_id, numbers(&r.parts));
    }
    format!(": {}", String::from_utf8_lossy(b))
}

/// The trace's name for a checkpoint object.
fn short_key(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

/// The destination key a checkpoint object (a checkpoint, range record or claim) is about, for
/// the trace.
fn dest_key_of(checkpoint: &str) -> Option<String> {
    crate::sim::users::KEYS.iter().find_map(|k| {
        let cp = s3_oss_sync::sync::resume::checkpoint_key(
            crate::sim::exec::RESULTS_PREFIX,
            crate::sim::exec::TASK,
            crate::sim::exec::DEST_BUCKET,
            k,
        );
        checkpoint
            .starts_with(cp.trim_end_matches(".json"))
            .then(|| (*k).to_owned())
    })
}

/// Notes a checkpoint step under the key it is about.
fn note_checkpoint(w: &mut crate::sim::world::World, key: &str, text: impl FnOnce() -> String) {
    if w.tracing {
        let about = dest_key_of(key);
        w.note(Op::Checkpoint, about.as_deref(), text);
    }
}

impl SimCheckpoints {
    /// Sends a write; after it arrives, a fault fails it before (half the time) or after it took
    /// effect. `apply` makes the effect and says what the caller gets.
    async fn write<T>(
        &self,
        op: &'static str,
        key: &str,
        effect: Effect,
        apply: impl FnOnce(&mut crate::sim::world::World) -> T,
    ) -> Result<T, SourceError> {
        pause(&self.0).await;
        let effect_text = match &effect {
            Effect::CheckpointSave(b) | Effect::CheckpointCreate(b) => Some(b.clone()),
            _ => None,
        };
        let ticket = lock(&self.0).send(key, effect);
        pause(&self.0).await;
        let mut w = lock(&self.0);
        hold_rest_of_poll(&w);
        w.arrive(ticket);
        let fails = w.fault(Op::Checkpoint, key);
        if fails && w.rng.chance(0.5) {
            note_checkpoint(&mut w, key, || {
                format!("checkpoint {op} {} → 503", short_key(key))
            });
            return Err(s3_unavailable(op, key));
        }
        let out = apply(&mut w);
        note_checkpoint(&mut w, key, || {
            format!(
                "checkpoint {op} {}{}",
                short_key(key),
                describe(&effect_text)
            )
        });
        if fails {
            note_checkpoint(&mut w, key, || {
                format!(
                    "checkpoint {op} {} took effect, but its answer is lost",
                    short_key(key)
                )
            });
            return Err(s3_unavailable(op, key));
        }
        Ok(out)
    }
}

impl CheckpointStore for SimCheckpoints {
    /// The wait is the pause before the load, as every store call's: other invocations may move
    /// meanwhile (the virtual clock has no timers outside the deadline's).
    fn load_after<'a>(
        &'a self,
        key: &'a str,
        _wait: std::time::Duration,
    ) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        self.load(key)
    }

    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        Box::pin(async move {
            pause(&self.0).await;
            let mut w = lock(&self.0);
            hold_rest_of_poll(&w);
            if w.fault(Op::Checkpoint, key) {
                note_checkpoint(&mut w, key, || {
                    format!("checkpoint GET {} → 503", short_key(key))
                });
                return Err(s3_unavailable("GetObject", key));
            }
            Ok(w.checkpoints.get(key).cloned())
        })
    }

    fn save<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            let stored = body.clone();
            self.write("PutObject", key, Effect::CheckpointSave(body), |w| {
                w.resume.checkpoint_writes += 1;
                w.note_fanned(key, &stored);
                w.checkpoints.insert(key.to_owned(), stored);
            })
            .await
        })
    }

    fn remove<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            self.write("DeleteObject", key, Effect::CheckpointRemove, |w| {
                w.resume.checkpoint_writes += 1;
                w.checkpoints.remove(key);
            })
            .await
        })
    }

    fn create<'a>(&'a self, key: &'a str, body: Bytes) -> BoxFuture<'a, Result<bool, SourceError>> {
        Box::pin(async move {
            let stored = body.clone();
            let created = self
                .write(
                    "PutObject If-None-Match",
                    key,
                    Effect::CheckpointCreate(body),
                    |w| w.create_checkpoint(key, stored),
                )
                .await;
            let mut w = lock(&self.0);
            note_checkpoint(&mut w, key, || {
                format!("checkpoint create {} → {created:?}", short_key(key))
            });
            created
        })
    }
}
