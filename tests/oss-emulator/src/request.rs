//! Pure request parsing: addressing, query, object metadata headers, ranges and OSS's limits.

use crate::error::{errors, OssError};
use http::StatusCode;
use percent_encoding::percent_decode_str;
use std::net::IpAddr;

/// Largest object PutObject (and one part) accepts: 5 GB.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest size of every part but the last at CompleteMultipartUpload: 100 KB.
pub const MIN_PART_SIZE: u64 = 100 * 1024;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Longest key in bytes.
pub const MAX_KEY_BYTES: usize = 1023;
/// Largest total size of `x-oss-meta-*` names and values.
pub const MAX_USER_META_BYTES: usize = 8 * 1024;
/// Most tags on one object.
pub const MAX_TAGS: usize = 10;

/// Standard headers OSS stores with an object and returns on GET and HEAD.
pub const STANDARD_HEADERS: [&str; 6] = [
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// Storage classes OSS accepts.
pub const STORAGE_CLASSES: [&str; 5] = [
    "Standard",
    "IA",
    "Archive",
    "ColdArchive",
    "DeepColdArchive",
];

/// The bucket and key a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Bucket, if any.
    pub bucket: Option<String>,
    /// Decoded key, if any.
    pub key: Option<String>,
    /// True when the bucket came from the host name.
    pub virtual_hosted: bool,
}

/// Whether a host (without port) uses path-style addressing: IPs, `localhost`, and endpoint
/// names of fewer than three labels. `bucket.localhost` and `bucket.oss-region.aliyuncs.com`
/// are virtual-hosted.
pub fn is_path_style_host(host: &str) -> bool {
    if host.starts_with('[') || host.parse::<IpAddr>().is_ok() || host == "localhost" {
        return true;
    }
    if host.ends_with(".localhost") {
        return false;
    }
    host.split('.').count() < 3
}

/// Strips the port from a `Host` header value.
pub fn host_without_port(host: &str) -> &str {
    if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        return &host[..end + 2];
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn decode_key(raw: &str) -> Result<String, OssError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| invalid_object_name("The key is not valid UTF-8"))
}

fn invalid_object_name(msg: &str) -> OssError {
    OssError::new(StatusCode::BAD_REQUEST, "InvalidObjectName", msg)
}

/// Works out bucket and key from the `Host` header and the raw (encoded) path.
pub fn target(host: &str, raw_path: &str) -> Result<Target, OssError> {
    let host = host_without_port(host);
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let (bucket, raw_key, virtual_hosted) = if is_path_style_host(host) {
        match path.split_once('/') {
            Some((b, k)) => (b.to_owned(), k, false),
            None => (path.to_owned(), "", false),
        }
    } else {
        let bucket = host.split('.').next().unwrap_or_default().to_owned();
        (bucket, path, true)
    };
    if bucket.is_empty() {
        return Ok(Target {
            bucket: None,
            key: None,
            virtual_hosted,
        });
    }
    check_bucket_name(&bucket)?;
    let key = if raw_key.is_empty() {
        None
    } else {
        let key = decode_key(raw_key)?;
        check_key(&key)?;
        Some(key)
    };
    Ok(Target {
        bucket: Some(bucket),
        key,
        virtual_hosted,
    })
}

/// OSS bucket names: 3 to 63 of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn check_bucket_name(name: &str) -> Result<(), OssError> {
    let ok = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(OssError::new(
            StatusCode::BAD_REQUEST,
            "InvalidBucketName",
            "The specified bucket is not valid.",
        )
        .with("BucketName", name))
    }
}

/// OSS keys: 1 to 1023 bytes of UTF-8, not starting with `/` or `\`.
pub fn check_key(key: &str) -> Result<(), OssError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(invalid_object_name(
            "The length of the object name must be between 1 and 1023 bytes.",
        ));
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err(invalid_object_name(
            "The object name must not start with '/' or '\\'.",
        ));
    }
    Ok(())
}

/// Splits and percent-decodes a raw query string (`+` stays a plus, as OSS signs it).
pub fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, OssError> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(Vec::new());
    };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| errors::invalid_argument("Query parameter is not valid UTF-8"))
            };
            Ok((dec(k)?, dec(v)?))
        })
        .collect()
}

/// Metadata given with PutObject or InitiateMultipartUpload.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GivenMeta {
    /// Standard headers and `x-oss-meta-*`, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Storage class.
    pub storage_class: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
}

