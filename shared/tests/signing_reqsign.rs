//! A third implementation of OSS V4 signing agrees with the project's signer.
//!
//! The project's signer (`oss::signing`) is pinned to the vendor's published vectors (the tests in
//! `signing.rs`) and is checked through the emulator by the official Python SDK
//! (`tests/python/test_oss_sdk.py`). Here `reqsign-aliyun-oss`, Apache OpenDAL's OSS signer,
//! signs the same requests: first the vendor's own example, then the requests the client really
//! sends (every operation, odd keys, STS tokens, both addressing styles), then arbitrary requests.
//! Every signature must be the same, byte for byte.
//!
//! reqsign signs at the current time only (its clock is settable in its own tests alone), so each
//! request is signed by reqsign first, and the project's signer then signs it at the time reqsign
//! put in `x-oss-date`.

use proptest::prelude::*;
use reqsign_aliyun_oss::{Credential, RequestSigner, SigningVersion};
use reqsign_core::{Context, SignRequest};
use s3_oss_sync::oss::endpoint::encode_query;
use s3_oss_sync::oss::signing::{self, Credentials, RequestParts, Scope};
use s3_oss_sync::oss::{Addressing, Endpoint, Network};
use time::OffsetDateTime;

/// RFC 3986 unreserved characters and `/` stay.
const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

const AK: &str = "LTAI5tExampleKeyId";
const SK: &str = "example/Secret+Key=";

/// One request as the client would send it.
#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    bucket: String,
    key: Option<String>,
    query: Vec<(String, String)>,
    /// Headers besides the ones signing adds (`x-oss-date`, `x-oss-content-sha256`, the token).
    headers: Vec<(String, String)>,
    /// Names of headers signed beyond the default set (reqsign signs every header it is given,
    /// so only these and the default-signed ones are handed to it).
    additional: Vec<String>,
    token: Option<String>,
    region: String,
    path_style: bool,
}

impl Case {
    fn new(method: &'static str, key: Option<&str>) -> Self {
        Case {
            method,
            bucket: "examplebucket".into(),
            key: key.map(str::to_owned),
            query: vec![],
            headers: vec![],
            additional: vec![],
            token: None,
            region: "cn-hangzhou".into(),
            path_style: false,
        }
    }

    fn query(mut self, q: &[(&str, &str)]) -> Self {
        self.query = q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        self
    }

    fn headers(mut self, h: &[(&str, &str)]) -> Self {
        self.headers = h.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        self
    }

    /// The headers on the wire before the `Authorization` header: the request's own and the ones
    /// signing adds at `time`.
    fn wire_headers(&self, time: OffsetDateTime) -> Vec<(String, String)> {
        let creds = Credentials::new(AK, SK, self.token.clone());
        let mut h = self.headers.clone();
        h.extend(signing::signing_headers(&creds, time));
        h
    }

    fn url(&self) -> String {
        let endpoint = if self.path_style {
            Endpoint::custom("http://127.0.0.1:9000", Addressing::PathStyle, true).unwrap()
        } else {
            Endpoint::for_region(&self.region, Network::Public).unwrap()
        };
        let url = endpoint.url(
            &self.bucket,
            self.key.as_deref(),
            &encode_query(&self.query),
        );
        match self.key.as_deref() {
            // A key with `.` or `..` segments travels with every `/` as `%2F`, so that no URL
            // library collapses the segments. The vendor's SDKs (and this project) build the
            // canonical URI from the bucket and the key, `/` kept, whatever the wire form;
            // reqsign builds it from the wire path and would sign `%2F`. It is handed the key's
            // canonical form so that the signature computation itself is compared.
            Some(key) if key.split('/').any(|s| s == "." || s == "..") => {
                let bare = endpoint.url(&self.bucket, None, &encode_query(&self.query));
                let (base, query) = bare.split_once('?').unwrap_or((&bare, ""));
                let path = percent_encoding::utf8_percent_encode(key, PATH).to_string();
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                format!("{base}{path}{query}")
            }
            _ => url,
        }
    }
}

/// What an `Authorization` header says: the credential (key id and scope), the additional
/// headers and the signature. (The two signers separate the fields differently, `,` or `, `, and
/// reqsign lists an empty `AdditionalHeaders=`; OSS accepts both forms.)
type Signed = (String, Vec<String>, String);

fn signed(auth: &str) -> Signed {
    let p = oss_emulator::authorization::parse_authorization(auth).expect("the header parses");
    let credential = format!("{}/{}/{}/{}", p.access_key_id, p.date, p.region, p.product);
    let additional = p
        .additional_headers
        .into_iter()
        .filter(|h| !h.is_empty())
        .collect();
    (credential, additional, p.signature)
}

