//! Multipart uploads: InitiateMultipartUpload, UploadPart, CompleteMultipartUpload (including
//! `x-oss-complete-all`), AbortMultipartUpload and ListParts.

use super::objects::{quoted_md5, same_etag};
use super::{encode_if, parse_bounded, Ctx, Handled, Parsed, Reply};
use crate::error::{errors, OssError};
use crate::request;
use crate::store::{Object, ObjectType, Part};
use crate::xml::{self, Doc};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use http::StatusCode;
use md5::{Digest, Md5};
use s3_oss_sync::checksum::Crc64;
use s3_oss_sync::oss::signing::uri_encode;
use std::sync::Arc;
use std::time::SystemTime;

impl Ctx<'_> {
    pub(super) fn initiate(&self, p: &Parsed, key: &str) -> Handled {
        let mut meta = self.meta_from(p)?;
        meta.object_type = ObjectType::Multipart;
        let id = self.state.store().initiate(&p.bucket, key, meta);
        let mut d = Doc::new("InitiateMultipartUploadResult");
        d.field("Bucket", &p.bucket)
            .field("Key", encode_if(key, p.url_encoding()))
            .field("UploadId", &id);
        if p.url_encoding() {
            d.field("EncodingType", "url");
        }
        Ok(Reply::xml(d.finish()))
    }

    pub(super) async fn upload_part(&self, mut p: Parsed, key: &str) -> Handled {
        let id = p.q("uploadId").unwrap_or_default().to_owned();
        let number: u32 = p
            .q("partNumber")
            .and_then(|n| n.parse().ok())
            .filter(|n| (1..=request::MAX_PART_NUMBER).contains(n))
            .ok_or_else(|| {
                errors::invalid_argument(
                    "Part number must be an integer between 1 and 10000, inclusive.",
                )
            })?;
        if self.state.store().upload(&id, &p.bucket, key).is_none() {
            return Err(errors::no_such_upload(&id).into());
        }
        let body = self.read_body(&mut p, request::MAX_PUT_SIZE).await?;
        let etag = quoted_md5(&body.md5);
        let part = Part {
            etag: etag.clone(),
            md5: body.md5,
            crc64: body.crc64,
            size: body.size,
            last_modified: SystemTime::now(),
            body: body.segments,
        };
        if !self
            .state
            .store()
            .put_part(&id, &p.bucket, key, number, part)
        {
            return Err(errors::no_such_upload(&id).into());
        }
        self.state.faults.note_part();
        Ok(Reply::new(StatusCode::OK)
            .header("etag", etag)
            .header("x-oss-hash-crc64ecma", body.crc64)
            .header("content-md5", B64.encode(body.md5)))
    }

    pub(super) async fn complete(&self, mut p: Parsed, key: &str) -> Handled {
        let id = p.q("uploadId").unwrap_or_default().to_owned();
        let upload = self
            .state
            .store()
            .upload(&id, &p.bucket, key)
            .cloned()
            .ok_or_else(|| errors::no_such_upload(&id))?;
        let body = self.read_body(&mut p, 16 * 1024 * 1024).await?;
        let complete_all = p.h("x-oss-complete-all").is_some_and(|v| v == "yes");
        let chosen: Vec<(u32, String)> = if complete_all {
            upload
                .parts
                .iter()
                .map(|(n, part)| (*n, part.etag.clone()))
                .collect()
        } else {
            let joined: Vec<u8> = body
                .segments
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            xml::parse_complete(&joined)
                .map_err(|e| {
                    errors::malformed_xml(format!("The XML you provided was not well-formed: {e}"))
                })?
                .parts
                .into_iter()
                .map(|cp| (cp.number, cp.etag))
                .collect()
        };
        if chosen.is_empty() {
            return Err(errors::malformed_xml("CompleteMultipartUpload names no parts.").into());
        }
        if chosen.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(OssError::new(
                StatusCode::BAD_REQUEST,
                "InvalidPartOrder",
                "The list of parts was not in ascending order. Parts list must be specified in order by part number.",
            )
            .into());
        }
        let mut segments = Vec::new();
        let (mut md5s, mut size, mut crc) = (Md5::new(), 0u64, Crc64::new());
        for (i, (number, etag)) in chosen.iter().enumerate() {
            let part = upload
                .parts
                .get(number)
                .filter(|part| same_etag(&part.etag, etag))
                .ok_or_else(|| {
                    OssError::new(
                        StatusCode::BAD_REQUEST,
                        "InvalidPart",
                        "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
                    )
                    .with("PartNumber", number.to_string())
                })?;
            if i + 1 < chosen.len() && part.size < request::MIN_PART_SIZE {
                return Err(OssError::new(
                    StatusCode::BAD_REQUEST,
                    "EntityTooSmall",
                    "Your proposed upload is smaller than the minimum allowed size.",
                )
                .with("PartNumber", number.to_string())
                .with("ProposedSize", part.size.to_string())
                .with("MinSizeAllowed", request::MIN_PART_SIZE.to_string())
                .into());
            }
            md5s.update(part.md5);
            size += part.size;
            for seg in &part.body {
                crc.update(seg);
                segments.push(seg.clone());
            }
        }
        let etag = format!(
            "\"{}-{}\"",
            hex::encode_upper(md5s.finalize()),
            chosen.len()
        );
        let crc64 = crc.finish();
        let mut meta = upload.meta.clone();
        meta.size = size;
        meta.etag = etag.clone();
        meta.crc64 = crc64;
        meta.last_modified = SystemTime::now();
        if self.state.store().take_upload(&id).is_none() {
            return Err(errors::no_such_upload(&id).into());
        }
        self.commit(
            &p.bucket,
            key,
            Object {
                meta,
                body: Arc::new(segments),
            },
        )?;
        let url = p.url_encoding();
        let mut d = Doc::new("CompleteMultipartUploadResult");
        if url {
            d.field("EncodingType", "url");
        }
        d.field("Location", format!("/{}/{}", p.bucket, uri_encode(key)))
            .field("Bucket", &p.bucket)
            .field("Key", encode_if(key, url))
            .field("ETag", &etag);
        Ok(Reply::xml(d.finish())
            .header("etag", etag)
            .header("x-oss-hash-crc64ecma", crc64))
    }

    pub(super) fn abort(&self, p: &Parsed, key: &str) -> Handled {
        let id = p.q("uploadId").unwrap_or_default();
        let mut store = self.state.store();
        if store.upload(id, &p.bucket, key).is_none() {
            return Err(errors::no_such_upload(id).into());
        }
        store.abort_upload(id);
        Ok(Reply::new(StatusCode::NO_CONTENT))
    }

    pub(super) fn list_parts(&self, p: &Parsed, key: &str) -> Handled {
        let id = p.q("uploadId").unwrap_or_default();
        let max: usize = parse_bounded(p.q("max-parts"), 1000, 1000, "max-parts")?;
        let marker: u32 =
            parse_bounded(p.q("part-number-marker"), 0, u32::MAX, "part-number-marker")?;
        let store = self.state.store();
        let upload = store
            .upload(id, &p.bucket, key)
            .ok_or_else(|| errors::no_such_upload(id))?;
        let after: Vec<(&u32, &Part)> = upload.parts.range(marker.saturating_add(1)..).collect();
        let page = &after[..after.len().min(max)];
        let truncated = after.len() > page.len();
        let url = p.url_encoding();
        let mut d = Doc::new("ListPartsResult");
        d.field("Bucket", &p.bucket)
            .field("Key", encode_if(key, url))
            .field("UploadId", id)
            .field("PartNumberMarker", marker)
            .field(
                "NextPartNumberMarker",
                page.last().map_or(marker, |(n, _)| **n),
            )
            .field("MaxParts", max)
            .field("IsTruncated", truncated);
        if url {
            d.field("EncodingType", "url");
        }
        for (n, part) in page {
            d.group(
                "Part",
                &[
                    ("PartNumber", n.to_string()),
                    ("LastModified", xml::iso8601(part.last_modified)),
                    ("ETag", part.etag.clone()),
                    ("HashCrc64ecma", part.crc64.to_string()),
                    ("Size", part.size.to_string()),
                ],
            );
        }
        Ok(Reply::xml(d.finish()))
    }
}
