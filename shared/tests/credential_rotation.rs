//! OSS credentials rotated under a running client: the emulator starts accepting a new key and
//! the "secret" the client's refresher reads is updated. The client re-reads it when OSS refuses
//! the old key, at most once a minute (by a fake clock), and repeats the refused request once;
//! without a change, or within the minute, the refusal stands.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use md5::Digest;
use oss_emulator::{Config, Emulator};
use s3_oss_sync::checksum::crc64;
use s3_oss_sync::oss::credentials::Clock;
use s3_oss_sync::oss::signing::Credentials;
use s3_oss_sync::oss::{CredentialRefresh, OssClient};
use s3_oss_sync::store::object::{ByteStream, ObjectMetadata};
use s3_oss_sync::store::upload::{BodySource, UploadRequest};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{AK, PART, SK};

/// A clock the test moves on by hand.
struct FakeClock(Mutex<Instant>);

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
}

/// An emulator, a client of it whose refresher reads `secret`, and a count of those reads.
struct Rig {
    emu: Emulator,
    secret: Arc<Mutex<Credentials>>,
    reads: Arc<AtomicU32>,
    clock: Arc<FakeClock>,
    client: OssClient,
}

impl Rig {
    async fn start() -> Self {
        let emu = Emulator::start(Config::new(AK, SK), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let secret = Arc::new(Mutex::new(Credentials::new(AK, SK, None)));
        let reads = Arc::new(AtomicU32::new(0));
        let clock = Arc::new(FakeClock(Mutex::new(Instant::now())));
        let (s, r) = (secret.clone(), reads.clone());
        let refresh = CredentialRefresh::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
            let c = s.lock().unwrap().clone();
            async move { Ok(c) }
        })
        .clock(clock.clone());
        let client = common::client_with(&emu, SK, None, |_| {}).with_credential_refresh(refresh);
        Self {
            emu,
            secret,
            reads,
            clock,
            client,
        }
    }

    /// The emulator accepts only `n`'s key from now on; the secret is updated if `update`.
    fn rotate(&self, n: u32, update: bool) {
        let c = key(n);
        self.emu.set_credentials(vec![c.clone()]);
        if update {
            *self.secret.lock().unwrap() = c;
        }
    }

    fn reads(&self) -> u32 {
        self.reads.load(Ordering::SeqCst)
    }

    fn requests(&self) -> u64 {
        self.emu.fault_stats().requests
    }

    fn minute_on(&self) {
        *self.clock.0.lock().unwrap() += Duration::from_secs(60);
    }
}

fn key(n: u32) -> Credentials {
    Credentials::new(format!("ak-{n}"), format!("sk-{n}-never-logged"), None)
}

fn data(len: usize, seed: u64) -> Bytes {
    (0..len).map(|i| (i as u64 * 31 + seed) as u8).collect()
}

fn request<'a>(key: &'a str, size: u64, meta: &'a ObjectMetadata) -> UploadRequest<'a> {
    UploadRequest {
        bucket: "dest",
        key,
        size,
        metadata: meta,
        content_md5: None,
    }
}

/// A body that, when opened the first time, runs `on_first_open` (a rotation) before
/// answering; counts its openings.
struct RotatingSource<F: Fn() + Send + Sync> {
    body: Bytes,
    opens: AtomicU32,
    on_first_open: F,
}

impl<F: Fn() + Send + Sync> BodySource for RotatingSource<F> {
    fn open(&self) -> BoxFuture<'_, Result<ByteStream, s3_oss_sync::oss::Error>> {
        if self.opens.fetch_add(1, Ordering::SeqCst) == 0 {
            (self.on_first_open)();
        }
        let chunks: Vec<Result<Bytes, std::io::Error>> = self
            .body
            .chunks(64 * 1024)
            .map(|c| Ok(self.body.slice_ref(c)))
            .collect();
        Box::pin(async move { Ok(futures_util::stream::iter(chunks).boxed()) })
    }
}