/// The project's `Authorization` at `time`.
fn ours(case: &Case, time: OffsetDateTime) -> Signed {
    let creds = Credentials::new(AK, SK, case.token.clone());
    let headers = case.wire_headers(time);
    let auth = signing::authorization(
        &creds,
        time,
        Scope {
            region: &case.region,
            product: signing::PRODUCT_OSS,
        },
        &RequestParts {
            method: case.method,
            bucket: Some(&case.bucket),
            key: case.key.as_deref(),
            query: &case.query,
            headers: &headers,
            additional_headers: &case.additional,
        },
    );
    signed(&auth)
}

/// reqsign's `Authorization` for the same request on the wire, and the time it signed at.
fn theirs(case: &Case) -> (Signed, OffsetDateTime) {
    let mut builder = http::Request::builder().method(case.method).uri(case.url());
    // The request's own headers: reqsign adds `x-oss-date`, `x-oss-content-sha256` and the token.
    for (name, value) in &case.headers {
        let lower = name.to_ascii_lowercase();
        let default_signed =
            lower.starts_with("x-oss-") || lower == "content-type" || lower == "content-md5";
        if default_signed || case.additional.contains(&lower) {
            builder = builder.header(name, value);
        }
    }
    let (mut parts, ()) = builder.body(()).unwrap().into_parts();
    let cred = Credential {
        access_key_id: AK.into(),
        access_key_secret: SK.into(),
        security_token: case.token.clone(),
        expires_in: None,
    };
    let signer = RequestSigner::new(&case.bucket)
        .with_region(case.region.clone())
        .with_signing_version(SigningVersion::V4);
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        })
        .block_on(signer.sign_request(&Context::new(), &mut parts, Some(&cred), None))
        .expect("reqsign signs");
    let date = parts.headers["x-oss-date"].to_str().unwrap();
    let time = signing::parse_datetime(date).expect("reqsign's x-oss-date parses");
    assert_eq!(
        parts.headers["x-oss-content-sha256"],
        signing::UNSIGNED_PAYLOAD
    );
    assert_eq!(
        parts
            .headers
            .get("x-oss-security-token")
            .map(|v| v.to_str().unwrap()),
        case.token.as_deref()
    );
    let auth = parts.headers["authorization"].to_str().unwrap();
    (signed(auth), time)
}

fn assert_agree(case: &Case) {
    let (theirs, time) = theirs(case);
    assert_eq!(ours(case, time), theirs, "{case:#?}\nurl {}", case.url());
}

#[test]
fn the_vendor_example_is_signed_alike() {
    // The header-signed PUT of the vendor's V4 documentation (`signing.rs` checks its signature
    // at the documented time), with its two additional headers.
    let mut case = Case::new("PUT", Some("exampleobject")).headers(&[
        ("Content-Disposition", "attachment"),
        ("Content-Length", "3"),
        ("Content-MD5", "ICy5YqxZB1uWSwcVLSNLcA=="),
        ("Content-Type", "text/plain"),
    ]);
    case.additional = vec!["content-disposition".into(), "content-length".into()];
    let (theirs, time) = theirs(&case);
    assert_eq!(theirs.1, ["content-disposition", "content-length"]);
    assert!(theirs.0.starts_with(&format!("{AK}/")) && theirs.0.ends_with("/cn-hangzhou/oss"));
    assert_eq!(ours(&case, time), theirs);
}

