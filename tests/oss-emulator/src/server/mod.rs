//! The HTTP server: configuration and state, the entry point, routing a request to its
//! operation, and the reply and error helpers the operations share. The operations themselves
//! live in one submodule per group.

mod admin;
mod body;
mod listing;
mod multipart;
mod objects;
mod uploads;

use crate::auth::Verifier;
use crate::error::{errors, OssError};
use crate::faults::{Fault, FaultConfig, Faults};
use crate::request::{self, Target};
use crate::store::{Disk, Store};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use s3_oss_sync::oss::signing::{uri_encode, Credentials, RequestParts};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

/// A response body: whole or streamed, possibly failing mid-way (an injected reset).
pub type Body = BoxBody<Bytes, io::Error>;

/// How the emulator is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted credentials.
    pub credentials: Vec<Credentials>,
    /// The region this endpoint serves (in signatures), e.g. `cn-hangzhou`.
    pub region: String,
    /// Buckets that exist from the start.
    pub buckets: Vec<String>,
    /// Whether a request to an unknown bucket creates it (otherwise `NoSuchBucket`).
    pub auto_create_buckets: bool,
    /// Where to persist objects, if anywhere.
    pub data_dir: Option<PathBuf>,
    /// Faults to inject from the start.
    pub faults: FaultConfig,
}

impl Config {
    /// One key pair, region `cn-hangzhou`, buckets created on first use, no faults.
    pub fn new(access_key_id: &str, access_key_secret: &str) -> Self {
        Self {
            credentials: vec![Credentials::new(access_key_id, access_key_secret, None)],
            region: "cn-hangzhou".into(),
            buckets: Vec::new(),
            auto_create_buckets: true,
            data_dir: None,
            faults: FaultConfig::default(),
        }
    }
}

/// Shared state of a running emulator.
pub struct State {
    store: Mutex<Store>,
    disk: Option<Disk>,
    /// Replaceable at run time (`PUT /_emulator/credentials`), to rotate keys under a client.
    verifier: RwLock<Verifier>,
    /// Live fault settings.
    pub faults: Faults,
    config: Config,
}

/// Why a request ends without a response.
#[derive(Debug, thiserror::Error)]
pub enum Abort {
    /// An injected connection reset.
    #[error("injected connection reset")]
    InjectedReset,
}

impl State {
    /// Builds the state, loading persisted objects.
    pub fn new(config: Config) -> io::Result<Self> {
        let mut store = Store::default();
        let disk = config.data_dir.as_deref().map(Disk::open).transpose()?;
        if let Some(d) = &disk {
            d.load(&mut store)?;
        }
        for b in &config.buckets {
            store.create_bucket(b);
        }
        Ok(Self {
            store: Mutex::new(store),
            disk,
            verifier: RwLock::new(Verifier {
                credentials: config.credentials.clone(),
                region: config.region.clone(),
            }),
            faults: Faults::new(config.faults.clone()),
            config,
        })
    }

    /// Makes the uploads in progress under `prefix` look `by` older; returns how many.
    pub fn age_uploads(&self, prefix: &str, by: Duration) -> usize {
        self.store().age_uploads(prefix, by)
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn verifier(&self) -> std::sync::RwLockReadGuard<'_, Verifier> {
        self.verifier.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the accepted credentials at once: requests signed with any other key id are
    /// refused with `InvalidAccessKeyId`, with another secret `SignatureDoesNotMatch`.
    pub fn set_credentials(&self, credentials: Vec<Credentials>) {
        self.verifier
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .credentials = credentials;
    }
}

fn request_id() -> String {
    format!("{:024X}", rand::random::<u128>() >> 32)
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

/// A response under construction.
struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Reply {
    fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: empty(),
        }
    }

    fn xml(doc: String) -> Self {
        let len = doc.len();
        Self::new(StatusCode::OK)
            .header("content-type", "application/xml")
            .header("content-length", len)
            .body(full(doc))
    }

