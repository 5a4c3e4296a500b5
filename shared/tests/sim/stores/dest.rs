//! The OSS destination bucket over the world: HEAD, PutObject and DELETE, and the multipart
//! upload calls of a copy in parts, each an await point that may fail or lose its answer.

use super::{oss_unavailable, pause};
use crate::sim::world::{
    lock, md5_hex, short, DestObject, Effect, NotCompleted, Op, Shared, SimPart,
};
use s3_oss_sync::budget::MemoryBudget;
use s3_oss_sync::oss::{self};
use s3_oss_sync::store::destination::DestinationStore;
use s3_oss_sync::store::object::{ObjectHead, ObjectMetadata};
use s3_oss_sync::store::upload::{BodySource, ListedPart, UploadOutcome, UploadRequest};
use s3_oss_sync::store::upload::{PartPace, PartPlan, PartUpload, UploadCompletion};
use s3_oss_sync::testing::memory::read_body;
use std::sync::Arc;

/// The OSS destination bucket. With the world's [`crate::sim::world::PartSettings`], objects above
/// the threshold are copied in parts, resumably.
pub struct SimDest {
    /// The world.
    pub world: Shared,
    /// How long parts took (the process's, shared by every copy).
    pace: Arc<PartPace>,
    /// Memory for part buffers: enough that no part waits (a wait would be a wake-up the
    /// executor cannot see coming).
    budget: MemoryBudget,
}

/// An OSS error with its status and code.
fn oss_error(key: &str, status: u16, code: &str, message: String) -> oss::Error {
    oss::Error::Service(Box::new(oss::ServiceError {
        status,
        code: code.into(),
        message: format!("{message} ({key})"),
        request_id: "sim".into(),
        ..oss::ServiceError::default()
    }))
}

fn not_completed(key: &str, upload: &str, e: &NotCompleted) -> oss::Error {
    match e {
        NotCompleted::NoSuchUpload => {
            oss_error(key, 404, "NoSuchUpload", format!("no upload {upload}"))
        }
        NotCompleted::InvalidPart(n) => oss_error(
            key,
            400,
            "InvalidPart",
            format!("part {n} of {upload} is not there with that ETag"),
        ),
    }
}

impl SimDest {
    /// The destination of a world.
    pub fn new(world: Shared) -> Self {
        Self {
            world,
            pace: Arc::default(),
            budget: MemoryBudget::new(1 << 30),
        }
    }

