//! OSS4-HMAC-SHA256 (OSS V4) request signing as pure functions of request parts, credentials and
//! an injected time. The same functions sign requests (client) and check them (emulator).
//!
//! Pinned to the vendor's published vectors; see the tests at the bottom of this file.

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use std::fmt;
use time::{format_description::BorrowedFormatItem, macros::format_description, OffsetDateTime};

/// The algorithm name that opens the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "OSS4-HMAC-SHA256";
/// The payload hash OSS V4 uses: the body is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The terminator of every V4 credential scope.
pub const SCOPE_TERMINATOR: &str = "aliyun_v4_request";
/// Longest validity of a presigned URL that OSS accepts (7 days).
pub const MAX_PRESIGN_EXPIRES_SECS: u64 = 604_800;

const ISO8601: &[BorrowedFormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
const DATE: &[BorrowedFormatItem<'static>] = format_description!("[year][month][day]");

/// RFC 3986 unreserved characters stay; everything else is `%XX` with upper-case hex.
const ENCODE_ALL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// As [`ENCODE_ALL`], but `/` stays: the canonical URI keeps its path separators.
const ENCODE_PATH: &AsciiSet = &ENCODE_ALL.remove(b'/');

/// An access key pair, with an optional STS security token. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The AccessKey ID (not secret; it appears in every `Authorization` header).
    pub access_key_id: String,
    access_key_secret: String,
    /// The STS security token, when the key pair is temporary.
    pub security_token: Option<String>,
}

impl Credentials {
    /// Builds credentials from a key pair and an optional STS token.
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<String>,
        security_token: Option<String>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token,
        }
    }

    /// The AccessKey secret, for signing only.
    pub fn access_key_secret(&self) -> &str {
        &self.access_key_secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"***")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// Where a signature is valid: a day, a region (`cn-hangzhou`, not `oss-cn-hangzhou`) and a
/// product (`oss`, or `oss-cloudbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// The region id.
    pub region: &'a str,
    /// The product, normally [`PRODUCT_OSS`].
    pub product: &'a str,
}

/// The product name of OSS in a V4 scope.
pub const PRODUCT_OSS: &str = "oss";

/// The parts of a request that a V4 signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The bucket, if the request names one. It is in the canonical URI whatever the addressing.
    pub bucket: Option<&'a str>,
    /// The object key, decoded, if the request names one.
    pub key: Option<&'a str>,
    /// Query parameters, decoded, in any order. An empty value signs as the bare name.
    pub query: &'a [(String, String)],
    /// Request headers (any case) with their values, in any order; repeated names are joined.
    pub headers: &'a [(String, String)],
    /// Extra header names to sign beyond the default ones (`x-oss-*`, `content-type`,
    /// `content-md5`); unknown, absent and default names are dropped.
    pub additional_headers: &'a [String],
}

/// Formats a time as V4's `x-oss-date` (`20231216T162057Z`).
pub fn format_datetime(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(ISO8601)
        .unwrap_or_default()
}

/// Parses V4's `x-oss-date` form (`20231216T162057Z`), as UTC.
pub fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    time::PrimitiveDateTime::parse(s, ISO8601)
        .ok()
        .map(|t| t.assume_utc())
}

fn format_date(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(DATE)
        .unwrap_or_default()
}

/// RFC 3986 encoding of a query name or value (`/` included).
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, ENCODE_ALL).to_string()
}

/// The canonical URI: `/bucket/key` encoded with `/` kept; `/bucket/` without a key; `/` alone.
pub fn canonical_uri(bucket: Option<&str>, key: Option<&str>) -> String {
    let raw = match (bucket, key) {
        (None, _) => return "/".to_owned(),
        (Some(b), None) => format!("/{b}/"),
        (Some(b), Some(k)) => format!("/{b}/{k}"),
    };
    utf8_percent_encode(&raw, ENCODE_PATH).to_string()
}

/// The canonical query string: encoded pairs sorted by encoded name, `name=value` or bare `name`.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (uri_encode(k), uri_encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn is_default_signed(lower_name: &str) -> bool {
    lower_name.starts_with("x-oss-") || lower_name == "content-type" || lower_name == "content-md5"
}

