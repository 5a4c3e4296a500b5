//! Multipart uploads and checkpoints in the world: parts stored, completions checked against the
//! source version, aborts, fanned-out copies and conditional creates, and what the resumable
//! copies did.

use super::{DestObject, NotCompleted, SimPart, World};
use bytes::Bytes;
use s3_oss_sync::checksum::crc64_combine;
use s3_oss_sync::store::object::ObjectHead;
use s3_oss_sync::sync::metadata::read_marker;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The CRC-64 of a source version's bytes, computed once per process for each.
fn version_crc(bytes: &Bytes) -> u64 {
    static CRCS: std::sync::OnceLock<Mutex<BTreeMap<(usize, usize), u64>>> =
        std::sync::OnceLock::new();
    if bytes.len() <= 4096 {
        return s3_oss_sync::checksum::crc64(bytes);
    }
    // Large bodies are made once per process and kept ([`crate::sim::users::big_bytes_of`]), so
    // their address names them.
    let key = (bytes.as_ptr() as usize, bytes.len());
    let mut crcs = CRCS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *crcs
        .entry(key)
        .or_insert_with(|| s3_oss_sync::checksum::crc64(bytes))
}

/// What the resumable copies did in a schedule (counted by the stores).
#[derive(Debug, Clone, Default)]
pub struct ResumeCounts {
    /// Multipart uploads initiated.
    pub initiated: u64,
    /// Parts stored (UploadPart requests that took effect).
    pub parts: u64,
    /// ListParts that found a copy's upload open (not fanned out): resumptions.
    pub resumed: u64,
    /// Parts of completed uploads (not fanned out) that an earlier invocation had uploaded: kept
    /// on resumption.
    pub parts_kept: u64,
    /// Completions that committed.
    pub completed: u64,
    /// Of them, of uploads fanned out to range jobs.
    pub completed_fanned: u64,
    /// Completions that committed after their invocation was gone.
    pub completed_late: u64,
    /// Completions that committed but whose answer was lost.
    pub completed_lost: u64,
    /// Uploads aborted.
    pub aborted: u64,
    /// Checkpoint writes (saves, creates, removes) that took effect.
    pub checkpoint_writes: u64,
    /// Completion claims created (exactly one per fanned-out copy that completes).
    pub claims: u64,
    /// Claims refused because one was there.
    pub claims_refused: u64,
    /// Writes other than object writes (parts, aborts, checkpoint writes) that took effect after
    /// their invocation was gone.
    pub late_other: u64,
}

impl World {
    /// Stores a part in an open upload.
    pub fn store_part(
        &mut self,
        upload: &str,
        number: u32,
        part: SimPart,
    ) -> Result<(), NotCompleted> {
        let open = self
            .open_uploads
            .get_mut(upload)
            .ok_or(NotCompleted::NoSuchUpload)?;
        open.parts.insert(number, part);
        self.resume.parts += 1;
        Ok(())
    }

