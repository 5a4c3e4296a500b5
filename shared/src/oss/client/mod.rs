//! The OSS client: signs every request (V4), reads OSS errors, retries what is transient, and
//! offers head, get, delete and list. Uploads live in [`super::upload`].
//!
//! The `impl OssClient` here holds the client's making and settings ([`OssClient::new`],
//! credentials, clock offset), the signed request and its retries, and the operations
//! [`OssClient::head_object`], [`OssClient::get_object`], [`OssClient::delete_object`],
//! [`OssClient::list_objects_v2`], [`OssClient::list_objects_v2_after`] and
//! [`OssClient::presign`]; the upload operations' `impl OssClient` blocks are in
//! [`super::upload`] and its parts.

use super::abandoned::AbandonedList;
use super::credentials::{CredentialRefresh, CredentialStore};
use super::endpoint::{encode_query, Endpoint};
use super::error::{is_credential_code, Error, ServiceError};
use super::limits::check_key;
use super::object::header_str;
use super::signing::{self, Credentials, RequestParts, Scope, PRODUCT_OSS};
use super::xml::{self, ListPage};
use crate::budget::MemoryBudget;
use crate::retry::{retry, Attempted, RetryPolicy};
use crate::store::object::{ByteStream, ObjectHead};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, Method};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Default part size for multipart uploads (8 MiB).
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Default number of parts uploaded at once.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 4;
/// Default memory budget for upload buffers (256 MiB): what 8 jobs of 4 parts of 8 MiB held
/// before there was a budget.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * 1024 * 1024;

/// How the client is set up.
#[derive(Clone)]
pub struct OssConfig {
    /// Where requests go.
    pub endpoint: Endpoint,
    /// Region id for the signature scope (`cn-hangzhou`).
    pub region: String,
    /// Product for the signature scope (`oss`).
    pub product: String,
    /// Key pair (and STS token) the client starts with; see
    /// [`OssClient::with_credential_refresh`] for replacing them at run time.
    pub credentials: Credentials,
    /// Retry policy for every call.
    pub retry: RetryPolicy,
    /// Part size for multipart uploads; raised when an object would need more than 10,000 parts.
    pub part_size: u64,
    /// Objects larger than this are uploaded in parts.
    pub multipart_threshold: u64,
    /// Parts uploaded at once per object.
    pub parts_in_flight: usize,
    /// Memory for upload buffers (parts in flight, PutObject bodies buffered for their MD5),
    /// shared by every upload of the client and of any client given a clone of it.
    pub memory_budget: MemoryBudget,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
}

impl OssConfig {
    /// Defaults for everything but where to go and who to be.
    pub fn new(endpoint: Endpoint, region: &str, credentials: Credentials) -> Self {
        Self {
            endpoint,
            region: region.to_owned(),
            product: PRODUCT_OSS.to_owned(),
            credentials,
            retry: RetryPolicy::default(),
            part_size: DEFAULT_PART_SIZE,
            multipart_threshold: DEFAULT_PART_SIZE,
            parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            memory_budget: MemoryBudget::new(DEFAULT_MEMORY_BUDGET),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for OssConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OssConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .field("part_size", &self.part_size)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("parts_in_flight", &self.parts_in_flight)
            .field("memory_budget", &self.memory_budget)
            .finish_non_exhaustive()
    }
}

/// One request, before signing.
pub(crate) struct Call<'a> {
    pub op: &'static str,
    pub method: Method,
    pub bucket: &'a str,
    pub key: Option<&'a str>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// Safe to repeat after a timeout.
    pub idempotent: bool,
}

impl<'a> Call<'a> {
    pub fn new(op: &'static str, method: Method, bucket: &'a str, key: Option<&'a str>) -> Self {
        Self {
            op,
            method,
            bucket,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            idempotent: true,
        }
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_owned(), v.into()));
        self
    }
}

/// A whole answer: status, headers and body.
pub(crate) struct Answer {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        header_str(&self.headers, name)
    }

    pub fn request_id(&self) -> String {
        self.header("x-oss-request-id")
            .unwrap_or_default()
            .to_owned()
    }
}

struct Inner {
    http: reqwest::Client,
    /// What requests are signed with: `config.credentials` until they are replaced.
    credentials: CredentialStore,
    config: OssConfig,
    /// Seconds to add to the local clock, learnt from `RequestTimeTooSkewed`.
    clock_offset: AtomicI64,
    /// Multipart uploads left open by dropped jobs or failed aborts.
    abandoned: AbandonedList,
}

