//! Object operations: PutObject, GetObject and HeadObject (ranges, conditions, response
//! overrides), DeleteObject, GetObjectTagging, and CopyObject (refused after its tag check).

use super::body::stream_body;
use super::{internal, not_implemented, Ctx, Handled, Parsed, Reply};
use crate::error::{errors, OssError};
use crate::request::{self, RangeRequest};
use crate::store::{slice_segments, Object, ObjectMeta, ObjectType};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use http::{Method, StatusCode};
use std::sync::Arc;
use std::time::SystemTime;

pub(super) fn quoted_md5(md5: &[u8]) -> String {
    format!("\"{}\"", hex::encode_upper(md5))
}

pub(super) fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"')
        .eq_ignore_ascii_case(b.trim_matches('"'))
}

impl Ctx<'_> {
    pub(super) fn meta_from(&self, p: &Parsed) -> Result<ObjectMeta, OssError> {
        let given = request::given_meta(&p.headers)?;
        Ok(ObjectMeta {
            size: 0,
            etag: String::new(),
            crc64: 0,
            content_md5: None,
            last_modified: SystemTime::now(),
            object_type: ObjectType::Normal,
            headers: given.headers,
            storage_class: given.storage_class,
            tags: given.tags,
        })
    }

    pub(super) fn commit(&self, bucket: &str, key: &str, object: Object) -> Result<(), OssError> {
        if let Some(disk) = &self.state.disk {
            disk.save(bucket, key, &object)
                .map_err(|e| internal(&format!("persisting the object failed: {e}")))?;
        }
        self.state.store().put(bucket, key, object);
        Ok(())
    }

    fn check_overwrite(&self, p: &Parsed, key: &str) -> Result<(), OssError> {
        let forbid = p
            .h("x-oss-forbid-overwrite")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if forbid && self.state.store().get(&p.bucket, key).is_some() {
            return Err(OssError::new(
                StatusCode::CONFLICT,
                "FileAlreadyExists",
                "The object you specified already exists and can not be overwritten.",
            )
            .with("Key", key));
        }
        Ok(())
    }

    pub(super) async fn put_object(&self, mut p: Parsed, key: &str) -> Handled {
        let mut meta = self.meta_from(&p)?;
        self.check_overwrite(&p, key)?;
        let body = self.read_body(&mut p, request::MAX_PUT_SIZE).await?;
        self.check_overwrite(&p, key)?;
        let content_md5 = B64.encode(body.md5);
        meta.size = body.size;
        meta.etag = quoted_md5(&body.md5);
        meta.crc64 = body.crc64;
        meta.content_md5 = Some(content_md5.clone());
        meta.last_modified = SystemTime::now();
        let etag = meta.etag.clone();
        self.commit(
            &p.bucket,
            key,
            Object {
                meta,
                body: Arc::new(body.segments),
            },
        )?;
        Ok(Reply::new(StatusCode::OK)
            .header("etag", etag)
            .header("x-oss-hash-crc64ecma", body.crc64)
            .header("content-md5", content_md5))
    }

    /// CopyObject is not implemented; tags are checked first, as OSS does, so a bad
    /// x-oss-tagging is refused alike.
    pub(super) fn copy_object(&self, p: &Parsed) -> Handled {
        if let Some(tags) = p.h("x-oss-tagging") {
            request::parse_tagging(tags)?;
        }
        Err(not_implemented("CopyObject").into())
    }

    fn lookup(&self, p: &Parsed, key: &str) -> Result<Object, OssError> {
        self.state
            .store()
            .get(&p.bucket, key)
            .ok_or_else(|| errors::no_such_key(key))
    }

    pub(super) fn get_tagging(&self, p: &Parsed, key: &str) -> Handled {
        let object = self.lookup(p, key)?;
        let mut x =
            String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Tagging>\n  <TagSet>\n");
        for (k, v) in &object.meta.tags {
            x.push_str(&format!(
                "    <Tag><Key>{}</Key><Value>{}</Value></Tag>\n",
                crate::error::escape(k),
                crate::error::escape(v)
            ));
        }
        x.push_str("  </TagSet>\n</Tagging>\n");
        Ok(Reply::xml(x))
    }

    pub(super) fn get_object(&self, p: &Parsed, key: &str) -> Handled {
        let object = self.lookup(p, key)?;
        let meta = &object.meta;
        if let Some(want) = p.h("if-match") {
            if !same_etag(want, &meta.etag) {
                return Err(OssError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold.",
                )
                .with("Condition", "If-Match")
                .into());
            }
        }
        if p.h("if-none-match")
            .is_some_and(|v| same_etag(v, &meta.etag))
        {
            return Ok(Reply::new(StatusCode::NOT_MODIFIED).header("etag", &meta.etag));
        }
        let standard = p.h("x-oss-range-behavior") == Some("standard");
        let range = request::parse_range(p.h("range"), meta.size, standard);
        let mut reply = Reply::new(StatusCode::OK)
            .header("etag", &meta.etag)
            .header("last-modified", httpdate::fmt_http_date(meta.last_modified))
            .header("accept-ranges", "bytes")
            .header("x-oss-object-type", meta.object_type.as_str())
            .header("x-oss-hash-crc64ecma", meta.crc64)
            .header("x-oss-storage-class", &meta.storage_class);
        if !meta.headers.iter().any(|(n, _)| n == "content-type") {
            reply = reply.header("content-type", "application/octet-stream");
        }
        for (n, v) in &meta.headers {
            let overridden = p.q(&format!("response-{n}"));
            reply = reply.header(n, overridden.unwrap_or(v));
        }
        if !meta.tags.is_empty() {
            reply = reply.header("x-oss-tagging-count", meta.tags.len());
        }
        let (start, end) = match range {
            RangeRequest::Whole => {
                if let Some(md5) = &meta.content_md5 {
                    reply = reply.header("content-md5", md5);
                }
                (0, meta.size)
            }
            RangeRequest::Part(s, e) => {
                reply.status = StatusCode::PARTIAL_CONTENT;
                reply = reply.header(
                    "content-range",
                    format!("bytes {s}-{}/{}", e - 1, meta.size),
                );
                (s, e)
            }
            RangeRequest::Unsatisfiable => {
                return Err(OssError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "InvalidRange",
                    "The requested range cannot be satisfied.",
                )
                .with("ActualObjectSize", meta.size.to_string())
                .into());
            }
        };
        reply = reply.header("content-length", end - start);
        if p.method == Method::HEAD {
            return Ok(reply);
        }
        let segments = slice_segments(&object.body, start, end);
        let reset_at = self.reset.then_some((end - start) / 2);
        if self.trickle.is_some() {
            self.state.faults.note_trickle();
        }
        Ok(reply.body(stream_body(segments, self.trickle, reset_at)))
    }

    pub(super) fn delete_object(&self, p: &Parsed, key: &str) -> Handled {
        if let Some(disk) = &self.state.disk {
            disk.remove(&p.bucket, key)
                .map_err(|e| internal(&format!("removing the object failed: {e}")))?;
        }
        self.state.store().delete(&p.bucket, key);
        Ok(Reply::new(StatusCode::NO_CONTENT))
    }
}
