//! OSS4-HMAC-SHA256 (OSS V4) request signing as pure functions of request parts, credentials and
//! an injected time. The same functions sign requests (client) and check them (emulator).
//!
//! Pinned to the vendor's published vectors; see the tests in `signing/tests.rs`.

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
    // A header-signed request's signature is computed as a presigned one's, from its parts.
    let sig = presign_signature(creds, time, scope, parts);
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
    let date = ("x-oss-date".to_owned(), format_datetime(time));
    let payload = (
        "x-oss-content-sha256".to_owned(),
        UNSIGNED_PAYLOAD.to_owned(),
    );
    with_security_token(vec![date, payload], creds)
}

/// `params` with `x-oss-security-token` added when the credentials are STS ones.
fn with_security_token(
    mut params: Vec<(String, String)>,
    creds: &Credentials,
) -> Vec<(String, String)> {
    if let Some(token) = &creds.security_token {
        params.push(("x-oss-security-token".to_owned(), token.clone()));
    }
    params
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
    with_security_token(q, creds)
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
mod tests;
