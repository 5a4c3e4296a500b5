//! The in-memory OSS destination: objects with their metadata, multipart uploads and their
//! parts, and switches that make the next call fail as OSS can.

use super::lock;
use crate::checksum::md5_hex;
use crate::oss;
use crate::store::destination::DestinationStore;
use crate::store::object::{ObjectHead, ObjectMetadata};
use crate::store::upload::{
    BodySource, ListedPart, PartUpload, UploadCompletion, UploadOutcome, UploadRequest,
};
use bytes::Bytes;
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

/// Reads a body whole, as a store in memory takes an upload (never the real destination, which
/// streams it): a failed read is a
/// transient [`oss::Error::Source`], and a body of other than `size` bytes an [`oss::Error::SizeMismatch`].
pub async fn read_body(source: &dyn BodySource, key: &str, size: u64) -> Result<Bytes, oss::Error> {
    let mut stream = source.open().await?;
    let mut body = Vec::with_capacity(size as usize);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| oss::Error::Source {
            key: key.to_owned(),
            transient: true,
            source: e,
        })?;
        body.extend_from_slice(&chunk);
    }
    if body.len() as u64 != size {
        return Err(oss::Error::SizeMismatch {
            key: key.to_owned(),
            expected: size,
            actual: body.len() as u64,
        });
    }
    Ok(Bytes::from(body))
}

/// An open multipart upload in memory: key, metadata, and parts by number (bytes, ETag).
type MemUpload = (String, ObjectMetadata, BTreeMap<u32, (Bytes, String)>);

/// A destination bucket in memory, with request counts and injectable upload failures.
#[derive(Debug, Default)]
pub struct MemoryDestination {
    objects: Mutex<BTreeMap<String, (ObjectHead, Bytes)>>,
    open: Mutex<BTreeMap<String, MemUpload>>,
    /// With a plan, objects above its threshold are copied in parts, resumably.
    pub parts: Option<crate::store::upload::PartPlan>,
    /// How long each UploadPart takes (on the tokio clock).
    pub part_delay: std::time::Duration,
    /// How long an UploadPart's answer takes after the part is stored: a caller that gives up
    /// in between leaves a part that landed without knowing it.
    pub answer_delay: std::time::Duration,
    /// How long the next CompleteMultipartUpload's answer takes after the object is stored (once):
    /// a caller stopped in between leaves a completed object it does not know of.
    pub slow_completion: Mutex<Option<std::time::Duration>>,
    /// UploadPart requests served, by part number.
    pub part_uploads: Mutex<BTreeMap<u32, u32>>,
    /// Uploads initiated.
    pub initiated: AtomicU32,
    /// Uploads aborted.
    pub aborted: AtomicU32,
    /// HEADs served.
    pub heads: AtomicU32,
    /// Uploads completed.
    pub uploads: AtomicU32,
    /// Deletes served.
    pub deletes: AtomicU32,
    /// The next this-many uploads fail with a transient `InternalError`.
    pub fail_uploads: AtomicU32,
    /// While set, every request fails with a permanent `SignatureDoesNotMatch`, as OSS answers
    /// requests signed with a wrong secret.
    pub refuse_credentials: std::sync::atomic::AtomicBool,
}

impl MemoryDestination {
    /// An object's head and bytes.
    pub fn get(&self, key: &str) -> Option<(ObjectHead, Bytes)> {
        lock(&self.objects).get(key).cloned()
    }

    /// Every key held, in order.
    pub fn keys(&self) -> Vec<String> {
        lock(&self.objects).keys().cloned().collect()
    }

    /// A destination that takes objects above `plan.threshold` in parts, each UploadPart taking
    /// `part_delay` on the tokio clock.
    pub fn with_parts(
        plan: crate::store::upload::PartPlan,
        part_delay: std::time::Duration,
    ) -> Self {
        Self {
            parts: Some(plan),
            part_delay,
            ..Self::default()
        }
    }

    /// Ids of the multipart uploads open now.
    pub fn open_uploads(&self) -> Vec<String> {
        lock(&self.open).keys().cloned().collect()
    }

    /// UploadPart requests served in all.
    pub fn parts_uploaded(&self) -> u32 {
        lock(&self.part_uploads).values().sum()
    }

    fn no_upload(id: &str) -> oss::Error {
        oss::Error::Service(Box::new(oss::ServiceError {
            status: 404,
            code: "NoSuchUpload".into(),
            message: format!("no upload {id}"),
            request_id: "memory".into(),
            host_id: String::new(),
            ec: String::new(),
            server_time: String::new(),
        }))
    }

    /// OSS's answer to a request signed with a wrong secret, while [`Self::refuse_credentials`].
    fn refused(&self) -> Result<(), oss::Error> {
        if !self.refuse_credentials.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(oss::Error::Service(Box::new(oss::ServiceError {
            status: 403,
            code: "SignatureDoesNotMatch".into(),
            message:
                "The request signature we calculated does not match the signature you provided."
                    .into(),
            request_id: "memory-refused".into(),
            host_id: String::new(),
            ec: "0002-00000040".into(),
            server_time: String::new(),
        })))
    }