/// The additional header names that will really be signed: lower-cased, sorted, without the
/// default-signed names and without names the request does not carry (or carries empty).
pub fn effective_additional_headers(
    requested: &[String],
    headers: &[(String, String)],
) -> Vec<String> {
    let mut names: Vec<String> = requested
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty() && !is_default_signed(n))
        .filter(|n| {
            headers
                .iter()
                .any(|(h, v)| h.eq_ignore_ascii_case(n) && !v.trim().is_empty())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The canonical headers block: one `name:value\n` line per signed header, sorted by name.
fn canonical_headers(headers: &[(String, String)], additional: &[String]) -> String {
    let mut signed: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if !is_default_signed(&lower) && !additional.contains(&lower) {
            continue;
        }
        match signed.iter_mut().find(|(n, _)| *n == lower) {
            Some((_, values)) => values.push(value.trim()),
            None => signed.push((lower, vec![value.trim()])),
        }
    }
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    signed
        .iter()
        .map(|(n, v)| format!("{n}:{}\n", v.join(",")))
        .collect()
}

/// The canonical request, the text whose SHA-256 the string to sign carries.
pub fn canonical_request(parts: &RequestParts<'_>) -> String {
    let additional = effective_additional_headers(parts.additional_headers, parts.headers);
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        parts.method.to_ascii_uppercase(),
        canonical_uri(parts.bucket, parts.key),
        canonical_query(parts.query),
        canonical_headers(parts.headers, &additional),
        additional.join(";"),
        UNSIGNED_PAYLOAD
    )
}

/// The credential scope: `<yyyymmdd>/<region>/<product>/aliyun_v4_request`.
pub fn credential_scope(time: OffsetDateTime, scope: Scope<'_>) -> String {
    format!(
        "{}/{}/{}/{SCOPE_TERMINATOR}",
        format_date(time),
        scope.region,
        scope.product
    )
}