/// Reads and checks the metadata headers of an upload.
pub fn given_meta(headers: &[(String, String)]) -> Result<GivenMeta, OssError> {
    let mut kept = Vec::new();
    let mut user_bytes = 0;
    for (name, value) in headers {
        if STANDARD_HEADERS.contains(&name.as_str()) {
            kept.push((name.clone(), value.clone()));
        } else if let Some(suffix) = name.strip_prefix("x-oss-meta-") {
            if suffix.is_empty() {
                return Err(errors::invalid_argument("x-oss-meta- needs a name"));
            }
            user_bytes += name.len() + value.len();
            kept.push((name.clone(), value.clone()));
        }
    }
    if user_bytes > MAX_USER_META_BYTES {
        return Err(errors::invalid_argument(format!(
            "User metadata is {user_bytes} bytes; it must not exceed 8 KB."
        )));
    }
    let storage_class = match headers.iter().find(|(n, _)| n == "x-oss-storage-class") {
        None => "Standard".to_owned(),
        Some((_, v)) => STORAGE_CLASSES
            .iter()
            .find(|c| c.eq_ignore_ascii_case(v))
            .map(|c| (*c).to_owned())
            .ok_or_else(|| errors::invalid_argument(format!("Invalid storage class: {v}")))?,
    };
    let tags = match headers.iter().find(|(n, _)| n == "x-oss-tagging") {
        None => Vec::new(),
        Some((_, v)) => parse_tagging(v)?,
    };
    Ok(GivenMeta {
        headers: kept,
        storage_class,
        tags,
    })
}

/// Whether a character may appear in a tag key or value: ASCII letters and digits, space, and
/// `+ - = . _ : /` (OSS's rule, error EC 0010-00000217).
pub fn tag_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ' ' | '+' | '-' | '=' | '.' | '_' | ':' | '/')
}

fn invalid_tag(msg: impl Into<String>) -> OssError {
    OssError::new(StatusCode::BAD_REQUEST, "InvalidTag", msg)
}

/// Parses and checks `x-oss-tagging` (`k1=v1&k2=v2`, URL-encoded) as OSS does for PutObject,
/// InitiateMultipartUpload and CopyObject: at most 10 tags with distinct keys of 1 to 128
/// characters and values of 0 to 256, of letters, digits, space and `+ - = . _ : /`, each pair
/// `key` or `key=value` (a second raw `=` is refused). Any breach is 400 `InvalidTag`.
pub fn parse_tagging(raw: &str) -> Result<Vec<(String, String)>, OssError> {
    if let Some(pair) = raw.split('&').find(|p| p.matches('=').count() > 1) {
        return Err(invalid_tag(format!(
            "The tag {pair:?} is not in key or key=value format."
        )));
    }
    let tags = parse_query(Some(raw)).map_err(|_| invalid_tag("A tag is not valid UTF-8."))?;
    if tags.len() > MAX_TAGS {
        return Err(invalid_tag("An object can have at most 10 tags."));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(invalid_tag(
                "Tag keys must be 1 to 128 characters and values at most 256.",
            ));
        }
        if !k.chars().chain(v.chars()).all(tag_char_ok) {
            return Err(invalid_tag(format!(
                "The tag {k:?} has a character outside letters, digits, space and + - = . _ : /."
            )));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(invalid_tag(format!("Duplicate tag key: {k}")));
        }
    }
    Ok(tags)
}

/// The result of reading a `Range` header against an object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one OSS ignores: the whole object, 200.
    Whole,
    /// Bytes `start..end` (end exclusive), 206.
    Part(u64, u64),
    /// Unsatisfiable with `x-oss-range-behavior: standard`: 416.
    Unsatisfiable,
}