/// The requests the client sends, one per operation (see `oss/client/` and `oss/upload/`).
fn client_requests() -> Vec<Case> {
    let key = "photos/2026/summer holiday.jpg";
    vec![
        Case::new("HEAD", Some(key)),
        Case::new("GET", Some(key)).headers(&[("x-oss-range-behavior", "standard")]),
        Case::new("PUT", Some(key)).headers(&[
            ("Content-Type", "image/jpeg"),
            ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
            ("x-oss-meta-s3-etag", "\"d41d8cd98f00b204e9800998ecf8427e\""),
            (
                "x-oss-meta-source-version",
                "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
            ),
            ("x-oss-storage-class", "IA"),
            ("x-oss-tagging", "team=storage&env=prod%20eu"),
            ("x-oss-object-acl", "private"),
            ("x-oss-forbid-overwrite", "false"),
        ]),
        Case::new("DELETE", Some(key)),
        Case::new("POST", Some(key))
            .query(&[("uploads", "")])
            .headers(&[("Content-Type", "application/octet-stream")]),
        Case::new("PUT", Some(key)).query(&[
            ("partNumber", "17"),
            ("uploadId", "0004B9894A22E5B1888A1E29F823****"),
        ]),
        Case::new("POST", Some(key))
            .query(&[("uploadId", "0004B9894A22E5B1888A1E29F823****")])
            .headers(&[("Content-MD5", "XrY7u+Ae7tCTyyK7j1rNww==")]),
        Case::new("DELETE", Some(key)).query(&[("uploadId", "0004B98")]),
        Case::new("GET", Some(key)).query(&[("uploadId", "0004B98"), ("max-parts", "1000")]),
        Case::new("GET", None).query(&[
            ("list-type", "2"),
            ("prefix", "photos/2026/"),
            ("continuation-token", "ChR waXRz+/=="),
            ("max-keys", "1000"),
        ]),
        Case::new("GET", None).query(&[("uploads", ""), ("prefix", "a b/"), ("key-marker", "é")]),
        Case::new("PUT", Some("mirror/copy")).headers(&[
            (
                "x-oss-copy-source",
                "/examplebucket/photos/2026/summer%20holiday.jpg",
            ),
            ("x-oss-metadata-directive", "COPY"),
        ]),
        Case::new("GET", None).query(&[("location", "")]),
    ]
}

#[test]
fn the_clients_requests_are_signed_alike() {
    for case in client_requests() {
        assert_agree(&case);
        // With an STS token, path-style (a custom endpoint such as the emulator), another
        // region.
        let mut sts = case.clone();
        sts.token = Some("CAIS+token/with=odd&chars".into());
        assert_agree(&sts);
        let mut path = case.clone();
        path.path_style = true;
        assert_agree(&path);
        let mut other = case.clone();
        other.region = "ap-southeast-1".into();
        assert_agree(&other);
    }
}

#[test]
fn odd_keys_are_signed_alike() {
    let keys = [
        "a",
        "with space",
        "plus+sign",
        "tilde~and-dash_dot.",
        "percent%2Fliteral",
        "unicode/日本語/Ünïcödé",
        "emoji/🙂.txt",
        "trailing/slash/",
        "double//slash",
        "question?and#hash",
        "semi;colon,comma=equals&amp",
        "quote\"and'apostrophe",
        "dots/../and/./segments",
        ".",
        "..",
        "brackets[]{}()<>|\\^`",
        "ctrl\u{7f}del",
    ];
    for key in keys {
        for path_style in [false, true] {
            let mut case = Case::new("PUT", Some(key)).headers(&[("Content-Type", "text/plain")]);
            case.path_style = path_style;
            assert_agree(&case);
        }
    }
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,11}"
}

fn value() -> impl Strategy<Value = String> {
    // Printable ASCII with inner spaces, no leading or trailing space (both trim those).
    "[!-~]([ -~]{0,20}[!-~])?"
}

prop_compose! {
    fn arbitrary_case()(
        method in prop::sample::select(vec!["GET", "PUT", "POST", "DELETE", "HEAD"]),
        key in prop::option::weighted(0.9, "\\PC{1,40}"),
        query in prop::collection::btree_map(name(), prop_oneof![Just(String::new()), "\\PC{0,20}"], 0..4),
        meta in prop::collection::btree_map(name(), value(), 0..4),
        extra in prop::collection::btree_map(
            prop::sample::select(vec!["cache-control", "content-disposition", "content-length",
                                      "content-encoding", "expires", "x-custom"]),
            value(), 0..3),
        content_type in prop::option::of("[a-z]{1,10}/[a-z0-9.+-]{1,20}"),
        token in prop::option::of("[A-Za-z0-9+/=]{8,40}"),
        path_style in any::<bool>(),
    ) -> Case {
        let mut case = Case::new(method, key.as_deref());
        case.query = query.into_iter().collect();
        case.headers = meta.into_iter().map(|(k, v)| (format!("x-oss-meta-{k}"), v)).collect();
        if let Some(ct) = content_type {
            case.headers.push(("Content-Type".into(), ct));
        }
        case.additional = extra.keys().map(|k| (*k).to_owned()).collect();
        case.headers.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
        case.token = token;
        case.path_style = path_style;
        case
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)))]

    #[test]
    fn arbitrary_requests_are_signed_alike(case in arbitrary_case()) {
        let (theirs, time) = theirs(&case);
        prop_assert_eq!(ours(&case, time), theirs, "url {}", case.url());
    }
}