#[tokio::test]
async fn a_rotation_is_followed_once_a_minute_and_only_when_the_secret_changed() {
    let rig = Rig::start().await;
    let c = &rig.client;
    let meta = ObjectMetadata::default();
    let body = data(1000, 1);
    c.upload(
        &request("k", body.len() as u64, &meta),
        &s3_oss_sync::store::upload::BytesSource(body.clone()),
    )
    .await
    .unwrap();
    assert!(c.head_object("dest", "k").await.unwrap().is_some());
    assert_eq!(rig.reads(), 0, "no refusal, no re-read");

    // Rotated, secret updated: the next request fails once, the secret is read, it succeeds.
    rig.rotate(1, true);
    let before = rig.requests();
    assert!(c.head_object("dest", "k").await.unwrap().is_some());
    assert_eq!((rig.reads(), rig.requests() - before), (1, 2));
    assert_eq!(c.credentials().access_key_id, "ak-1");
    let before = rig.requests();
    assert!(c.head_object("dest", "k").await.unwrap().is_some());
    assert_eq!((rig.reads(), rig.requests() - before), (1, 1));

    // Rotated again within the minute: no second read, the refusal stands, permanent.
    rig.rotate(2, true);
    let before = rig.requests();
    let err = c.head_object("dest", "k").await.unwrap_err();
    assert_eq!(err.code(), "InvalidAccessKeyId");
    assert!(!err.is_transient(), "{err}");
    assert_eq!((rig.reads(), rig.requests() - before), (1, 1));

    // A minute on, the same request refreshes and succeeds.
    rig.minute_on();
    assert!(c.head_object("dest", "k").await.unwrap().is_some());
    assert_eq!(
        (rig.reads(), c.credentials().access_key_id.as_str()),
        (2, "ak-2")
    );

    // Rotated without updating the secret: read once, unchanged, the refusal stands at once.
    rig.minute_on();
    rig.rotate(3, false);
    let before = rig.requests();
    let err = c.delete_object("dest", "k").await.unwrap_err();
    assert_eq!(err.code(), "InvalidAccessKeyId");
    assert!(!err.is_transient(), "{err}");
    assert_eq!((rig.reads(), rig.requests() - before), (3, 1));
    let err = c
        .list_objects_v2("dest", "", None, None, 10)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidAccessKeyId");
    assert_eq!(rig.reads(), 3, "within the minute no further read");

    // A new secret with the same key id (SignatureDoesNotMatch) is followed too.
    rig.minute_on();
    let same_id = Credentials::new("ak-2", "sk-2-rotated-never-logged", None);
    rig.emu.set_credentials(vec![same_id.clone()]);
    *rig.secret.lock().unwrap() = same_id;
    let page = c.list_objects_v2("dest", "", None, None, 10).await.unwrap();
    assert_eq!(page.objects.len(), 1);
    assert_eq!(rig.reads(), 4);
}

#[tokio::test]
async fn without_a_refresher_a_rotation_fails_permanently() {
    let emu = Emulator::start(Config::new(AK, SK), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = common::client_with(&emu, SK, None, |_| {});
    assert!(c.head_object("dest", "absent").await.unwrap().is_none());
    emu.set_credentials(vec![key(1)]);
    let before = emu.fault_stats().requests;
    let err = c.head_object("dest", "absent").await.unwrap_err();
    assert_eq!(err.code(), "InvalidAccessKeyId");
    assert!(!err.is_transient());
    assert_eq!(emu.fault_stats().requests - before, 1);
}

#[tokio::test]
async fn concurrent_refusals_share_one_read() {
    let rig = Rig::start().await;
    rig.rotate(1, true);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let c = rig.client.clone();
        tasks.spawn(async move { c.head_object("dest", &format!("absent/{i}")).await });
    }
    while let Some(done) = tasks.join_next().await {
        assert!(done.unwrap().unwrap().is_none());
    }
    assert_eq!(rig.reads(), 1);
}

#[tokio::test]
async fn a_streamed_put_across_a_rotation_reopens_its_body() {
    let rig = Arc::new(Rig::start().await);
    let meta = ObjectMetadata::default();
    let body = data(PART as usize / 2, 7);
    let r = rig.clone();
    let source = RotatingSource {
        body: body.clone(),
        opens: AtomicU32::new(0),
        on_first_open: move || r.rotate(1, true),
    };
    // With the MD5 known in advance (an S3 ETag), the body is streamed, not buffered, so a
    // repeat must open it again.
    let mut req = request("streamed", body.len() as u64, &meta);
    req.content_md5 = Some(md5::Md5::digest(&body).into());
    let out = rig.client.put_object(&req, &source).await.unwrap();
    assert_eq!((out.crc64, out.requests), (crc64(&body), 2));
    assert_eq!(source.opens.load(Ordering::SeqCst), 2, "reopened once");
    assert_eq!(rig.reads(), 1);
    let head = rig
        .client
        .head_object("dest", "streamed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.crc64, Some(crc64(&body)));
}

#[tokio::test]
async fn a_multipart_upload_across_a_rotation_completes() {
    let rig = Arc::new(Rig::start().await);
    let meta = ObjectMetadata::default();
    let body = data(5 * PART as usize + 123, 9);
    // The key rotates once the third part is being read: earlier parts went with the old key,
    // later ones are refused until the client re-reads the secret.
    let r = rig.clone();
    let seen = Arc::new(AtomicU32::new(0));
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(PART as usize / 4)
        .map(|c| Ok(body.slice_ref(c)))
        .collect();
    let stream: ByteStream = futures_util::stream::iter(chunks)
        .inspect(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) == 8 {
                r.rotate(1, true);
            }
        })
        .boxed();
    let out = rig
        .client
        .put_multipart(&request("multi", body.len() as u64, &meta), stream)
        .await
        .unwrap();
    assert_eq!((out.parts, out.crc64), (6, crc64(&body)));
    assert_eq!(rig.reads(), 1);
    assert_eq!(rig.client.credentials().access_key_id, "ak-1");
    let head = rig
        .client
        .head_object("dest", "multi")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (head.size, head.crc64),
        (body.len() as u64, Some(crc64(&body)))
    );
}