    fn header(mut self, name: &str, value: impl ToString) -> Self {
        self.headers.push((name.to_owned(), value.to_string()));
        self
    }

    fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
}

fn error_reply(e: &OssError, rid: &str, host: &str, head: bool) -> Reply {
    let doc = e.to_xml(rid, host);
    let r = Reply::new(e.status).header("x-oss-ec", e.ec());
    if head {
        r.header("x-oss-err", B64.encode(&doc))
            .header("content-length", 0)
    } else {
        r.header("content-type", "application/xml")
            .header("content-length", doc.len())
            .body(full(doc))
    }
}

fn finish(reply: Reply, rid: &str) -> Response<Body> {
    let mut res = Response::new(reply.body);
    *res.status_mut() = reply.status;
    let h = res.headers_mut();
    for (n, v) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.append(name, value);
        }
    }
    h.insert(
        "x-oss-request-id",
        HeaderValue::from_str(rid).unwrap_or(HeaderValue::from_static("0")),
    );
    h.insert("server", HeaderValue::from_static("AliyunOSS"));
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now())) {
        h.insert("date", v);
    }
    res
}

/// Serves one request.
pub async fn handle(
    state: Arc<State>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Body>, Abort> {
    let rid = request_id();
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_owned();
    let head = req.method() == Method::HEAD;
    let path_style = request::is_path_style_host(request::host_without_port(&host));
    if path_style && req.uri().path().starts_with("/_emulator/") {
        return Ok(finish(admin::admin(&state, req).await, &rid));
    }
    let (fault, delay, trickle) = state.faults.roll();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let reply = match fault {
        Fault::ServerError(code) => {
            let e = if code == 500 {
                OssError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                )
            } else {
                OssError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "Please reduce your request rate.",
                )
            };
            error_reply(&e, &rid, &host, head)
        }
        fault => {
            let ctx = Ctx {
                state: &state,
                reset: fault == Fault::Reset,
                trickle,
            };
            match ctx.dispatch(req, &host).await {
                Ok(r) => r,
                Err(Failure::Oss(e)) => error_reply(&e, &rid, &host, head),
                Err(Failure::Abort(a)) => return Err(a),
            }
        }
    };
    Ok(finish(reply, &rid))
}

enum Failure {
    Oss(OssError),
    Abort(Abort),
}

impl From<OssError> for Failure {
    fn from(e: OssError) -> Self {
        Self::Oss(e)
    }
}

type Handled = Result<Reply, Failure>;

/// A request's view of the state and the faults it was dealt.
struct Ctx<'a> {
    state: &'a State,
    reset: bool,
    trickle: Option<u64>,
}

/// The parts of a request the handlers need, once parsed.
struct Parsed {
    method: Method,
    bucket: String,
    key: Option<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Incoming,
}

