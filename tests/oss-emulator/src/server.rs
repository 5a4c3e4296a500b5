//! The HTTP server: routing, the object and multipart operations, and the admin endpoints.

use crate::auth::Verifier;
use crate::error::{errors, OssError};
use crate::faults::{Fault, FaultConfig, Faults};
use crate::request::{self, RangeRequest, Target};
use crate::store::{
    slice_segments, Disk, Object, ObjectMeta, ObjectType, Part, Store, UploadEntry,
};
use crate::xml::{self, Doc};
use base64::{engine::general_purpose::STANDARD as B64, Engine};
use bytes::Bytes;
use futures_util::stream;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use md5::{Digest, Md5};
use s3_oss_sync::checksum::Crc64;
use s3_oss_sync::oss::signing::{uri_encode, Credentials, RequestParts};
use std::collections::VecDeque;
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
        return Ok(finish(admin(&state, req).await, &rid));
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

fn quoted_md5(md5: &[u8]) -> String {
    format!("\"{}\"", hex::encode_upper(md5))
}

fn same_etag(a: &str, b: &str) -> bool {
    a.trim_matches('"')
        .eq_ignore_ascii_case(b.trim_matches('"'))
}

/// A request body read whole, with its digests.
struct ReadBody {
    segments: Vec<Bytes>,
    size: u64,
    md5: [u8; 16],
    crc64: u64,
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
            (&Method::PUT, Some(k)) if p.h("x-oss-copy-source").is_some() => {
                let _ = k;
                // Tags are checked first, as OSS does, so a bad x-oss-tagging is refused alike.
                if let Some(tags) = p.h("x-oss-tagging") {
                    request::parse_tagging(tags)?;
                }
                Err(not_implemented("CopyObject").into())
            }
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