/// An OSS client. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct OssClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for OssClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OssClient")
            .field("config", &self.inner.config)
            .field("credentials", &self.credentials())
            .finish()
    }
}

fn parse_server_time(s: &str) -> Option<OffsetDateTime> {
    signing::parse_datetime(s)
        .or_else(|| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok())
        .or_else(|| OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822).ok())
}

impl OssClient {
    /// Builds a client (no request is made).
    pub fn new(config: OssConfig) -> Result<Self, Error> {
        if config.parts_in_flight == 0 {
            return Err(Error::Config("parts_in_flight must be at least 1".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                credentials: CredentialStore::new(config.credentials.clone()),
                config,
                clock_offset: AtomicI64::new(0),
                abandoned: AbandonedList::default(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OssConfig {
        &self.inner.config
    }

    /// Gives the client a way to re-read its credentials when OSS refuses them (rotated key,
    /// expired STS token): at most once per the refresh's interval, one read shared by
    /// concurrent requests, and a request refused for the old credentials is repeated once
    /// with the new ones. See [`super::credentials`]. Clones share the credentials and the
    /// refresher; setting it again replaces it.
    pub fn with_credential_refresh(self, refresh: CredentialRefresh) -> Self {
        self.inner.credentials.set_refresh(refresh);
        self
    }

    /// The credentials the next request will be signed with.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.inner.credentials.current().credentials
    }

    /// Uploads left open by dropped jobs or failed aborts.
    pub(crate) fn abandoned(&self) -> &AbandonedList {
        &self.inner.abandoned
    }

    /// Shifts the signing clock by `secs` (normally learnt from OSS; settable for tests).
    pub fn set_clock_offset(&self, secs: i64) {
        self.inner.clock_offset.store(secs, Ordering::Relaxed);
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::seconds(self.inner.clock_offset.load(Ordering::Relaxed))
    }

    fn scope(&self) -> Scope<'_> {
        Scope {
            region: &self.inner.config.region,
            product: &self.inner.config.product,
        }
    }

    /// Signs and sends one request; a non-2xx answer becomes [`Error::Service`].
    pub(crate) async fn send(
        &self,
        call: &Call<'_>,
        body: reqwest::Body,
    ) -> Result<reqwest::Response, Error> {
        let cfg = &self.inner.config;
        let now = self.now();
        let signed = self.inner.credentials.current();
        let mut headers = call.headers.clone();
        headers.extend(signing::signing_headers(&signed.credentials, now));
        let auth = signing::authorization(
            &signed.credentials,
            now,
            self.scope(),
            &RequestParts {
                method: call.method.as_str(),
                bucket: Some(call.bucket),
                key: call.key,
                query: &call.query,
                headers: &headers,
                additional_headers: &[],
            },
        );
        let url = cfg
            .endpoint
            .url(call.bucket, call.key, &encode_query(&call.query));
        let mut req = self.inner.http.request(call.method.clone(), url).body(body);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        req = req.header("authorization", auth);
        let transport = |source| Error::Transport {
            op: call.op,
            idempotent: call.idempotent,
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_success() || status == http::StatusCode::NOT_MODIFIED {
            return Ok(resp);
        }
        let h = resp.headers().clone();
        let body = if call.method == Method::HEAD {
            Bytes::new()
        } else {
            resp.bytes().await.unwrap_or_default()
        };
        let err = ServiceError::from_response(
            status.as_u16(),
            header_str(&h, "x-oss-request-id"),
            header_str(&h, "x-oss-err"),
            header_str(&h, "x-oss-ec"),
            &body,
        );
        if err.code == "RequestTimeTooSkewed" {
            if let Some(server) = parse_server_time(&err.server_time) {
                let offset = (server - OffsetDateTime::now_utc()).whole_seconds();
                tracing::warn!(
                    offset_secs = offset,
                    "OSS says the clock is skewed; adjusting"
                );
                self.set_clock_offset(offset);
            }
        }
        if is_credential_code(&err.code) && self.inner.credentials.renew(&signed).await {
            return Err(Error::CredentialsReplaced(Box::new(err)));
        }
        Err(Error::Service(Box::new(err)))
    }

    /// Sends and reads the whole answer.
    pub(crate) async fn exchange(&self, call: &Call<'_>, body: Bytes) -> Result<Answer, Error> {
        let resp = self.send(call, body.into()).await?;
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(|source| Error::Transport {
            op: call.op,
            idempotent: call.idempotent,
            source,
        })?;
        Ok(Answer { headers, body })
    }

    /// [`Self::exchange`] under the retry policy.
    pub(crate) async fn exchange_retried(
        &self,
        call: &Call<'_>,
        body: Bytes,
    ) -> Attempted<Result<Answer, Error>> {
        retry(&self.inner.config.retry, call.op, |_| {
            self.exchange(call, body.clone())
        })
        .await
    }

    /// HeadObject; `None` if the key does not exist.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>, Error> {
        check_key(key)?;
        let call = Call::new("HeadObject", Method::HEAD, bucket, Some(key));
        match self.exchange_retried(&call, Bytes::new()).await.result {
            Ok(a) => Ok(Some(ObjectHead::from_headers(&a.headers))),
            Err(Error::Service(e))
                if e.status == 404 && matches!(e.code.as_str(), "NoSuchKey" | "NotFound") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// GetObject as a stream, optionally a byte range `start..end` (end exclusive). Opening is
    /// retried; a failure while streaming is the caller's to retry.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(ObjectHead, ByteStream), Error> {
        check_key(key)?;
        let mut call = Call::new("GetObject", Method::GET, bucket, Some(key));
        if let Some((s, e)) = range {
            call = call
                .header("range", format!("bytes={s}-{}", e.saturating_sub(1)))
                .header("x-oss-range-behavior", "standard");
        }
        let resp = retry(&self.inner.config.retry, call.op, |_| {
            self.send(&call, reqwest::Body::from(Bytes::new()))
        })
        .await
        .result?;
        let head = ObjectHead::from_headers(resp.headers());
        let stream = resp.bytes_stream().map_err(std::io::Error::other).boxed();
        Ok((head, stream))
    }

    /// DeleteObject (succeeds when the key is already absent).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), Error> {
        check_key(key)?;
        let call = Call::new("DeleteObject", Method::DELETE, bucket, Some(key));
        self.exchange_retried(&call, Bytes::new())
            .await
            .result
            .map(|_| ())
    }

    /// One page of ListObjectsV2.
    pub async fn list_objects_v2(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        continuation_token: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, Error> {
        self.list_objects_v2_after(
            bucket,
            prefix,
            delimiter,
            None,
            continuation_token,
            max_keys,
        )
        .await
    }

    /// One page of ListObjectsV2 of the keys after `start_after` (ignored by OSS once a
    /// continuation token is given): a listing can start anywhere in key order, so one bucket can
    /// be listed as several key ranges at once.
    pub async fn list_objects_v2_after(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        continuation_token: Option<&str>,
        max_keys: u32,
    ) -> Result<ListPage, Error> {
        let mut call = Call::new("ListObjectsV2", Method::GET, bucket, None)
            .query("list-type", "2")
            .query("encoding-type", "url")
            .query("max-keys", max_keys.to_string());
        if !prefix.is_empty() {
            call = call.query("prefix", prefix);
        }
        if let Some(d) = delimiter {
            call = call.query("delimiter", d);
        }
        if let Some(t) = continuation_token {
            call = call.query("continuation-token", t);
        }
        if let Some(s) = start_after {
            call = call.query("start-after", s);
        }
        let answer = self.exchange_retried(&call, Bytes::new()).await.result?;
        let text = String::from_utf8_lossy(&answer.body);
        xml::parse_list(&text).map_err(|detail| Error::Protocol {
            op: "ListObjectsV2",
            detail,
        })
    }

    /// A presigned URL for `method` on a key, valid for `expires` (at most 7 days).
    pub fn presign(
        &self,
        method: Method,
        bucket: &str,
        key: &str,
        expires: Duration,
    ) -> Result<String, Error> {
        check_key(key)?;
        let secs = expires.as_secs();
        if secs == 0 || secs > signing::MAX_PRESIGN_EXPIRES_SECS {
            return Err(Error::Config(
                "presigned URLs last 1 second to 7 days".into(),
            ));
        }
        let cfg = &self.inner.config;
        let now = self.now();
        let credentials = self.credentials();
        let mut query = signing::presign_query(&credentials, now, self.scope(), secs, &[]);
        let sig = signing::presign_signature(
            &credentials,
            now,
            self.scope(),
            &RequestParts {
                method: method.as_str(),
                bucket: Some(bucket),
                key: Some(key),
                query: &query,
                headers: &[],
                additional_headers: &[],
            },
        );
        query.push(("x-oss-signature".into(), sig));
        Ok(cfg.endpoint.url(bucket, Some(key), &encode_query(&query)))
    }
}

#[cfg(test)]
mod tests;