    /// Stores a whole object, as an upload's last request does.
    fn store(&self, key: &str, body: Bytes, given: &ObjectMetadata) -> UploadOutcome {
        let crc64 = crate::checksum::crc64(&body);
        let n = self.uploads.fetch_add(1, Ordering::Relaxed) + 1;
        let mut metadata: ObjectMetadata = given.clone();
        metadata.tagging = None;
        let head = ObjectHead {
            size: body.len() as u64,
            etag: format!("\"{}\"", md5_hex(&body).to_ascii_uppercase()),
            crc64: Some(crc64),
            last_modified: None,
            object_type: Some("Normal".into()),
            tagging_count: given
                .tagging
                .as_ref()
                .map_or(0, |t| t.split('&').count() as u32),
            metadata,
            request_id: format!("memory-{n}"),
        };
        let out = UploadOutcome {
            etag: head.etag.clone(),
            crc64,
            requests: 1,
            parts: 0,
            request_id: head.request_id.clone(),
        };
        lock(&self.objects).insert(key.to_owned(), (head, body));
        out
    }
}

impl DestinationStore for MemoryDestination {
    async fn head(&self, key: &str) -> Result<Option<ObjectHead>, oss::Error> {
        self.heads.fetch_add(1, Ordering::Relaxed);
        self.refused()?;
        Ok(lock(&self.objects).get(key).map(|(h, _)| h.clone()))
    }

    async fn upload(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
    ) -> Result<UploadOutcome, oss::Error> {
        oss::limits::check_key(req.key)?;
        self.refused()?;
        let body = read_body(source, req.key, req.size).await?;
        let failing = self
            .fail_uploads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(oss::Error::Service(Box::new(oss::ServiceError {
                status: 500,
                code: "InternalError".into(),
                message: "injected".into(),
                request_id: "memory-fault".into(),
                host_id: String::new(),
                ec: String::new(),
                server_time: String::new(),
            })));
        }
        let out = self.store(req.key, body, req.metadata);
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<(), oss::Error> {
        self.deletes.fetch_add(1, Ordering::Relaxed);
        self.refused()?;
        lock(&self.objects).remove(key);
        Ok(())
    }

    fn bucket(&self) -> &str {
        "memory"
    }

    fn part_plan(&self) -> Option<crate::store::upload::PartPlan> {
        self.parts.clone()
    }

    async fn initiate(&self, key: &str, metadata: &ObjectMetadata) -> Result<String, oss::Error> {
        oss::limits::check_key(key)?;
        let n = self.initiated.fetch_add(1, Ordering::Relaxed) + 1;
        let id = format!("upload-{n}");
        lock(&self.open).insert(
            id.clone(),
            (key.to_owned(), metadata.clone(), BTreeMap::new()),
        );
        Ok(id)
    }

    async fn upload_part(&self, part: PartUpload<'_>) -> Result<String, oss::Error> {
        let (key, upload_id, number) = (part.key, part.upload_id, part.number);
        let (data, crc) = (part.data, part.crc);
        if !self.part_delay.is_zero() {
            tokio::time::sleep(self.part_delay).await;
        }
        *lock(&self.part_uploads).entry(number).or_default() += 1;
        let stored = crate::checksum::crc64(&data);
        if stored != crc {
            return Err(oss::Error::ChecksumMismatch {
                key: format!("{key} (part {number})"),
                sent: crc,
                stored,
                request_id: "memory".into(),
            });
        }
        let etag = format!("\"{}\"", md5_hex(&data).to_ascii_uppercase());
        {
            let mut open = lock(&self.open);
            let upload = open
                .get_mut(upload_id)
                .filter(|u| u.0 == key)
                .ok_or_else(|| Self::no_upload(upload_id))?;
            upload.2.insert(number, (data, etag.clone()));
        }
        if !self.answer_delay.is_zero() {
            tokio::time::sleep(self.answer_delay).await;
        }
        Ok(etag)
    }

    async fn complete(&self, c: UploadCompletion<'_>) -> Result<UploadOutcome, oss::Error> {
        let (key, upload_id, parts, crc) = (c.key, c.upload_id, c.parts, c.crc);
        let (metadata, body) = {
            let mut open = lock(&self.open);
            let upload = open
                .get(upload_id)
                .filter(|u| u.0 == key)
                .ok_or_else(|| Self::no_upload(upload_id))?;
            let mut body = Vec::new();
            for (n, etag) in parts {
                match upload.2.get(n) {
                    Some((b, e)) if e == etag => body.extend_from_slice(b),
                    _ => {
                        return Err(oss::Error::Protocol {
                            op: "CompleteMultipartUpload",
                            detail: format!("InvalidPart: part {n} is not {etag}"),
                        })
                    }
                }
            }
            let metadata = upload.1.clone();
            open.remove(upload_id);
            (metadata, Bytes::from(body))
        };
        let out = self.store(key, body, &metadata);
        let slow = lock(&self.slow_completion).take();
        if let Some(d) = slow {
            tokio::time::sleep(d).await;
        }
        if out.crc64 != crc {
            return Err(oss::Error::ChecksumMismatch {
                key: key.to_owned(),
                sent: crc,
                stored: out.crc64,
                request_id: out.request_id,
            });
        }
        Ok(UploadOutcome {
            parts: parts.len() as u32,
            ..out
        })
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Option<Vec<ListedPart>>, oss::Error> {
        Ok(lock(&self.open)
            .get(upload_id)
            .filter(|u| u.0 == key)
            .map(|u| {
                u.2.iter()
                    .map(|(n, (b, etag))| ListedPart {
                        number: *n,
                        etag: etag.clone(),
                        size: b.len() as u64,
                        crc64: Some(crate::checksum::crc64(b)),
                    })
                    .collect()
            }))
    }

    async fn abort(&self, _key: &str, upload_id: &str) -> Result<(), oss::Error> {
        if lock(&self.open).remove(upload_id).is_some() {
            self.aborted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