    /// Reads a request body up to `limit` bytes, computing MD5 and CRC-64 as it goes. With an
    /// injected reset, the connection is dropped half-way through.
    async fn read_body(&self, p: &mut Parsed, limit: u64) -> Result<ReadBody, Failure> {
        let declared: Option<u64> = p.h("content-length").and_then(|v| v.parse().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(too_large(limit).into());
        }
        let reset_at = self.reset.then(|| declared.unwrap_or(0) / 2);
        let cap = self.state.faults.upload_cap();
        let began = tokio::time::Instant::now();
        let (mut segments, mut size) = (Vec::new(), 0u64);
        let (mut md5, mut crc) = (Md5::new(), Crc64::new());
        loop {
            if reset_at.is_some_and(|at| size >= at) {
                return Err(Failure::Abort(Abort::InjectedReset));
            }
            let Some(frame) = p.body.frame().await else {
                break;
            };
            let frame = frame.map_err(|e| {
                errors::invalid_argument(format!("The request body could not be read: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                size += data.len() as u64;
                if size > limit {
                    return Err(too_large(limit).into());
                }
                md5.update(&data);
                crc.update(&data);
                segments.push(data);
                if let Some(bps) = cap {
                    // Not faster than the cap: the bytes so far may not have arrived sooner.
                    let due = began + std::time::Duration::from_secs_f64(size as f64 / bps as f64);
                    tokio::time::sleep_until(due).await;
                }
            }
        }
        let mut md5: [u8; 16] = md5.finalize().into();
        let mut crc64 = crc.finish();
        if size > 0 && self.state.faults.roll_corrupt() {
            // Damage on the way in, before OSS sees the body: its MD5, ETag and CRC-64 are those
            // of the damaged bytes, and a Content-MD5 sent with it no longer matches.
            let mut whole: Vec<u8> = segments.iter().flat_map(|s| s.iter().copied()).collect();
            whole[0] ^= 0xFF;
            md5 = Md5::digest(&whole).into();
            crc64 = s3_oss_sync::checksum::crc64(&whole);
            segments = vec![Bytes::from(whole)];
        }
        if let Some(given) = p.h("content-md5") {
            let ok = B64.decode(given.trim()).is_ok_and(|d| d == md5);
            if !ok {
                // Nothing is stored.
                return Err(OssError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidDigest",
                    "The Content-MD5 you specified is not valid.",
                )
                .into());
            }
        }
        Ok(ReadBody {
            segments,
            size,
            md5,
            crc64,
        })
    }

    fn meta_from(&self, p: &Parsed) -> Result<ObjectMeta, OssError> {
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

    fn commit(&self, bucket: &str, key: &str, object: Object) -> Result<(), OssError> {
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

    async fn put_object(&self, mut p: Parsed, key: &str) -> Handled {
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

    fn initiate(&self, p: &Parsed, key: &str) -> Handled {
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

    async fn upload_part(&self, mut p: Parsed, key: &str) -> Handled {
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

    async fn complete(&self, mut p: Parsed, key: &str) -> Handled {
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

    fn abort(&self, p: &Parsed, key: &str) -> Handled {
        let id = p.q("uploadId").unwrap_or_default();
        let mut store = self.state.store();
        if store.upload(id, &p.bucket, key).is_none() {
            return Err(errors::no_such_upload(id).into());
        }
        store.abort_upload(id);
        Ok(Reply::new(StatusCode::NO_CONTENT))
    }

    fn list_parts(&self, p: &Parsed, key: &str) -> Handled {
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

    /// ListMultipartUploads: uploads in progress under `prefix`, by key then upload id, after
    /// `key-marker` (and, for that key, after `upload-id-marker`); with a delimiter, keys that
    /// contain it after the prefix are rolled up into `CommonPrefixes`.
    fn list_uploads(&self, p: &Parsed) -> Handled {
        let prefix = p.q("prefix").unwrap_or_default();
        let delimiter = p.q("delimiter").unwrap_or_default();
        let key_marker = p.q("key-marker").unwrap_or_default();
        // As in S3: the upload-id marker means nothing without a key marker.
        let id_marker = p.q("upload-id-marker").filter(|_| !key_marker.is_empty());
        let max: usize = parse_bounded(p.q("max-uploads"), 1000, 1000, "max-uploads")?;
        if max == 0 {
            return Err(errors::invalid_argument("Argument max-uploads is invalid: 0").into());
        }
        let all = self.state.store().uploads_in(&p.bucket, prefix);
        let after = |u: &&UploadEntry| match id_marker {
            Some(id) if u.key == key_marker => u.upload_id.as_str() > id,
            _ => u.key.as_str() > key_marker,
        };
        let (mut uploads, mut common): (Vec<&UploadEntry>, Vec<String>) = (Vec::new(), Vec::new());
        let mut next: Option<(String, String)> = None;
        let mut truncated = false;
        for u in all.iter().filter(after) {
            let group = (!delimiter.is_empty())
                .then(|| u.key[prefix.len()..].find(delimiter))
                .flatten()
                .map(|i| u.key[..prefix.len() + i + delimiter.len()].to_owned());
            if let Some(g) = &group {
                if common.last() == Some(g) || g == key_marker {
                    continue;
                }
            }
            if uploads.len() + common.len() == max {
                truncated = true;
                break;
            }
            match group {
                Some(g) => {
                    next = Some((g.clone(), String::new()));
                    common.push(g);
                }
                None => {
                    next = Some((u.key.clone(), u.upload_id.clone()));
                    uploads.push(u);
                }
            }
        }
        let url = p.url_encoding();
        let (next_key, next_id) = next.unwrap_or_default();
        let mut d = Doc::new("ListMultipartUploadsResult");
        d.field("Bucket", &p.bucket)
            .field("KeyMarker", encode_if(key_marker, url))
            .field("UploadIdMarker", id_marker.unwrap_or_default())
            .field("NextKeyMarker", encode_if(&next_key, url))
            .field("NextUploadIdMarker", next_id)
            .field("Delimiter", encode_if(delimiter, url))
            .field("Prefix", encode_if(prefix, url))
            .field("MaxUploads", max)
            .field("IsTruncated", truncated);
        if url {
            d.field("EncodingType", "url");
        }
        for u in &uploads {
            d.group(
                "Upload",
                &[
                    ("Key", encode_if(&u.key, url)),
                    ("UploadId", u.upload_id.clone()),
                    ("StorageClass", "Standard".to_owned()),
                    ("Initiated", xml::iso8601(u.initiated)),
                ],
            );
        }
        for cp in &common {
            d.group("CommonPrefixes", &[("Prefix", encode_if(cp, url))]);
        }
        Ok(Reply::xml(d.finish()))
    }

    fn lookup(&self, p: &Parsed, key: &str) -> Result<Object, OssError> {
        self.state
            .store()
            .get(&p.bucket, key)
            .ok_or_else(|| errors::no_such_key(key))
    }

    fn get_tagging(&self, p: &Parsed, key: &str) -> Handled {
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

    fn get_object(&self, p: &Parsed, key: &str) -> Handled {
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

    fn delete_object(&self, p: &Parsed, key: &str) -> Handled {
        if let Some(disk) = &self.state.disk {
            disk.remove(&p.bucket, key)
                .map_err(|e| internal(&format!("removing the object failed: {e}")))?;
        }
        self.state.store().delete(&p.bucket, key);
        Ok(Reply::new(StatusCode::NO_CONTENT))
    }

    fn list_v2(&self, p: &Parsed) -> Handled {
        let prefix = p.q("prefix").unwrap_or_default();
        let delimiter = p.q("delimiter").unwrap_or_default();
        let max: usize = parse_bounded(p.q("max-keys"), 100, 1000, "max-keys")?;
        let start_after = p.q("start-after").unwrap_or_default();
        let token = p.q("continuation-token").filter(|t| !t.is_empty());
        let resume = match token {
            Some(t) => Some(decode_token(t)?),
            None => None,
        };
        let from = match &resume {
            Some(Resume::After(k)) | Some(Resume::PastPrefix(k)) => k.as_str().max(start_after),
            None => start_after,
        }
        .max(prefix);
        let store = self.state.store();
        let mut contents: Vec<(String, ObjectMeta)> = Vec::new();
        let mut common: Vec<String> = Vec::new();
        let mut last: Option<Resume> = None;
        let mut truncated = false;
        for (key, object) in store.range(&p.bucket, from) {
            if !key.starts_with(prefix) {
                if key.as_str() > prefix {
                    break;
                }
                continue;
            }
            if key.as_str() == start_after || matches!(&resume, Some(Resume::After(k)) if k == key)
            {
                continue;
            }
            if let Some(Resume::PastPrefix(cp)) = &resume {
                if key.starts_with(cp.as_str()) {
                    continue;
                }
            }
            let group = (!delimiter.is_empty())
                .then(|| key[prefix.len()..].find(delimiter))
                .flatten()
                .map(|i| key[..prefix.len() + i + delimiter.len()].to_owned());
            if let (Some(g), Some(Resume::PastPrefix(prev))) = (&group, &last) {
                if g == prev {
                    continue;
                }
            }
            if contents.len() + common.len() == max {
                truncated = true;
                break;
            }
            match group {
                Some(g) => {
                    last = Some(Resume::PastPrefix(g.clone()));
                    common.push(g);
                }
                None => {
                    last = Some(Resume::After(key.clone()));
                    contents.push((key.clone(), object.meta.clone()));
                }
            }
        }
        drop(store);
        let url = p.url_encoding();
        let mut d = Doc::new("ListBucketResult");
        d.field("Name", &p.bucket)
            .field("Prefix", encode_if(prefix, url))
            .field("MaxKeys", max)
            .field("Delimiter", encode_if(delimiter, url));
        if !start_after.is_empty() {
            d.field("StartAfter", encode_if(start_after, url));
        }
        if let Some(t) = token {
            d.field("ContinuationToken", t);
        }
        if url {
            d.field("EncodingType", "url");
        }
        d.field("IsTruncated", truncated);
        if truncated {
            if let Some(l) = &last {
                d.field("NextContinuationToken", encode_token(l));
            }
        }
        d.field("KeyCount", contents.len() + common.len());
        for (key, meta) in &contents {
            d.group(
                "Contents",
                &[
                    ("Key", encode_if(key, url)),
                    ("LastModified", xml::iso8601(meta.last_modified)),
                    ("ETag", meta.etag.clone()),
                    ("Type", meta.object_type.as_str().to_owned()),
                    ("Size", meta.size.to_string()),
                    ("StorageClass", meta.storage_class.clone()),
                ],
            );
        }
        for cp in &common {
            d.group("CommonPrefixes", &[("Prefix", encode_if(cp, url))]);
        }
        Ok(Reply::xml(d.finish()))
    }
}

/// Where a continued listing resumes.
enum Resume {
    /// After this key.
    After(String),
    /// After every key under this common prefix.
    PastPrefix(String),
}

fn encode_token(r: &Resume) -> String {
    let raw = match r {
        Resume::After(k) => format!("k{k}"),
        Resume::PastPrefix(p) => format!("p{p}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(t: &str) -> Result<Resume, OssError> {
    let bad = || errors::invalid_argument("The continuation token provided is incorrect");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    match raw.split_at_checked(1) {
        Some(("k", k)) => Ok(Resume::After(k.to_owned())),
        Some(("p", p)) => Ok(Resume::PastPrefix(p.to_owned())),
        _ => Err(bad()),
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

fn too_large(limit: u64) -> OssError {
    OssError::new(
        StatusCode::BAD_REQUEST,
        "EntityTooLarge",
        "Your proposed upload exceeds the maximum allowed size.",
    )
    .with("MaxSizeAllowed", limit.to_string())
}

/// Streams segments, optionally trickled (about `bps` bytes a second, in tenths) and optionally
/// failing after `reset_at` bytes (which makes the server drop the connection).
fn stream_body(segments: Vec<Bytes>, trickle: Option<u64>, reset_at: Option<u64>) -> Body {
    struct S {
        queue: VecDeque<Bytes>,
        sent: u64,
        trickle: Option<u64>,
        reset_at: Option<u64>,
        failed: bool,
    }
    let state = S {
        queue: segments.into(),
        sent: 0,
        trickle,
        reset_at,
        failed: false,
    };
    let s = stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        if st.reset_at.is_some_and(|at| st.sent >= at) {
            st.failed = true;
            let e = io::Error::new(io::ErrorKind::ConnectionReset, "injected reset");
            return Some((Err(e), st));
        }
        let mut chunk = st.queue.pop_front()?;
        let mut cap = chunk.len() as u64;
        if let Some(bps) = st.trickle {
            cap = cap.min((bps / 10).max(1));
            if st.sent > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if let Some(at) = st.reset_at {
            cap = cap.min(at - st.sent);
        }
        if (cap as usize) < chunk.len() {
            let rest = chunk.split_off(cap as usize);
            st.queue.push_front(rest);
        }
        st.sent += chunk.len() as u64;
        Some((Ok(Frame::data(chunk)), st))
    });
    StreamBody::new(s).boxed()
}

/// `POST /_emulator/uploads?age=SECONDS[&prefix=P]`: makes the uploads in progress (under `P`)
/// look `SECONDS` older, for tests of what sweeps stale uploads.
fn age_uploads(state: &State, query: Option<&str>) -> Result<usize, String> {
    let q = request::parse_query(query).map_err(|e| e.message)?;
    let get = |n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let secs: u64 = get("age")
        .and_then(|v| v.parse().ok())
        .ok_or("age=SECONDS is required")?;
    let prefix = get("prefix").unwrap_or_default();
    Ok(state.age_uploads(prefix, Duration::from_secs(secs)))
}

async fn admin(state: &State, req: hyper::Request<Incoming>) -> Reply {
    let json = |v: String| {
        Reply::new(StatusCode::OK)
            .header("content-type", "application/json")
            .header("content-length", v.len())
            .body(full(v))
    };
    let bad = |msg: String| {
        Reply::new(StatusCode::BAD_REQUEST)
            .header("content-length", msg.len())
            .body(full(msg))
    };
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/_emulator/health") => json("{\"ok\":true}".into()),
        (Method::GET, "/_emulator/faults") => {
            json(serde_json::to_string(&state.faults.config()).unwrap_or_default())
        }
        (Method::PUT, "/_emulator/faults") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return bad(format!("unreadable body: {e}")),
            };
            match serde_json::from_slice::<FaultConfig>(&body)
                .map_err(|e| e.to_string())
                .and_then(|c| c.validate().map(|()| c))
            {
                Ok(c) => {
                    state.faults.set(c);
                    Reply::new(StatusCode::NO_CONTENT)
                }
                Err(e) => bad(format!("invalid fault configuration: {e}")),
            }
        }
        (Method::PUT, "/_emulator/credentials") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return bad(format!("unreadable body: {e}")),
            };
            match crate::auth::parse_credentials(&body) {
                Ok(c) => {
                    state.set_credentials(c);
                    Reply::new(StatusCode::NO_CONTENT)
                }
                Err(e) => bad(format!("invalid credentials: {e}")),
            }
        }
        (Method::GET, "/_emulator/stats") => {
            json(serde_json::to_string(&state.faults.stats()).unwrap_or_default())
        }
        (Method::GET, "/_emulator/uploads") => json(format!(
            "{{\"in_progress\":{}}}",
            state.store().uploads_in_progress()
        )),
        (Method::POST, "/_emulator/uploads") => match age_uploads(state, req.uri().query()) {
            Ok(n) => json(format!("{{\"aged\":{n}}}")),
            Err(e) => bad(e),
        },
        (Method::GET, "/_emulator/journal") => {
            json(serde_json::to_string(state.store().journal()).unwrap_or_default())
        }
        (Method::POST, "/_emulator/reset") => {
            let mut store = state.store();
            store.reset();
            for b in &state.config.buckets {
                store.create_bucket(b);
            }
            drop(store);
            if let Some(dir) = &state.config.data_dir {
                let cleared =
                    std::fs::remove_dir_all(dir).and_then(|()| std::fs::create_dir_all(dir));
                if let Err(e) = cleared {
                    return bad(format!("could not clear the data directory: {e}"));
                }
            }
            state.faults.set(FaultConfig::default());
            state.set_credentials(state.config.credentials.clone());
            Reply::new(StatusCode::NO_CONTENT)
        }
        _ => bad(format!("unknown admin endpoint {path}")),
    }
}