    /// One attempt of a PutObject: check the key, read the whole body, then commit (or fail)
    /// atomically.
    async fn put_once(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
        retry_left: bool,
    ) -> Result<Result<UploadOutcome, oss::Error>, oss::Error> {
        let key = req.key;
        oss::limits::check_key(key)?;
        pause(&self.world).await;
        let body = read_body(source, key, req.size).await?;
        let md5 = md5_hex(&body);
        let crc64 = s3_oss_sync::checksum::crc64(&body);
        let mut metadata = req.metadata.clone();
        metadata.tagging = None;
        let mut object = DestObject {
            head: ObjectHead {
                size: req.size,
                etag: format!("\"{}\"", md5.to_ascii_uppercase()),
                crc64: Some(crc64),
                last_modified: None,
                object_type: Some("Normal".into()),
                tagging_count: 0,
                metadata,
                request_id: "sim-in-flight".into(),
            },
            bytes: body,
        };
        // OSS has the whole request now: if this invocation is killed before it takes effect, it
        // still lands a little later.
        let ticket = lock(&self.world).send_write(key, Some(object.clone()));
        pause(&self.world).await;
        let mut w = lock(&self.world);
        w.arrive(ticket);
        if let Some(sent) = req.content_md5 {
            if hex::encode(sent) != md5 {
                w.violations.push(format!(
                    "{key}: an upload's Content-MD5 {} does not match its bytes {md5} (a torn copy)",
                    hex::encode(sent)
                ));
                return Err(oss_unavailable(key, 400, "InvalidDigest"));
            }
        }
        if w.fault(Op::DestUpload, key) {
            // The client retries a single PutObject by opening the body again (sometimes).
            let retry = retry_left && w.rng.chance(0.5);
            w.note(Op::DestUpload, Some(key), || {
                format!("OSS PUT fails before commit (client retries: {retry})")
            });
            let e = oss_unavailable(key, 500, "InternalError");
            return if retry { Ok(Err(e)) } else { Err(e) };
        }
        w.uploads += 1;
        object.head.request_id = format!("sim-{}", w.uploads);
        let out = UploadOutcome {
            etag: object.head.etag.clone(),
            crc64,
            requests: 1,
            parts: 0,
            request_id: object.head.request_id.clone(),
        };
        w.note(Op::DestUpload, Some(key), || {
            format!(
                "OSS PUT commits {} marker {:?}",
                short(&md5),
                object.head.metadata.user
            )
        });
        w.dest.insert(key.to_owned(), object);
        if w.fault(Op::DestUploadLost, key) {
            w.note(Op::DestUploadLost, Some(key), || {
                "OSS PUT committed, but its answer is lost".into()
            });
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        Ok(Ok(out))
    }
}

impl DestinationStore for SimDest {
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, oss::Error> {
        pause(&self.world).await;
        let mut w = lock(&self.world);
        if w.fault(Op::DestHead, key) {
            w.note(Op::DestHead, Some(key), || "OSS HEAD → 503".into());
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        let h = w.dest.get(key).map(|o| o.head.clone());
        w.note(Op::DestHead, Some(key), || match &h {
            Some(h) => format!("OSS HEAD → marker {:?}", h.metadata.user),
            None => "OSS HEAD → 404".into(),
        });
        Ok(h)
    }

    async fn upload(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
    ) -> Result<UploadOutcome, oss::Error> {
        match self.put_once(req, source, true).await? {
            Ok(out) => Ok(out),
            Err(_) => self.put_once(req, source, false).await?,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), oss::Error> {
        let ticket = lock(&self.world).send_write(key, None);
        pause(&self.world).await;
        let mut w = lock(&self.world);
        w.arrive(ticket);
        if w.fault(Op::DestDelete, key) {
            w.note(Op::DestDelete, Some(key), || "OSS DELETE → 503".into());
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        let had = w.dest.remove(key).is_some();
        w.note(Op::DestDelete, Some(key), || {
            format!("OSS DELETE (held: {had})")
        });
        Ok(())
    }

    fn bucket(&self) -> &str {
        "sim-oss"
    }

    fn part_plan(&self) -> Option<PartPlan> {
        let p = lock(&self.world).parts?;
        Some(PartPlan {
            threshold: p.threshold,
            part_size: p.part_size,
            parts_in_flight: p.in_flight,
            budget: self.budget.clone(),
            pace: self.pace.clone(),
        })
    }

    async fn initiate(&self, key: &str, metadata: &ObjectMetadata) -> Result<String, oss::Error> {
        oss::limits::check_key(key)?;
        {
            let mut w = lock(&self.world);
            let by = w.actor.clone();
            w.in_parts.insert(by);
        }
        pause(&self.world).await;
        let mut w = lock(&self.world);
        let fails = w.fault(Op::DestInitiate, key);
        let made = !fails || w.rng.chance(0.5);
        let mut id = String::new();
        if made {
            w.resume.initiated += 1;
            id = format!("up{}", w.resume.initiated);
            w.open_uploads.insert(
                id.clone(),
                crate::sim::world::OpenUpload {
                    key: key.to_owned(),
                    metadata: metadata.clone(),
                    parts: Default::default(),
                },
            );
        }
        w.note(Op::DestInitiate, Some(key), || match (made, fails) {
            (true, false) => format!("OSS initiates {id} marker {:?}", metadata.user),
            (true, true) => format!("OSS initiates {id}, but its answer is lost"),
            _ => "OSS InitiateMultipartUpload → 503".into(),
        });
        if fails {
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        Ok(id)
    }

    async fn upload_part(&self, sent: PartUpload<'_>) -> Result<String, oss::Error> {
        let (key, upload_id, number) = (sent.key, sent.upload_id, sent.number);
        pause(&self.world).await;
        // OSS computes the part's CRC-64 and refuses a mismatch; the model takes the one sent
        // (computing it again would double the CPU the large bodies cost) and checks instead, at
        // the completion, that the object is the bytes and CRC-64 of the version its marker names.
        let part = SimPart {
            etag: format!("\"{:016X}\"", sent.crc),
            crc: sent.crc,
            bytes: sent.data,
            by: String::new(),
        };
        let ticket = {
            let mut w = lock(&self.world);
            let by = w.actor.clone();
            w.send(
                key,
                Effect::Part {
                    upload: upload_id.to_owned(),
                    number,
                    part: SimPart { by, ..part.clone() },
                },
            )
        };
        pause(&self.world).await;
        let mut w = lock(&self.world);
        w.arrive(ticket);
        let fails = w.fault(Op::DestPart, key);
        if fails && w.rng.chance(0.5) {
            w.note(Op::DestPart, Some(key), || {
                format!("OSS UploadPart {number} of {upload_id} → 500")
            });
            return Err(oss_unavailable(key, 500, "InternalError"));
        }
        let by = w.actor.clone();
        let etag = part.etag.clone();
        let result = w.store_part(upload_id, number, SimPart { by, ..part });
        w.note(Op::DestPart, Some(key), || {
            format!(
                "OSS UploadPart {number} of {upload_id}: {}{}",
                if result.is_ok() {
                    "stored"
                } else {
                    "NoSuchUpload"
                },
                if fails {
                    ", but its answer is lost"
                } else {
                    ""
                }
            )
        });
        if let Err(e) = result {
            return Err(not_completed(key, upload_id, &e));
        }
        if fails {
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        Ok(etag)
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<ListedPart>>, oss::Error> {
        {
            let mut w = lock(&self.world);
            let by = w.actor.clone();
            w.in_parts.insert(by);
        }
        pause(&self.world).await;
        let mut w = lock(&self.world);
        if w.fault(Op::DestList, key) {
            w.note(Op::DestList, Some(key), || {
                format!("OSS ListParts of {upload_id} → 503")
            });
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        let listed: Option<Vec<ListedPart>> = w
            .open_uploads
            .get(upload_id)
            .filter(|u| u.key == key)
            .map(|u| {
                u.parts
                    .iter()
                    .map(|(n, p)| ListedPart {
                        number: *n,
                        etag: p.etag.clone(),
                        size: p.bytes.len() as u64,
                        crc64: Some(p.crc),
                    })
                    .collect()
            });
        if listed.is_some() && !w.fanned.contains_key(upload_id) {
            w.resume.resumed += 1;
        }
        w.note(Op::DestList, Some(key), || match &listed {
            Some(l) => format!(
                "OSS ListParts of {upload_id} → parts {:?}",
                l.iter().map(|p| p.number).collect::<Vec<_>>()
            ),
            None => format!("OSS ListParts of {upload_id} → NoSuchUpload"),
        });
        Ok(listed)
    }

    async fn complete(&self, done: UploadCompletion<'_>) -> Result<UploadOutcome, oss::Error> {
        let (key, upload_id, parts, crc) = (done.key, done.upload_id, done.parts, done.crc);
        let ticket = lock(&self.world).send(
            key,
            Effect::Complete {
                upload: upload_id.to_owned(),
                parts: parts.to_vec(),
            },
        );
        pause(&self.world).await;
        let mut w = lock(&self.world);
        w.arrive(ticket);
        if w.fault(Op::DestComplete, key) {
            w.note(Op::DestComplete, Some(key), || {
                format!("OSS completion of {upload_id} fails before commit")
            });
            return Err(oss_unavailable(key, 500, "InternalError"));
        }
        let by = w.actor.clone();
        let object = match w.complete_upload(key, upload_id, parts, &by) {
            Ok(o) => o,
            Err(e) => {
                w.note(Op::DestComplete, Some(key), || {
                    format!("OSS completion of {upload_id} → {e:?}")
                });
                return Err(not_completed(key, upload_id, &e));
            }
        };
        w.note(Op::DestComplete, Some(key), || {
            format!(
                "OSS completes {upload_id}: {} marker {:?}",
                short(&md5_hex(&object.bytes)),
                object.head.metadata.user
            )
        });
        let stored = object.head.crc64.unwrap_or_default();
        if stored != crc {
            w.violations.push(format!(
                "{key}: upload {upload_id} was completed expecting CRC-64 {crc:016X}, but its parts make {stored:016X}"
            ));
            return Err(oss::Error::ChecksumMismatch {
                key: key.to_owned(),
                sent: crc,
                stored,
                request_id: object.head.request_id,
            });
        }
        if w.fault(Op::DestCompleteLost, key) {
            w.resume.completed_lost += 1;
            w.note(Op::DestCompleteLost, Some(key), || {
                format!("OSS completed {upload_id}, but its answer is lost")
            });
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        Ok(UploadOutcome {
            etag: object.head.etag.clone(),
            crc64: stored,
            requests: 1,
            parts: parts.len() as u32,
            request_id: object.head.request_id,
        })
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), oss::Error> {
        let ticket = lock(&self.world).send(
            key,
            Effect::Abort {
                upload: upload_id.to_owned(),
            },
        );
        pause(&self.world).await;
        let mut w = lock(&self.world);
        w.arrive(ticket);
        if w.fault(Op::DestAbort, key) {
            w.note(Op::DestAbort, Some(key), || {
                format!("OSS abort of {upload_id} → 503")
            });
            return Err(oss_unavailable(key, 503, "ServiceUnavailable"));
        }
        let had = w.abort_upload(upload_id);
        w.note(Op::DestAbort, Some(key), || {
            format!("OSS aborts {upload_id} (open: {had})")
        });
        Ok(())
    }
}
