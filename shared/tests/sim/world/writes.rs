//! The writes the acting invocation sends whole, and those of killed invocations that land
//! later: tickets, arrivals, orphaned writes and their landing.

use super::{md5_hex, short, DestObject, Effect, InFlight, Op, World};

impl World {
    /// Notes an object write (a PUT, or a DELETE for `None`) sent whole by the acting invocation;
    /// its ticket.
    pub fn send_write(&mut self, key: &str, object: Option<DestObject>) -> u64 {
        self.send(
            key,
            object.map_or(Effect::Delete, |o| Effect::Put(Box::new(o))),
        )
    }

    /// Notes a write sent whole by the acting invocation; its ticket.
    pub fn send(&mut self, key: &str, effect: Effect) -> u64 {
        self.tickets += 1;
        let w = InFlight {
            by: self.actor.clone(),
            key: key.to_owned(),
            effect,
        };
        self.in_flight.insert(self.tickets, w);
        self.tickets
    }

    /// The acting invocation's write, taking effect now (its sender lives).
    pub fn arrive(&mut self, ticket: u64) {
        self.in_flight.remove(&ticket);
    }

    /// Invocation `by` is killed: its writes in flight land within `within` virtual seconds.
    pub fn orphan_writes(&mut self, by: &str, within: u64) {
        let tickets: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, w)| w.by == by)
            .map(|(&t, _)| t)
            .collect();
        for t in tickets {
            if let Some(w) = self.in_flight.remove(&t) {
                let at = self.now + self.rng.below(within + 1);
                self.landing.push((at, w));
            }
        }
    }

    /// Applies the orphaned writes whose time has come.
    pub fn land_orphans(&mut self) {
        let now = self.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.landing)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.landing = later;
        for (_, w) in due {
            if w.effect.writes_object() {
                self.landed_late += 1;
            } else {
                self.resume.late_other += 1;
            }
            let key = w.key.clone();
            match w.effect {
                Effect::Put(o) => {
                    self.note(Op::DestUpload, Some(&key), || {
                        format!(
                            "OSS PUT commits {} marker {:?} (sent by {} before it was killed)",
                            short(&md5_hex(&o.bytes)),
                            o.head.metadata.user,
                            w.by
                        )
                    });
                    self.dest.insert(key, *o);
                }
                Effect::Delete => {
                    self.note(Op::DestDelete, Some(&key), || {
                        format!("OSS DELETE (sent by {} before it was killed)", w.by)
                    });
                    self.dest.remove(&key);
                }
                Effect::Part {
                    upload,
                    number,
                    part,
                } => {
                    let stored = self.store_part(&upload, number, part).is_ok();
                    self.note(Op::DestPart, Some(&key), || {
                        format!(
                            "OSS UploadPart {number} of {upload} (sent by {} before it was killed): {}",
                            w.by,
                            if stored { "stored" } else { "NoSuchUpload" }
                        )
                    });
                }
                Effect::Complete { upload, parts } => {
                    let done = self.complete_upload(&key, &upload, &parts, &w.by);
                    if done.is_ok() {
                        self.resume.completed_late += 1;
                    }
                    self.note(Op::DestComplete, Some(&key), || match &done {
                        Ok(o) => format!(
                            "OSS completes {upload}: {} marker {:?} (sent by {} before it was killed)",
                            short(&md5_hex(&o.bytes)),
                            o.head.metadata.user,
                            w.by
                        ),
                        Err(e) => format!(
                            "OSS completion of {upload} (sent by {} before it was killed) → {e:?}",
                            w.by
                        ),
                    });
                }
                Effect::Abort { upload } => {
                    let had = self.abort_upload(&upload);
                    self.note(Op::DestAbort, Some(&key), || {
                        format!(
                            "OSS aborts {upload} (open: {had}; sent by {} before it was killed)",
                            w.by
                        )
                    });
                }
                Effect::CheckpointSave(body) => {
                    self.resume.checkpoint_writes += 1;
                    self.note_fanned(&key, &body);
                    self.checkpoints.insert(key, body);
                }
                Effect::CheckpointCreate(body) => {
                    self.create_checkpoint(&key, body);
                }
                Effect::CheckpointRemove => {
                    self.resume.checkpoint_writes += 1;
                    self.checkpoints.remove(&key);
                }
            }
        }
    }
}
