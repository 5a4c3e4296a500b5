//! The checkpoint of a copy in parts and its finished parts, where checkpoints are kept, and
//! which parts a checkpoint keeps on resumption (pure).

use crate::store::source::SourceObject;
use crate::store::upload::ListedPart;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// The checkpoint format's version.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Source reads of one part before its failure ends the copy's run (transient errors only).
pub const PART_READ_ATTEMPTS: u32 = 3;

/// Least time between two checkpoint writes while parts finish.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

/// One finished part, as the checkpoint keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonePart {
    /// Part number, from 1.
    pub number: u32,
    /// Size in bytes.
    pub size: u64,
    /// ETag OSS gave the part.
    pub etag: String,
    /// CRC-64/ECMA of the part's source bytes, 16 hex digits (OSS reported the same).
    pub crc64: String,
}

impl DonePart {
    pub(super) fn crc(&self) -> Option<u64> {
        u64::from_str_radix(&self.crc64, 16).ok()
    }
}

/// A copy in progress: what it is pinned to and which parts are done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version ([`CHECKPOINT_VERSION`]).
    pub version: u32,
    /// Task id.
    pub task: String,
    /// Source bucket.
    pub source_bucket: String,
    /// Source key.
    pub source_key: String,
    /// The source ETag every read is pinned to.
    pub etag: String,
    /// The source version id, when the bucket is versioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The source object's size.
    pub size: u64,
    /// Fingerprint of the source metadata the upload was initiated with.
    pub fingerprint: String,
    /// Destination bucket.
    pub dest_bucket: String,
    /// Destination key.
    pub dest_key: String,
    /// Part size (all parts but the last).
    pub part_size: u64,
    /// The OSS multipart upload id.
    pub upload_id: String,
    /// The message the upload was initiated for (its sync marker names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When the copy began (RFC 3339).
    pub started_at: String,
    /// When this checkpoint was written (RFC 3339).
    pub updated_at: String,
    /// Finished parts, by number (for a copy fanned out, the range records hold them instead).
    pub parts: Vec<DonePart>,
    /// For a copy fanned out to range jobs: each job's first and last part number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<[u32; 2]>,
}

impl Checkpoint {
    /// Number of parts the object has.
    pub fn parts_total(&self) -> u32 {
        self.size.div_ceil(self.part_size.max(1)) as u32
    }

    /// Bytes in finished parts.
    pub fn bytes_done(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// The byte range of part `number` (from 1): first byte and length.
    pub fn range(&self, number: u32) -> (u64, u64) {
        let start = u64::from(number - 1) * self.part_size;
        (start, self.part_size.min(self.size - start))
    }

    /// Whether the checkpoint is pinned to `head`, the source's current version, whose metadata
    /// has fingerprint `fingerprint`.
    pub fn pinned_to(&self, head: &SourceObject, fingerprint: &str) -> bool {
        self.etag == head.etag
            && self.size == head.size
            && self.fingerprint == fingerprint
            && (self.version_id.is_none()
                || head.version_id.is_none()
                || self.version_id == head.version_id)
    }

    /// Parses a stored checkpoint.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let c: Self = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        if c.version != CHECKPOINT_VERSION {
            return Err(format!(
                "checkpoint format {} is not {CHECKPOINT_VERSION}",
                c.version
            ));
        }
        if c.part_size == 0 || c.size == 0 || c.parts.iter().any(|p| p.crc().is_none()) {
            return Err("checkpoint has a zero size or an unreadable CRC-64".into());
        }
        Ok(c)
    }

    pub(super) fn to_bytes(&self) -> Bytes {
        Bytes::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }
}

/// Which parts of a checkpoint are kept on resumption, and which must be uploaded: a part is kept
/// only when the checkpoint and ListParts agree on it (size, ETag, and the CRC-64 where ListParts
/// reports one) and it has the size its range needs. Pure.
pub fn plan_resume(cp: &Checkpoint, listed: &[ListedPart]) -> (Vec<DonePart>, Vec<u32>) {
    plan_parts(cp, &cp.parts, listed, 1..=cp.parts_total())
}

/// [`plan_resume`] for the parts `numbers` of `cp`'s object, `done` being what a checkpoint or
/// range record says of them. Pure.
pub fn plan_parts(
    cp: &Checkpoint,
    done: &[DonePart],
    listed: &[ListedPart],
    numbers: std::ops::RangeInclusive<u32>,
) -> (Vec<DonePart>, Vec<u32>) {
    let listed: BTreeMap<u32, &ListedPart> = listed.iter().map(|p| (p.number, p)).collect();
    let mut kept = Vec::new();
    let mut todo = Vec::new();
    let by_number: BTreeMap<u32, &DonePart> = done.iter().map(|p| (p.number, p)).collect();
    for n in numbers {
        let ok = match (by_number.get(&n), listed.get(&n)) {
            (Some(done), Some(there)) => {
                done.size == cp.range(n).1
                    && there.size == done.size
                    && there.etag.trim_matches('"') == done.etag.trim_matches('"')
                    && there.crc64.is_none_or(|c| Some(c) == done.crc())
            }
            _ => false,
        };
        match by_number.get(&n) {
            Some(done) if ok => kept.push((*done).clone()),
            _ => todo.push(n),
        }
    }
    (kept, todo)
}

/// The parts of `todo` that ListParts shows with the size their range needs although no record
/// vouches for them: a part dropped at the cut-off after OSS had received it, or uploaded by a
/// job killed before its save. Their ETags (OSS's MD5 of the part) are checked against the
/// source range when it is read again, so such a part is kept, not sent twice. Pure.
pub fn landed_unrecorded(
    cp: &Checkpoint,
    listed: &[ListedPart],
    todo: &[u32],
) -> BTreeMap<u32, String> {
    let listed: BTreeMap<u32, &ListedPart> = listed.iter().map(|p| (p.number, p)).collect();
    todo.iter()
        .filter_map(|n| {
            let there = listed.get(n)?;
            (there.size == cp.range(*n).1).then(|| (*n, there.etag.clone()))
        })
        .collect()
}

/// Whether `etag` (as OSS gives a part's, quoted upper-case hex) is the MD5 of `data`.
pub(super) fn etag_is_md5_of(etag: &str, data: &[u8]) -> bool {
    etag.trim_matches('"')
        .eq_ignore_ascii_case(&hex::encode(md5::Md5::digest(data)))
}

/// Where checkpoints are kept: `<results prefix>-checkpoints/<task>/<SHA-256 of
/// "<destination bucket>/<destination key>", 32 hex digits>.json` (beside the results, never
/// under them, so the report never reads one as a record).
pub fn checkpoint_key(
    results_prefix: &str,
    task: &str,
    dest_bucket: &str,
    dest_key: &str,
) -> String {
    let hash = Sha256::digest(format!("{dest_bucket}/{dest_key}").as_bytes());
    format!(
        "{}{task}/{}.json",
        checkpoint_prefix(results_prefix),
        &hex::encode(hash)[..32]
    )
}

/// The folder of every task's checkpoints, ending in `/`.
pub fn checkpoint_prefix(results_prefix: &str) -> String {
    let root = results_prefix.trim_matches('/');
    if root.is_empty() {
        "checkpoints/".to_owned()
    } else {
        format!("{root}-checkpoints/")
    }
}