    /// Commits a multipart upload from `parts` as invocation `by` asked: the object is stored
    /// and the upload closed. Checks that the object is the bytes of the source version its
    /// marker names (a torn copy otherwise).
    pub fn complete_upload(
        &mut self,
        key: &str,
        upload: &str,
        parts: &[(u32, String)],
        by: &str,
    ) -> Result<DestObject, NotCompleted> {
        let open = self
            .open_uploads
            .get(upload)
            .filter(|u| u.key == key)
            .ok_or(NotCompleted::NoSuchUpload)?;
        let mut chosen: Vec<&SimPart> = Vec::with_capacity(parts.len());
        for (n, etag) in parts {
            match open.parts.get(n) {
                Some(p) if p.etag.trim_matches('"') == etag.trim_matches('"') => chosen.push(p),
                _ => return Err(NotCompleted::InvalidPart(*n)),
            }
        }
        let fanned = self.fanned.contains_key(upload);
        let kept = chosen.iter().filter(|p| p.by != by).count() as u64;
        let mut metadata = open.metadata.clone();
        metadata.tagging = None;
        // The bytes of the version the marker names, when the parts are exactly those (the
        // object then shares them, and their CRC-64 is computed once per version).
        let named = metadata
            .user
            .iter()
            .find(|(k, _)| k == s3_oss_sync::sync::metadata::MARKER_ETAG)
            .and_then(|(_, etag)| self.versions.get(etag.trim_matches('"')))
            .filter(|v| {
                let mut at = 0;
                chosen.iter().all(|p| {
                    let end = at + p.bytes.len();
                    let same = v.get(at..end) == Some(&p.bytes[..]);
                    at = end;
                    same
                }) && at == v.len()
            })
            .cloned();
        let (bytes, crc) = match &named {
            Some(v) => (v.clone(), version_crc(v)),
            None => {
                let mut bytes = Vec::with_capacity(chosen.iter().map(|p| p.bytes.len()).sum());
                let mut crc = 0;
                for p in &chosen {
                    bytes.extend_from_slice(&p.bytes);
                    crc = crc64_combine(crc, p.crc, p.bytes.len() as u64);
                }
                (Bytes::from(bytes), crc)
            }
        };
        self.uploads += 1;
        let object = DestObject {
            head: ObjectHead {
                size: bytes.len() as u64,
                etag: format!("\"{crc:016X}-{}\"", parts.len()),
                crc64: Some(crc),
                last_modified: None,
                object_type: Some("Multipart".into()),
                tagging_count: 0,
                metadata,
                request_id: format!("sim-{}", self.uploads),
            },
            bytes,
        };
        self.open_uploads.remove(upload);
        self.resume.completed += 1;
        if fanned {
            self.resume.completed_fanned += 1;
        } else {
            self.resume.parts_kept += kept;
        }
        if named.is_none() {
            self.violations.push(format!(
                "{key}: upload {upload} completed {} bytes that are not the source version its marker names ({:?}): a torn copy",
                object.bytes.len(),
                read_marker(&object.head).map(|m| m.etag)
            ));
        }
        self.dest.insert(key.to_owned(), object.clone());
        Ok(object)
    }

    /// Aborts an upload; whether it was open.
    pub fn abort_upload(&mut self, upload: &str) -> bool {
        let had = self.open_uploads.remove(upload).is_some();
        if had {
            self.resume.aborted += 1;
        }
        had
    }

    /// Notes a checkpoint that splits its upload into range jobs.
    pub fn note_fanned(&mut self, key: &str, body: &Bytes) {
        if key.contains(".range-") || key.contains(".claim-") || key.contains(".sent-") {
            return;
        }
        // Only a checkpoint with ranges names them (an empty list is left out).
        if !body.windows(8).any(|w| w == b"\"ranges\"") {
            return;
        }
        if let Ok(cp) = s3_oss_sync::sync::resume::Checkpoint::parse(body) {
            if !cp.ranges.is_empty() {
                self.fanned.insert(cp.upload_id, (cp.dest_key, cp.ranges));
            }
        }
    }

    /// A conditional create (`If-None-Match: *`): whether it created the object.
    pub fn create_checkpoint(&mut self, key: &str, body: Bytes) -> bool {
        let claim = key.contains(".claim-");
        if self.checkpoints.contains_key(key) {
            if claim {
                self.resume.claims_refused += 1;
            }
            return false;
        }
        self.resume.checkpoint_writes += 1;
        if claim {
            self.resume.claims += 1;
        }
        self.note_fanned(key, &body);
        self.checkpoints.insert(key.to_owned(), body);
        true
    }

    /// What went wrong with the fanned-out copies of `key` (for a failure's description): range
    /// jobs superseded in a batch and acknowledged, and ranges whose jobs were never sent.
    pub fn fan_out_findings(&self, key: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        for (upload, (dest_key, ranges)) in &self.fanned {
            if key.is_some_and(|k| k != dest_key) {
                continue;
            }
            let sent: Vec<String> = ranges
                .iter()
                .filter(|[first, last]| {
                    let attr = format!("{first}-{last} {upload}");
                    self.immediate
                        .iter()
                        .any(|(_, _, r)| r.as_deref() == Some(attr.as_str()))
                })
                .map(|[first, last]| format!("{first}-{last}"))
                .collect();
            if sent.len() < ranges.len() {
                out.push(format!(
                    "{dest_key}: upload {upload} was split into ranges {ranges:?}, but only the range jobs {sent:?} were ever sent"
                ));
            }
            for (by, m, range) in &self.ranges_superseded {
                if range.ends_with(&format!(" {upload}")) {
                    out.push(format!(
                        "{dest_key}: {by} acknowledged the range job {m} of range {range} without uploading it"
                    ));
                }
            }
        }
        out
    }
}