/// The string to sign for a canonical request at a time and scope.
pub fn string_to_sign(time: OffsetDateTime, scope: Scope<'_>, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        format_datetime(time),
        credential_scope(time, scope),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The hex signature of a string to sign, with the key derived from the secret, day and scope.
pub fn signature(
    secret: &str,
    time: OffsetDateTime,
    scope: Scope<'_>,
    string_to_sign: &str,
) -> String {
    let k1 = hmac(
        format!("aliyun_v4{secret}").as_bytes(),
        format_date(time).as_bytes(),
    );
    let k2 = hmac(&k1, scope.region.as_bytes());
    let k3 = hmac(&k2, scope.product.as_bytes());
    let k4 = hmac(&k3, SCOPE_TERMINATOR.as_bytes());
    hex::encode(hmac(&k4, string_to_sign.as_bytes()))
}

/// Signs request parts whose headers already carry `x-oss-date` (formatted from `time`),
/// `x-oss-content-sha256` and, with STS, `x-oss-security-token`. Returns the `Authorization`
/// header value.
pub fn authorization(
    creds: &Credentials,
    time: OffsetDateTime,
    scope: Scope<'_>,
    parts: &RequestParts<'_>,
) -> String {
    let sts = string_to_sign(time, scope, &canonical_request(parts));
    let sig = signature(creds.access_key_secret(), time, scope, &sts);
    let additional = effective_additional_headers(parts.additional_headers, parts.headers);
    let additional = if additional.is_empty() {
        String::new()
    } else {
        format!(",AdditionalHeaders={}", additional.join(";"))
    };
    format!(
        "{ALGORITHM} Credential={}/{}{additional},Signature={sig}",
        creds.access_key_id,
        credential_scope(time, scope)
    )
}

/// The headers a V4 header-signed request must carry before it is signed: `x-oss-date`,
/// `x-oss-content-sha256` and, with STS, `x-oss-security-token`.
pub fn signing_headers(creds: &Credentials, time: OffsetDateTime) -> Vec<(String, String)> {
    let mut h = vec![
        ("x-oss-date".to_owned(), format_datetime(time)),
        (
            "x-oss-content-sha256".to_owned(),
            UNSIGNED_PAYLOAD.to_owned(),
        ),
    ];
    if let Some(token) = &creds.security_token {
        h.push(("x-oss-security-token".to_owned(), token.clone()));
    }
    h
}

/// The query parameters a presigned URL carries before its signature (`x-oss-signature-version`,
/// `x-oss-date`, `x-oss-expires`, `x-oss-credential`, and, when present,
/// `x-oss-additional-headers` and `x-oss-security-token`). Add them to the request's own query,
/// compute [`presign_signature`], then append `x-oss-signature`.
pub fn presign_query(
    creds: &Credentials,
    time: OffsetDateTime,
    scope: Scope<'_>,
    expires_secs: u64,
    additional_headers: &[String],
) -> Vec<(String, String)> {
    let mut q = vec![
        ("x-oss-signature-version".to_owned(), ALGORITHM.to_owned()),
        ("x-oss-date".to_owned(), format_datetime(time)),
        ("x-oss-expires".to_owned(), expires_secs.to_string()),
        (
            "x-oss-credential".to_owned(),
            format!("{}/{}", creds.access_key_id, credential_scope(time, scope)),
        ),
    ];
    if !additional_headers.is_empty() {
        q.push((
            "x-oss-additional-headers".to_owned(),
            additional_headers.join(";"),
        ));
    }
    if let Some(token) = &creds.security_token {
        q.push(("x-oss-security-token".to_owned(), token.clone()));
    }
    q
}

/// The `x-oss-signature` of a presigned request whose query already holds [`presign_query`].
pub fn presign_signature(
    creds: &Credentials,
    time: OffsetDateTime,
    scope: Scope<'_>,
    parts: &RequestParts<'_>,
) -> String {
    let sts = string_to_sign(time, scope, &canonical_request(parts));
    signature(creds.access_key_secret(), time, scope, &sts)
}

#[cfg(test)]
mod tests {
    //! Every vector from the vendor's SDK tests (`oss-v4-signing-vectors.md`), intermediates included.
    use super::*;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    fn sdk_query() -> Vec<(String, String)> {
        pairs(&[
            ("param1", "value1"),
            ("+param1", "value3"),
            ("|param1", "value4"),
            ("+param2", ""),
            ("|param2", ""),
            ("param2", ""),
        ])
    }

    fn sdk_headers(content_type: &str) -> Vec<(String, String)> {
        pairs(&[
            ("x-oss-head1", "value"),
            ("abc", "value"),
            ("ZAbc", "value"),
            ("XYZ", "value"),
            ("content-type", content_type),
        ])
    }

    const HANGZHOU: Scope<'static> = Scope {
        region: "cn-hangzhou",
        product: PRODUCT_OSS,
    };
    const SDK_KEY: &str = "1234+-/123/1.txt";

    /// Header-mode request as the SDK vectors build it: SDK headers plus the signer's own.
    fn header_signed(
        creds: &Credentials,
        t: OffsetDateTime,
        scope: Scope<'_>,
        additional: &[String],
    ) -> (String, String, String) {
        let mut headers = sdk_headers("text/plain");
        headers.extend(signing_headers(creds, t));
        let query = sdk_query();
        let parts = RequestParts {
            method: "PUT",
            bucket: Some("bucket"),
            key: Some(SDK_KEY),
            query: &query,
            headers: &headers,
            additional_headers: additional,
        };
        let cr = canonical_request(&parts);
        let sts = string_to_sign(t, scope, &cr);
        (cr, sts, authorization(creds, t, scope, &parts))
    }

    const SDK_CANON_QUERY: &str =
        "%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2";

    #[test]
    fn vector_1_header_auth() {
        let creds = Credentials::new("ak", "sk", None);
        let (cr, sts, auth) = header_signed(&creds, at(1702743657), HANGZHOU, &[]);
        assert_eq!(
            cr,
            format!(
                "PUT\n/bucket/1234%2B-/123/1.txt\n{SDK_CANON_QUERY}\ncontent-type:text/plain\n\
                 x-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\n\
                 x-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
            )
        );
        assert_eq!(
            sts,
            "OSS4-HMAC-SHA256\n20231216T162057Z\n20231216/cn-hangzhou/oss/aliyun_v4_request\n\
             f4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4"
        );
        assert_eq!(
            auth,
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
             Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
        );
    }

    #[test]
    fn vector_2_header_auth_with_sts_token() {
        let creds = Credentials::new("ak", "sk", Some("token".into()));
        let (cr, sts, auth) = header_signed(&creds, at(1702784856), HANGZHOU, &[]);
        assert!(cr.contains("x-oss-head1:value\nx-oss-security-token:token\n\n\n"));
        assert!(sts.ends_with("69494678fb11579d4ee12996e2796d9e2ba43c34aa4c723c4aec018f3d6b86b8"));
        assert_eq!(
            auth,
            "OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,\
             Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea"
        );
    }

    #[test]
    fn vector_3_header_auth_with_additional_headers() {
        let creds = Credentials::new("ak", "sk", None);
        let expected = "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
             AdditionalHeaders=abc;zabc,\
             Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f";
        let plain: Vec<String> = vec!["ZAbc".into(), "abc".into()];
        let (cr, sts, auth) = header_signed(&creds, at(1702747512), HANGZHOU, &plain);
        assert_eq!(
            cr,
            format!(
                "PUT\n/bucket/1234%2B-/123/1.txt\n{SDK_CANON_QUERY}\nabc:value\n\
                 content-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\n\
                 x-oss-date:20231216T172512Z\nx-oss-head1:value\nzabc:value\n\n\
                 abc;zabc\nUNSIGNED-PAYLOAD"
            )
        );
        assert!(sts.ends_with("16b86004ed2cc3406dd7a13081bd940ef6a5ad49e508da2d4fdf84e8a5dd2145"));
        assert_eq!(auth, expected);
        // Default-signed and absent names are dropped: same result.
        let noisy: Vec<String> = ["x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            header_signed(&creds, at(1702747512), HANGZHOU, &noisy).2,
            expected
        );
    }

    #[test]
    fn vector_4_cloudbox_product() {
        let creds = Credentials::new("ak", "sk", None);
        let scope = Scope {
            region: "cb-123",
            product: "oss-cloudbox",
        };
        let (_, sts, auth) = header_signed(&creds, at(1702743657), scope, &[]);
        assert!(sts.ends_with("f4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4"));
        assert_eq!(
            auth,
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cb-123/oss-cloudbox/aliyun_v4_request,\
             Signature=94ce1f12c17d148ea681030275a94449d3357f5b5b21133996eec80af3e08a43"
        );
    }

    /// Presigns the SDK's PUT; returns (canonical request, string to sign, signature).
    fn presigned(
        creds: &Credentials,
        t: OffsetDateTime,
        expires: u64,
        additional: &[String],
    ) -> (String, String, String) {
        let headers = sdk_headers("application/octet-stream");
        let mut query = sdk_query();
        let effective = effective_additional_headers(additional, &headers);
        query.extend(presign_query(creds, t, HANGZHOU, expires, &effective));
        let parts = RequestParts {
            method: "PUT",
            bucket: Some("bucket"),
            key: Some(SDK_KEY),
            query: &query,
            headers: &headers,
            additional_headers: additional,
        };
        let cr = canonical_request(&parts);
        let sts = string_to_sign(t, HANGZHOU, &cr);
        (cr, sts, presign_signature(creds, t, HANGZHOU, &parts))
    }

    #[test]
    fn vector_5_presigned() {
        let creds = Credentials::new("ak", "sk", None);
        let (cr, sts, sig) = presigned(&creds, at(1702781677), 599, &[]);
        assert_eq!(
            cr,
            format!(
                "PUT\n/bucket/1234%2B-/123/1.txt\n{SDK_CANON_QUERY}&x-oss-credential=ak%2F20231217%2F\
                 cn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20231217T025437Z&x-oss-expires=599\
                 &x-oss-signature-version=OSS4-HMAC-SHA256\ncontent-type:application/octet-stream\n\
                 x-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
            )
        );
        assert!(sts.ends_with("48814c11f278d51662015bf2f896b66ca10b6de0187ed8d952e341bbce0aa336"));
        assert_eq!(
            sig,
            "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"
        );
        // The vendor's long-expiry case.
        assert_eq!(
            presigned(&creds, at(1702781677), 432_000, &[]).2,
            "31029123dc7732d2d2cfd4006ea4fdb6cf86da6478f813e2bf8f87877c7b9fec"
        );
    }

    #[test]
    fn vector_6_presigned_with_sts_token() {
        let creds = Credentials::new("ak", "sk", Some("token".into()));
        let (cr, sts, sig) = presigned(&creds, at(1702785388), 599, &[]);
        assert!(cr.contains(
            "&x-oss-expires=599&x-oss-security-token=token&x-oss-signature-version=OSS4-HMAC-SHA256\n"
        ));
        assert!(sts.ends_with("458705026c021c95dd317d008cff79df19ce99bf2b241d1ecb20f4d65bb851a5"));
        assert_eq!(
            sig,
            "3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5"
        );
    }

    #[test]
    fn vector_7_presigned_with_additional_headers() {
        let creds = Credentials::new("ak", "sk", None);
        let additional: Vec<String> = vec!["ZAbc".into(), "abc".into()];
        let (cr, sts, sig) = presigned(&creds, at(1702783809), 599, &additional);
        assert!(cr.contains("param2&x-oss-additional-headers=abc%3Bzabc&x-oss-credential="));
        assert!(cr.ends_with(
            "abc:value\ncontent-type:application/octet-stream\nx-oss-head1:value\nzabc:value\n\n\
             abc;zabc\nUNSIGNED-PAYLOAD"
        ));
        assert!(sts.ends_with("e06541af14a8dc30dd12d3b75557af47f405e37784a76eae1a844c3426777df9"));
        assert_eq!(
            sig,
            "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7"
        );
    }

    #[test]
    fn vector_8_realistic_put_object() {
        let creds = Credentials::new("testid", "yourAccessKeySecret", None);
        let t = at(1744353684);
        let mut headers = pairs(&[
            ("Content-Disposition", "attachment"),
            ("Content-Length", "3"),
            ("Content-MD5", "ICy5YqxZB1uWSwcVLSNLcA=="),
            ("Content-Type", "text/plain"),
        ]);
        headers.extend(signing_headers(&creds, t));
        let additional: Vec<String> = vec!["content-disposition".into(), "content-length".into()];
        let parts = RequestParts {
            method: "PUT",
            bucket: Some("examplebucket"),
            key: Some("exampleobject"),
            query: &[],
            headers: &headers,
            additional_headers: &additional,
        };
        let cr = canonical_request(&parts);
        assert_eq!(
            cr,
            "PUT\n/examplebucket/exampleobject\n\ncontent-disposition:attachment\n\
             content-length:3\ncontent-md5:ICy5YqxZB1uWSwcVLSNLcA==\ncontent-type:text/plain\n\
             x-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20250411T064124Z\n\n\
             content-disposition;content-length\nUNSIGNED-PAYLOAD"
        );
        assert!(string_to_sign(t, HANGZHOU, &cr)
            .ends_with("c46d96390bdbc2d739ac9363293ae9d710b14e48081fcb22cd8ad54b63136eca"));
        let auth = authorization(&creds, t, HANGZHOU, &parts);
        assert!(auth.ends_with(
            "Signature=d3694c2dfc5371ee6acd35e88c4871ac95a7ba01d3a2f476768fe61218590097"
        ));
    }

    #[test]
    fn vector_9_presigned_get_with_host() {
        let creds = Credentials::new("testid", "yourAccessKeySecret", None);
        let t = at(1733196187);
        let headers = pairs(&[("host", "examplebucket.oss-cn-hangzhou.aliyuncs.com")]);
        let additional: Vec<String> = vec!["host".into()];
        let query = presign_query(&creds, t, HANGZHOU, 86_400, &additional);
        let parts = RequestParts {
            method: "GET",
            bucket: Some("examplebucket"),
            key: Some("exampleobject"),
            query: &query,
            headers: &headers,
            additional_headers: &additional,
        };
        assert_eq!(
            canonical_request(&parts),
            "GET\n/examplebucket/exampleobject\nx-oss-additional-headers=host&x-oss-credential=\
             testid%2F20241203%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20241203T032307Z\
             &x-oss-expires=86400&x-oss-signature-version=OSS4-HMAC-SHA256\n\
             host:examplebucket.oss-cn-hangzhou.aliyuncs.com\n\nhost\nUNSIGNED-PAYLOAD"
        );
        assert_eq!(
            presign_signature(&creds, t, HANGZHOU, &parts),
            "a9ad2ce702a93c7c36ace35dd4e1b80cb76a999c890d7dfe78ff342a23dac8e0"
        );
    }

    #[test]
    fn canonical_uri_forms() {
        assert_eq!(canonical_uri(None, None), "/");
        assert_eq!(canonical_uri(Some("b"), None), "/b/");
        assert_eq!(
            canonical_uri(Some("b"), Some("a b/ü?#&=%+")),
            "/b/a%20b/%C3%BC%3F%23%26%3D%25%2B"
        );
    }

    #[test]
    fn datetime_round_trips() {
        let t = at(1702743657);
        assert_eq!(format_datetime(t), "20231216T162057Z");
        assert_eq!(parse_datetime("20231216T162057Z"), Some(t));
        assert_eq!(parse_datetime("2023-12-16"), None);
    }

    #[test]
    fn debug_masks_secrets() {
        let c = Credentials::new("AKID", "the-secret-value", Some("the-token".into()));
        let shown = format!("{c:?}");
        assert!(shown.contains("AKID"));
        assert!(!shown.contains("the-secret-value"));
        assert!(!shown.contains("the-token"));
    }
}
