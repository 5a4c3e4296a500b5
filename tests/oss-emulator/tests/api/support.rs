//! Test support: an emulator on a free port and a minimal V4-signing HTTP client for it.

#![allow(dead_code)]

use oss_emulator::{Config, Emulator};
use s3_oss_sync::oss::signing::{self, Credentials, RequestParts, Scope, PRODUCT_OSS};
use time::OffsetDateTime;

pub const AK: &str = "test-ak";
pub const SK: &str = "test-secret";
pub const REGION: &str = "cn-hangzhou";
pub const BUCKET: &str = "test-bucket";

pub async fn start() -> Emulator {
    start_with(Config::new(AK, SK)).await
}

pub async fn start_with(config: Config) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// A request to send: everything the signature covers, plus a body.
pub struct Req<'a> {
    pub method: &'a str,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, key: Option<&'a str>) -> Self {
        Self {
            method,
            bucket: Some(BUCKET),
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn q(mut self, k: &str, v: &str) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }
    pub fn h(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }
}

pub struct Client {
    pub endpoint: String,
    pub creds: Credentials,
    pub http: reqwest::Client,
    /// Host used for virtual-hosted requests (`None`: path-style against the endpoint).
    pub virtual_host: Option<String>,
    /// Shift of the signing clock, to test skew.
    pub clock_shift: time::Duration,
}

impl Client {
    pub fn new(emulator: &Emulator) -> Self {
        Self::with_creds(emulator, Credentials::new(AK, SK, None))
    }

    pub fn with_creds(emulator: &Emulator, creds: Credentials) -> Self {
        Self {
            endpoint: emulator.endpoint(),
            creds,
            http: reqwest::Client::new(),
            virtual_host: None,
            clock_shift: time::Duration::ZERO,
        }
    }

    pub fn url(&self, r: &Req<'_>, extra_query: &[(String, String)]) -> String {
        let path = match &self.virtual_host {
            None => signing::canonical_uri(r.bucket, r.key),
            Some(_) => format!(
                "/{}",
                signing::canonical_uri(Some("x"), r.key).trim_start_matches("/x/")
            ),
        };
        let query: Vec<String> = r
            .query
            .iter()
            .chain(extra_query)
            .map(|(k, v)| {
                if v.is_empty() {
                    signing::uri_encode(k)
                } else {
                    format!("{}={}", signing::uri_encode(k), signing::uri_encode(v))
                }
            })
            .collect();
        let base = match &self.virtual_host {
            None => self.endpoint.clone(),
            Some(h) => format!("http://{h}:{}", self.endpoint.rsplit(':').next().unwrap()),
        };
        if query.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{}", query.join("&"))
        }
    }

    pub async fn send(&self, r: Req<'_>) -> reqwest::Response {
        self.try_send(r).await.expect("request failed")
    }

    pub async fn try_send(&self, r: Req<'_>) -> reqwest::Result<reqwest::Response> {
        let now = OffsetDateTime::now_utc() + self.clock_shift;
        let mut headers = r.headers.clone();
        headers.extend(signing::signing_headers(&self.creds, now));
        let scope = Scope {
            region: REGION,
            product: PRODUCT_OSS,
        };
        let auth = signing::authorization(
            &self.creds,
            now,
            scope,
            &RequestParts {
                method: r.method,
                bucket: r.bucket,
                key: r.key,
                query: &r.query,
                headers: &headers,
                additional_headers: &[],
            },
        );
        headers.push(("authorization".into(), auth));
        let url = self.url(&r, &[]);
        let mut b = self
            .http
            .request(r.method.parse().unwrap(), url)
            .body(r.body);
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.send().await
    }

    /// A presigned URL for the request, valid `expires` seconds from `at`.
    pub fn presign(&self, r: &Req<'_>, at: OffsetDateTime, expires: u64) -> String {
        let scope = Scope {
            region: REGION,
            product: PRODUCT_OSS,
        };
        let mut query = r.query.clone();
        let added = signing::presign_query(&self.creds, at, scope, expires, &[]);
        query.extend(added.clone());
        let sig = signing::presign_signature(
            &self.creds,
            at,
            scope,
            &RequestParts {
                method: r.method,
                bucket: r.bucket,
                key: r.key,
                query: &query,
                headers: &r.headers,
                additional_headers: &[],
            },
        );
        let mut extra = added;
        extra.push(("x-oss-signature".into(), sig));
        self.url(r, &extra)
    }
}

pub fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The `<Code>` of an OSS error document.
pub fn code_of(xml: &str) -> String {
    element(xml, "Code")
}

pub fn element(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&close))
        .map(|(v, _)| v.to_owned())
        .unwrap_or_default()
}

pub fn elements(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_owned()))
        .collect()
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u32) as u8
                ^ (i >> 8) as u8
        })
        .collect()
}