impl Parsed {
    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn h(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn url_encoding(&self) -> bool {
        self.q("encoding-type") == Some("url")
    }
}

/// Query parameters the emulator understands; anything else is `NotImplemented`, so a client
/// never gets an object back for a sub-resource request it did not mean.
fn known_param(name: &str) -> bool {
    const KNOWN: [&str; 18] = [
        "uploads",
        "uploadId",
        "partNumber",
        "list-type",
        "prefix",
        "delimiter",
        "max-keys",
        "continuation-token",
        "start-after",
        "encoding-type",
        "fetch-owner",
        "max-parts",
        "part-number-marker",
        "tagging",
        "versionId",
        "key-marker",
        "upload-id-marker",
        "max-uploads",
    ];
    KNOWN.contains(&name) || name.starts_with("x-oss-") || name.starts_with("response-")
}

impl Ctx<'_> {
    async fn dispatch(&self, req: hyper::Request<Incoming>, host: &str) -> Handled {
        let (parts, body) = req.into_parts();
        let Target { bucket, key, .. } = request::target(host, parts.uri.path())?;
        let query = request::parse_query(parts.uri.query())?;
        let mut headers = Vec::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            let value = value.to_str().map_err(|_| {
                errors::invalid_argument(format!("Header {name} is not valid text"))
            })?;
            headers.push((name.as_str().to_owned(), value.to_owned()));
        }
        let method = parts.method.as_str().to_owned();
        self.state.verifier().verify(
            &RequestParts {
                method: &method,
                bucket: bucket.as_deref(),
                key: key.as_deref(),
                query: &query,
                headers: &headers,
                additional_headers: &[],
            },
            time::OffsetDateTime::now_utc(),
        )?;
        if let Some((name, _)) = query.iter().find(|(n, _)| !known_param(n)) {
            return Err(not_implemented(&format!("sub-resource ?{name}")).into());
        }
        let Some(bucket) = bucket else {
            return Err(not_implemented("ListBuckets").into());
        };
        let p = Parsed {
            method: parts.method,
            bucket,
            key,
            query,
            headers,
            body,
        };
        self.ensure_bucket(&p)?;
        // Uploads and downloads of an object are cut half-way through their body; every other
        // request loses its connection before any answer.
        let cut_mid_body = p.key.is_some()
            && (p.method == Method::PUT
                || (p.method == Method::GET
                    && p.q("uploadId").is_none()
                    && p.q("tagging").is_none()));
        if self.reset && !cut_mid_body {
            return Err(Failure::Abort(Abort::InjectedReset));
        }
        match (&p.method, p.key.clone()) {
            (&Method::PUT, None) => Ok(Reply::new(StatusCode::OK)),
            (&Method::GET, None) if p.q("list-type") == Some("2") => self.list_v2(&p),
            (&Method::GET, None) if p.q("uploads").is_some() => self.list_uploads(&p),
            (&Method::PUT, Some(k)) if p.q("uploadId").is_some() => self.upload_part(p, &k).await,
            (&Method::PUT, Some(_)) if p.h("x-oss-copy-source").is_some() => self.copy_object(&p),
            (&Method::PUT, Some(k)) => self.put_object(p, &k).await,
            (&Method::POST, Some(k)) if p.q("uploads").is_some() => self.initiate(&p, &k),
            (&Method::POST, Some(k)) if p.q("uploadId").is_some() => self.complete(p, &k).await,
            (&Method::GET, Some(k)) if p.q("uploadId").is_some() => self.list_parts(&p, &k),
            (&Method::GET, Some(k)) if p.q("tagging").is_some() => self.get_tagging(&p, &k),
            (&Method::GET | &Method::HEAD, Some(k)) => self.get_object(&p, &k),
            (&Method::DELETE, Some(k)) if p.q("uploadId").is_some() => self.abort(&p, &k),
            (&Method::DELETE, Some(k)) => self.delete_object(&p, &k),
            (m, _) => Err(not_implemented(&format!("{m} on this resource")).into()),
        }
    }

    fn ensure_bucket(&self, p: &Parsed) -> Result<(), OssError> {
        let mut store = self.state.store();
        if store.has_bucket(&p.bucket) {
            return Ok(());
        }
        if self.state.config.auto_create_buckets || (p.method == Method::PUT && p.key.is_none()) {
            store.create_bucket(&p.bucket);
            return Ok(());
        }
        Err(errors::no_such_bucket(&p.bucket))
    }
}

fn encode_if(s: &str, url: bool) -> String {
    if url {
        uri_encode(s)
    } else {
        s.to_owned()
    }
}

fn parse_bounded<T: std::str::FromStr + PartialOrd + Copy>(
    v: Option<&str>,
    default: T,
    max: T,
    name: &str,
) -> Result<T, OssError> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => s
            .parse::<T>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| errors::invalid_argument(format!("Argument {name} is invalid: {s}"))),
    }
}

fn not_implemented(what: &str) -> OssError {
    OssError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NotImplemented",
        format!("The OSS emulator does not implement {what}."),
    )
}

fn internal(msg: &str) -> OssError {
    OssError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", msg)
}
