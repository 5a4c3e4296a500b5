//! OSS's header mapping of the stores' object types: metadata to request headers and back, and a
//! HEAD's answer read into an [`ObjectHead`].

use crate::store::object::{ObjectHead, ObjectMetadata};
use http::HeaderMap;

/// One of the metadata's fields.
type Field = fn(&ObjectMetadata) -> &Option<String>;

/// The standard headers OSS stores with an object, each with the metadata field it carries.
const STANDARD: [(&str, Field); 6] = [
    ("content-type", |m| &m.content_type),
    ("cache-control", |m| &m.cache_control),
    ("content-disposition", |m| &m.content_disposition),
    ("content-encoding", |m| &m.content_encoding),
    ("content-language", |m| &m.content_language),
    ("expires", |m| &m.expires),
];

impl ObjectMetadata {
    /// The request headers that set this metadata on upload.
    pub fn to_headers(&self) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = STANDARD
            .iter()
            .filter_map(|(n, field)| field(self).as_ref().map(|v| ((*n).to_owned(), v.clone())))
            .collect();
        for (k, v) in &self.user {
            h.push((format!("x-oss-meta-{k}"), v.clone()));
        }
        if let Some(c) = &self.storage_class {
            h.push(("x-oss-storage-class".into(), c.clone()));
        }
        if let Some(t) = &self.tagging {
            h.push(("x-oss-tagging".into(), t.clone()));
        }
        h
    }

    /// Reads the metadata from response headers (tags are not in them; see `tagging_count`).
    pub fn from_headers(h: &HeaderMap) -> Self {
        let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let mut user: Vec<(String, String)> = h
            .iter()
            .filter_map(|(n, v)| {
                let name = n.as_str().strip_prefix("x-oss-meta-")?;
                Some((name.to_owned(), v.to_str().ok()?.to_owned()))
            })
            .collect();
        user.sort();
        Self {
            content_type: get("content-type"),
            cache_control: get("cache-control"),
            content_disposition: get("content-disposition"),
            content_encoding: get("content-encoding"),
            content_language: get("content-language"),
            expires: get("expires"),
            user,
            storage_class: get("x-oss-storage-class"),
            tagging: None,
        }
    }
}

pub(crate) fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl ObjectHead {
    /// Reads what HeadObject's (or GetObject's) answer headers say.
    pub(crate) fn from_headers(h: &HeaderMap) -> Self {
        Self {
            size: header_str(h, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            etag: header_str(h, "etag").unwrap_or_default().to_owned(),
            crc64: header_str(h, "x-oss-hash-crc64ecma").and_then(|v| v.parse().ok()),
            last_modified: header_str(h, "last-modified").map(str::to_owned),
            object_type: header_str(h, "x-oss-object-type").map(str::to_owned),
            tagging_count: header_str(h, "x-oss-tagging-count")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            metadata: ObjectMetadata::from_headers(h),
            request_id: header_str(h, "x-oss-request-id")
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_to_headers_and_back() {
        let m = ObjectMetadata {
            content_type: Some("text/plain".into()),
            expires: Some("Wed, 21 Oct 2026 07:28:00 GMT".into()),
            user: vec![("a".into(), "1".into())],
            storage_class: Some("IA".into()),
            ..ObjectMetadata::default()
        };
        let mut h = HeaderMap::new();
        for (k, v) in m.to_headers() {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        assert_eq!(ObjectMetadata::from_headers(&h), m);
    }
}