/// Reads a single `bytes=` range. Like OSS, an invalid or unsatisfiable range returns the whole
/// object unless the request asks for standard behaviour.
pub fn parse_range(header: Option<&str>, size: u64, standard: bool) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    let fallback = if standard {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Whole
    };
    let Some((a, b)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return fallback;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, false) => b
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .map(|n| (size.saturating_sub(n), size)),
        (false, true) => a.parse::<u64>().ok().map(|s| (s, size)),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, (e + 1).min(size))),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        Some((s, e)) if s < e && s < size => RangeRequest::Part(s, e),
        _ => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addressing_styles() {
        let t = target("127.0.0.1:9000", "/bkt/a%20b/c%2Bd").unwrap();
        assert_eq!(
            (t.bucket.as_deref(), t.key.as_deref()),
            (Some("bkt"), Some("a b/c+d"))
        );
        let t = target("bkt.localhost:9000", "/a+b").unwrap();
        assert_eq!(
            (t.bucket.as_deref(), t.key.as_deref(), t.virtual_hosted),
            (Some("bkt"), Some("a+b"), true)
        );
        let t = target("bkt.oss-cn-hangzhou.aliyuncs.com", "/").unwrap();
        assert_eq!((t.bucket.as_deref(), t.key), (Some("bkt"), None));
        let t = target("localhost", "/").unwrap();
        assert_eq!(t.bucket, None);
        let t = target("[::1]:80", "/bkt").unwrap();
        assert_eq!((t.bucket.as_deref(), t.key), (Some("bkt"), None));
        let t = target("127.0.0.1", "/bkt/a//b/../").unwrap();
        assert_eq!(t.key.as_deref(), Some("a//b/../"));
    }

    #[test]
    fn key_and_bucket_limits() {
        let code = |h: &str, p: &str| target(h, p).unwrap_err().code;
        assert_eq!(code("127.0.0.1", "/bkt//lead"), "InvalidObjectName");
        assert_eq!(code("127.0.0.1", "/bkt/%5Clead"), "InvalidObjectName");
        assert_eq!(code("127.0.0.1", "/bkt/%FF"), "InvalidObjectName");
        assert_eq!(
            code("127.0.0.1", &format!("/bkt/{}", "k".repeat(1024))),
            "InvalidObjectName"
        );
        assert!(target("127.0.0.1", &format!("/bkt/{}", "k".repeat(1023))).is_ok());
        assert_eq!(code("127.0.0.1", "/Bad_Bucket/k"), "InvalidBucketName");
        assert_eq!(code("127.0.0.1", "/ab/k"), "InvalidBucketName");
    }

    #[test]
    fn query_keeps_plus_and_bare_names() {
        let q = parse_query(Some("uploads&prefix=a%20b+c&max-keys=")).unwrap();
        assert_eq!(
            q,
            vec![
                ("uploads".into(), "".into()),
                ("prefix".into(), "a b+c".into()),
                ("max-keys".into(), "".into())
            ]
        );
    }

    fn h(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect()
    }

    #[test]
    fn metadata_is_kept_and_checked() {
        let m = given_meta(&h(&[
            ("content-type", "text/plain"),
            ("x-oss-meta-a", "1"),
            ("x-oss-storage-class", "ia"),
            ("x-oss-tagging", "k=v&k2=v%202"),
            ("user-agent", "x"),
        ]))
        .unwrap();
        assert_eq!(m.headers.len(), 2);
        assert_eq!(m.storage_class, "IA");
        assert_eq!(m.tags[1], ("k2".into(), "v 2".into()));
        let code = |v: &[(&str, &str)]| given_meta(&h(v)).unwrap_err().code;
        assert_eq!(
            code(&[("x-oss-storage-class", "Glacier")]),
            "InvalidArgument"
        );
        let big = "v".repeat(MAX_USER_META_BYTES);
        assert_eq!(code(&[("x-oss-meta-big", &big)]), "InvalidArgument");
        let many = (0..11)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(code(&[("x-oss-tagging", &many)]), "InvalidTag");
        assert_eq!(code(&[("x-oss-tagging", "a=1&a=2")]), "InvalidTag");
    }

    #[test]
    fn tags_follow_oss_rules() {
        let ten = (0..10)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join("&");
        let k128 = "k".repeat(128);
        let v256 = format!("k={}", "v".repeat(256));
        for ok in [
            "a",
            "a=",
            "a=1&b=2",
            "A-z_0.9:/+=x%3D",
            "a%20b=c%20d",
            ten.as_str(),
            k128.as_str(),
            v256.as_str(),
        ] {
            assert!(parse_tagging(ok).is_ok(), "{ok:?}");
        }
        let k129 = "k".repeat(129);
        let v257 = format!("k={}", "v".repeat(257));
        let eleven = format!("{ten}&k10=v");
        for bad in [
            "=v",
            k129.as_str(),
            v257.as_str(),
            eleven.as_str(),
            "a=1&a=2",
            "aa=bb=cc",
            "a=b%40c",
            "a%23=b",
            "a=%C3%A9",
            "a=b%26c%3Dd%3Ce",
        ] {
            let e = parse_tagging(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (400, "InvalidTag"), "{bad:?}");
        }
    }

    #[test]
    fn ranges_like_oss() {
        use RangeRequest::*;
        assert_eq!(parse_range(None, 10, false), Whole);
        assert_eq!(parse_range(Some("bytes=0-4"), 10, false), Part(0, 5));
        assert_eq!(parse_range(Some("bytes=5-"), 10, false), Part(5, 10));
        assert_eq!(parse_range(Some("bytes=-3"), 10, false), Part(7, 10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10, false), Part(8, 10));
        assert_eq!(parse_range(Some("bytes=20-30"), 10, false), Whole);
        assert_eq!(parse_range(Some("bytes=20-30"), 10, true), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10, false), Whole);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10, false), Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10, true), Whole);
        assert_eq!(parse_range(Some("bytes=0-0"), 0, false), Whole);
    }
}
