//! The OSS client against the OSS emulator on 127.0.0.1: keys, sizes, metadata, integrity,
//! retries under faults, permanent errors, clock skew and aborts.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use oss_emulator::{Config, Emulator, FaultConfig};
use s3_oss_sync::checksum::crc64;
use s3_oss_sync::oss::{Error, OssClient};
use s3_oss_sync::store::object::{ByteStream, ObjectMetadata};
use s3_oss_sync::store::upload::{BodySource, BytesSource, UploadRequest};
use std::time::Duration;

mod common;
use common::{client_with, AK, PART, SK};

const BUCKET: &str = "dest";

async fn emulator(config: Config) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client(emu: &Emulator) -> OssClient {
    client_with(emu, SK, None, |_| {})
}

fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A source that sends its bytes in small chunks, like a network stream.
struct Chunked(Bytes, usize);

impl BodySource for Chunked {
    fn open(&self) -> BoxFuture<'_, Result<ByteStream, Error>> {
        let (b, n) = (self.0.clone(), self.1);
        Box::pin(async move {
            let chunks: Vec<Result<Bytes, std::io::Error>> = (0..b.len())
                .step_by(n)
                .map(|i| Ok(b.slice(i..(i + n).min(b.len()))))
                .collect();
            Ok(futures_util::stream::iter(chunks).boxed())
        })
    }
}

async fn upload(
    c: &OssClient,
    key: &str,
    body: &Bytes,
) -> Result<s3_oss_sync::store::upload::UploadOutcome, Error> {
    let meta = ObjectMetadata::default();
    let req = UploadRequest {
        bucket: BUCKET,
        key,
        size: body.len() as u64,
        metadata: &meta,
        content_md5: None,
    };
    c.upload(&req, &Chunked(body.clone(), 64 * 1024)).await
}

async fn fetch(c: &OssClient, key: &str) -> Bytes {
    let (_, stream) = c.get_object(BUCKET, key, None).await.unwrap();
    let parts: Vec<Bytes> = stream.try_collect().await.unwrap();
    parts.concat().into()
}

async fn admin(emu: &Emulator, path: &str) -> serde_json::Value {
    reqwest::get(format!("{}/_emulator/{path}", emu.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn awkward_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "plain",
        "with space",
        "plus+sign",
        "percent%20literal",
        "100%",
        "question?mark",
        "hash#tag",
        "equals=sign",
        "amp&ersand",
        "semi;colon",
        "comma,separated",
        "colon:name",
        "at@sign",
        "dollar$",
        "bang!",
        "star*",
        "quote'single",
        "quote\"double",
        "paren(s)",
        "bracket[s]",
        "brace{s}",
        "tilde~",
        "back\\slash/inside",
        "caret^",
        "pipe|",
        "less<more>",
        "ümlaut",
        "日本語/ファイル.txt",
        "emoji 😀.png",
        "a/../b",
        "./dot",
        "dir/./x",
        "double//slash",
        "trailing/",
        "tab\there",
        "new\nline",
        "cr\rreturn",
        "unit\u{1f}sep",
        "zero-width\u{200b}",
        "...",
        "a..b",
        ".hidden",
        "-dash",
        "_under",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    keys.push(format!("{}/end", "d".repeat(1019)));
    keys
}

#[tokio::test]
async fn awkward_keys_round_trip() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client(&emu);
    let keys = awkward_keys();
    assert!(keys.len() >= 30);
    for key in &keys {
        let body = Bytes::from(format!("body of {key:?}"));
        upload(&c, key, &body)
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(fetch(&c, key).await, body, "{key:?}");
        let head = c.head_object(BUCKET, key).await.unwrap().unwrap();
        assert_eq!(head.crc64, Some(crc64(&body)), "{key:?}");
    }
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = c
            .list_objects_v2(BUCKET, "", None, token.as_deref(), 7)
            .await
            .unwrap();
        listed.extend(page.objects.into_iter().map(|o| o.key));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(listed, expected);
    // Listing from any key on, in pages: the keys after it, whatever the key holds.
    for from in [
        &expected[0],
        &expected[expected.len() / 2],
        &expected[expected.len() - 1],
    ] {
        let mut after = Vec::new();
        let mut token = None;
        loop {
            let page = c
                .list_objects_v2_after(BUCKET, "", None, Some(from), token.as_deref(), 5)
                .await
                .unwrap();
            after.extend(page.objects.into_iter().map(|o| o.key));
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        let want: Vec<String> = expected.iter().filter(|k| *k > from).cloned().collect();
        assert_eq!(after, want, "after {from:?}");
    }
}

#[tokio::test]
async fn keys_oss_cannot_store_fail_clearly_without_a_request() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client(&emu);
    for key in ["/leading", "\\leading", "", "..", &"k".repeat(1024)] {
        let err = upload(&c, key, &Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "InvalidObjectName", "{key:?}");
        assert!(!err.is_transient());
    }
    assert_eq!(emu.fault_stats().requests, 0);
}

#[tokio::test]
async fn sizes_around_the_part_size_arrive_with_matching_crc() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client(&emu);
    for (i, size) in [0, 1, PART - 1, PART, PART + 1, 100 * 1024 * 1024]
        .into_iter()
        .enumerate()
    {
        let body = data(size as usize, i as u64 + 1);
        let key = format!("sizes/{size}");
        let out = upload(&c, &key, &body).await.unwrap();
        assert_eq!(out.crc64, crc64(&body), "{size}");
        assert_eq!(
            out.parts,
            if size > PART {
                size.div_ceil(PART) as u32
            } else {
                0
            },
            "{size}"
        );
        let head = c.head_object(BUCKET, &key).await.unwrap().unwrap();
        assert_eq!(
            (head.size, head.crc64),
            (size, Some(crc64(&body))),
            "{size}"
        );
        assert_eq!(head.etag, out.etag);
        assert!(fetch(&c, &key).await == body, "{size}: content differs");
    }
}

#[tokio::test]
async fn metadata_and_content_md5_are_sent() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client(&emu);
    let meta = ObjectMetadata {
        content_type: Some("text/csv".into()),
        cache_control: Some("max-age=3600".into()),
        content_disposition: Some("attachment; filename=\"r.csv\"".into()),
        content_encoding: Some("gzip".into()),
        content_language: Some("en".into()),
        expires: Some("Thu, 01 Dec 2033 16:00:00 GMT".into()),
        user: vec![
            ("owner".into(), "data-team".into()),
            ("source-etag".into(), "abc".into()),
        ],
        storage_class: Some("IA".into()),
        tagging: Some("team=data".into()),
    };
    for size in [10u64, 3 * PART] {
        let body = data(size as usize, 9);
        let key = format!("meta/{size}");
        let md5: [u8; 16] = <md5::Md5 as md5::Digest>::digest(&body).into();
        let req = UploadRequest {
            bucket: BUCKET,
            key: &key,
            size,
            metadata: &meta,
            content_md5: Some(md5),
        };
        c.upload(&req, &BytesSource(body.clone())).await.unwrap();
        let head = c.head_object(BUCKET, &key).await.unwrap().unwrap();
        let mut got = head.metadata.clone();
        got.tagging = meta.tagging.clone();
        assert_eq!(got, meta, "{size}");
        assert_eq!(head.tagging_count, 1);
    }
    // A wrong MD5 known in advance is caught by OSS and nothing is stored. (It is retried: a
    // mismatch is normally damage on the way.)
    let req = UploadRequest {
        bucket: BUCKET,
        key: "bad-md5",
        size: 3,
        metadata: &meta,
        content_md5: Some([0; 16]),
    };
    let err = c
        .upload(&req, &BytesSource(Bytes::from_static(b"abc")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidDigest");
    assert_eq!(c.head_object(BUCKET, "bad-md5").await.unwrap(), None);
}

#[tokio::test]
async fn wrong_secret_gets_403_without_a_retry_storm() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client_with(&emu, "wrong-secret", None, |_| {});
    let err = upload(&c, "k", &Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    let svc = err.service().expect("a service error");
    assert_eq!(
        (svc.status, svc.code.as_str()),
        (403, "SignatureDoesNotMatch")
    );
    assert!(!svc.request_id.is_empty());
    assert_eq!(emu.fault_stats().requests, 1, "one request, no retries");
}

#[tokio::test]
async fn permanent_errors_fail_fast_with_code_and_request_id() {
    let mut config = Config::new(AK, SK);
    config.auto_create_buckets = false;
    let emu = emulator(config).await;
    let c = client(&emu);
    for size in [10usize, 3 * PART as usize] {
        let err = upload(&c, "k", &data(size, 1)).await.unwrap_err();
        assert_eq!(err.code(), "NoSuchBucket", "{size}");
        assert_eq!(err.request_id().map(str::len), Some(24), "{size}");
        assert!(!err.is_transient());
    }
    assert_eq!(emu.fault_stats().requests, 2, "one request per upload");
}

#[tokio::test]
async fn fifty_uploads_succeed_through_20_percent_transient_faults() {
    let mut config = Config::new(AK, SK);
    config.faults = FaultConfig {
        error_rate: 0.1,
        reset_rate: 0.1,
        seed: Some(42),
        ..FaultConfig::default()
    };
    let emu = emulator(config).await;
    let c = client(&emu);
    let sizes: Vec<usize> = (0..50)
        .map(|i| match i % 5 {
            0 => 0,
            1 => 1 + i * 37,
            2 => PART as usize - 1,
            3 => PART as usize + 1,
            _ => 3 * PART as usize + i,
        })
        .collect();
    let mut bodies = Vec::new();
    let mut retried = 0;
    for (i, size) in sizes.iter().enumerate() {
        let body = data(*size, 100 + i as u64);
        let out = upload(&c, &format!("faulty/{i}"), &body)
            .await
            .unwrap_or_else(|e| panic!("upload {i}: {e}"));
        assert_eq!(out.crc64, crc64(&body));
        if out.requests > 1 + out.parts + u32::from(out.parts > 0) * 2 {
            retried += 1;
        }
        bodies.push(body);
    }
    let stats = emu.fault_stats();
    assert!(
        stats.server_errors + stats.resets >= 10,
        "faults were injected: {stats:?}"
    );
    assert!(retried > 0, "some uploads needed retries");
    emu.set_faults(FaultConfig::default());
    for (i, body) in bodies.iter().enumerate() {
        assert!(
            fetch(&c, &format!("faulty/{i}")).await == *body,
            "object {i} differs"
        );
    }
    assert_eq!(
        admin(&emu, "uploads").await["in_progress"],
        0,
        "no upload left open"
    );
}

#[tokio::test]
async fn a_damaged_body_is_never_stored_and_nothing_is_deleted() {
    let mut config = Config::new(AK, SK);
    config.faults = FaultConfig {
        corrupt_rate: 1.0,
        ..FaultConfig::default()
    };
    let emu = emulator(config).await;
    let c = client_with(&emu, SK, None, |cfg| cfg.retry.max_attempts = 3);
    // An older copy is at the key: a damaged upload must neither replace nor delete it.
    emu.set_faults(FaultConfig::default());
    let older = data(700, 7);
    upload(&c, "damaged", &older).await.unwrap();
    emu.set_faults(FaultConfig {
        corrupt_rate: 1.0,
        ..FaultConfig::default()
    });
    // A single PutObject always carries Content-MD5 (here computed from the body), so OSS
    // refuses the damaged body each time; transient, for the message to come back.
    let err = upload(&c, "damaged", &data(1000, 1)).await.unwrap_err();
    assert_eq!(err.code(), "InvalidDigest");
    assert!(err.is_transient());
    assert!(err.request_id().is_some());
    // Parts: each one's CRC-64 mismatches, so the upload is never completed.
    let err = upload(&c, "damaged-mp", &data(3 * PART as usize, 2))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ChecksumMismatch");
    assert!(err.is_transient());
    emu.set_faults(FaultConfig::default());
    assert!(
        fetch(&c, "damaged").await == older,
        "the older copy is untouched"
    );
    assert_eq!(
        c.head_object(BUCKET, "damaged-mp").await.unwrap(),
        None,
        "never completed"
    );
    assert_eq!(
        admin(&emu, "uploads").await["in_progress"],
        0,
        "multipart aborted"
    );
    // A transient damage is repaired by the retry, with and without an MD5 known in advance.
    emu.set_faults(FaultConfig {
        corrupt_rate: 0.5,
        seed: Some(3),
        ..FaultConfig::default()
    });
    let c = client(&emu);
    let meta = ObjectMetadata::default();
    for i in 0..10 {
        let body = data(5000, i);
        let key = format!("repaired/{i}");
        if i % 2 == 0 {
            upload(&c, &key, &body).await.unwrap();
        } else {
            let req = UploadRequest {
                bucket: BUCKET,
                key: &key,
                size: body.len() as u64,
                metadata: &meta,
                content_md5: Some(<md5::Md5 as md5::Digest>::digest(&body).into()),
            };
            c.upload(&req, &Chunked(body.clone(), 1000)).await.unwrap();
        }
        emu.set_faults(FaultConfig::default());
        assert!(fetch(&c, &key).await == body);
        emu.set_faults(FaultConfig {
            corrupt_rate: 0.5,
            seed: Some(3 + i),
            ..FaultConfig::default()
        });
    }
    assert!(emu.fault_stats().corrupted > 0, "damage was injected");
}

#[tokio::test]
async fn an_upload_whose_job_was_dropped_is_aborted_later() {
    let mut config = Config::new(AK, SK);
    // Every answer takes 100 ms: a 20-part upload, one part at a time, takes seconds.
    config.faults = FaultConfig {
        latency_ms: 100,
        ..FaultConfig::default()
    };
    let emu = emulator(config).await;
    let c = client_with(&emu, SK, None, |cfg| cfg.parts_in_flight = 1);
    let body = data(20 * PART as usize, 5);
    let job = upload(&c, "dropped", &body);
    let cut = tokio::time::timeout(Duration::from_millis(450), job).await;
    assert!(cut.is_err(), "the upload was cut mid-way");
    assert_eq!(
        admin(&emu, "uploads").await["in_progress"],
        1,
        "the dropped job left its upload open"
    );
    let report = c.abort_abandoned_uploads().await;
    assert_eq!((report.aborted, report.failed.len()), (1, 0));
    assert_eq!(admin(&emu, "uploads").await["in_progress"], 0);
    assert_eq!(c.head_object(BUCKET, "dropped").await.unwrap(), None);
    // The list is empty now.
    let again = c.abort_abandoned_uploads().await;
    assert_eq!((again.aborted, again.failed.len()), (0, 0));
}

#[tokio::test]
async fn a_failed_abort_stays_on_the_list_for_the_next_call() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client_with(&emu, SK, None, |cfg| {
        cfg.parts_in_flight = 1;
        cfg.retry.max_attempts = 1;
    });
    let body = data(20 * PART as usize, 6);
    emu.set_faults(FaultConfig {
        latency_ms: 100,
        ..FaultConfig::default()
    });
    let cut = tokio::time::timeout(Duration::from_millis(350), upload(&c, "k", &body)).await;
    assert!(cut.is_err());
    emu.set_faults(FaultConfig {
        error_rate: 1.0,
        seed: Some(1),
        ..FaultConfig::default()
    });
    let report = c.abort_abandoned_uploads().await;
    assert_eq!(report.aborted, 0);
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0.key, "k");
    assert!(report.failed[0].1.is_transient());
    emu.set_faults(FaultConfig::default());
    assert_eq!(admin(&emu, "uploads").await["in_progress"], 1);
    let report = c.abort_abandoned_uploads().await;
    assert_eq!((report.aborted, report.failed.len()), (1, 0));
    assert_eq!(admin(&emu, "uploads").await["in_progress"], 0);
}

#[tokio::test]
async fn the_memory_budget_bounds_the_part_buffers_of_every_upload() {
    // Two uploads of 6 parts, 4 parts in flight each (8 buffers wanted at once), share a
    // budget of 3 parts: their buffers take it all, wait for it, and both complete.
    let emu = emulator(Config::new(AK, SK)).await;
    let budget = s3_oss_sync::budget::MemoryBudget::new(3 * PART);
    let c = client_with(&emu, SK, None, |cfg| {
        cfg.parts_in_flight = 4;
        cfg.memory_budget = budget.clone();
    });
    emu.set_faults(FaultConfig {
        latency_ms: 20,
        ..FaultConfig::default()
    });
    let (a, b) = (data(6 * PART as usize, 1), data(6 * PART as usize, 2));
    let lowest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX));
    let watch = {
        let (budget, lowest) = (budget.clone(), lowest.clone());
        tokio::spawn(async move {
            loop {
                lowest.fetch_min(budget.available(), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let (ra, rb) = tokio::join!(upload(&c, "a", &a), upload(&c, "b", &b));
    watch.abort();
    assert_eq!(ra.unwrap().parts, 6);
    assert_eq!(rb.unwrap().parts, 6);
    assert_eq!(
        lowest.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the budget was used up"
    );
    assert_eq!(budget.available(), 3 * PART, "every permit was given back");
    emu.set_faults(FaultConfig::default());
    assert!(fetch(&c, "a").await == a && fetch(&c, "b").await == b);
}

#[tokio::test]
async fn a_failing_source_aborts_the_multipart_upload() {
    struct Failing;
    impl BodySource for Failing {
        fn open(&self) -> BoxFuture<'_, Result<ByteStream, Error>> {
            Box::pin(async {
                let good = futures_util::stream::iter((0..3).map(|i| Ok(data(PART as usize, i))));
                let bad = futures_util::stream::once(async {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "source went away",
                    ))
                });
                Ok(good.chain(bad).boxed())
            })
        }
    }
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client(&emu);
    let meta = ObjectMetadata::default();
    let req = UploadRequest {
        bucket: BUCKET,
        key: "half",
        size: 10 * PART,
        metadata: &meta,
        content_md5: None,
    };
    let err = c.upload(&req, &Failing).await.unwrap_err();
    assert_eq!(err.code(), "SourceReadError");
    assert!(err.is_transient(), "a reset source may work next time");
    assert_eq!(admin(&emu, "uploads").await["in_progress"], 0);
    assert_eq!(c.head_object(BUCKET, "half").await.unwrap(), None);
}

#[tokio::test]
async fn a_source_of_the_wrong_size_is_an_error() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client_with(&emu, SK, None, |cfg| cfg.retry.max_attempts = 2);
    let meta = ObjectMetadata::default();
    for (announced, actual) in [
        (100u64, 50usize),
        (100, 150),
        (3 * PART, 2 * PART as usize),
        (3 * PART, 4 * PART as usize),
    ] {
        let req = UploadRequest {
            bucket: BUCKET,
            key: "sized",
            size: announced,
            metadata: &meta,
            content_md5: None,
        };
        let err = c
            .upload(&req, &BytesSource(data(actual, 1)))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            "SourceSizeMismatch",
            "{announced} vs {actual}: {err}"
        );
    }
    assert_eq!(c.head_object(BUCKET, "sized").await.unwrap(), None);
    assert_eq!(admin(&emu, "uploads").await["in_progress"], 0);
}

#[tokio::test]
async fn clock_skew_is_corrected_from_the_servers_answer() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client(&emu);
    c.set_clock_offset(-3600);
    upload(&c, "skewed", &Bytes::from_static(b"on time"))
        .await
        .unwrap();
    assert_eq!(fetch(&c, "skewed").await, Bytes::from_static(b"on time"));
}

#[tokio::test]
async fn head_get_range_delete_and_presign() {
    let emu = emulator(Config::new(AK, SK)).await;
    let c = client(&emu);
    assert_eq!(c.head_object(BUCKET, "absent").await.unwrap(), None);
    let body = data(1000, 4);
    upload(&c, "r", &body).await.unwrap();
    let (head, stream) = c.get_object(BUCKET, "r", Some((100, 200))).await.unwrap();
    let got: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(got.concat(), body[100..200]);
    assert_eq!(head.size, 100);
    let url = c
        .presign(http::Method::GET, BUCKET, "r", Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        reqwest::get(url).await.unwrap().bytes().await.unwrap(),
        body
    );
    c.delete_object(BUCKET, "r").await.unwrap();
    c.delete_object(BUCKET, "r").await.unwrap();
    assert_eq!(c.head_object(BUCKET, "r").await.unwrap(), None);
    let Err(err) = c.get_object(BUCKET, "r", None).await else {
        panic!("a deleted object was served");
    };
    assert_eq!(err.code(), "NoSuchKey");
}

#[tokio::test]
async fn the_destination_store_trait_drives_the_real_client() {
    use s3_oss_sync::oss::destination::OssDestination;
    use s3_oss_sync::store::destination::DestinationStore;
    let emu = emulator(Config::new(AK, SK)).await;
    let dest = OssDestination::new(client(&emu), BUCKET);
    assert_eq!(dest.head("t").await.unwrap(), None);
    let meta = ObjectMetadata::default();
    let body = data(2 * PART as usize + 5, 8);
    let req = UploadRequest {
        bucket: dest.bucket(),
        key: "t",
        size: body.len() as u64,
        metadata: &meta,
        content_md5: None,
    };
    let out = dest.upload(&req, &BytesSource(body.clone())).await.unwrap();
    assert_eq!(
        dest.head("t").await.unwrap().unwrap().crc64,
        Some(out.crc64)
    );
    dest.delete("t").await.unwrap();
    assert_eq!(dest.head("t").await.unwrap(), None);
}

#[tokio::test]
async fn timeouts_are_retried_only_where_repeating_is_safe() {
    let mut config = Config::new(AK, SK);
    config.faults = FaultConfig {
        latency_ms: 400,
        ..FaultConfig::default()
    };
    let emu = emulator(config).await;
    let c = client_with(&emu, SK, None, |cfg| {
        cfg.read_timeout = Duration::from_millis(100);
        cfg.retry.max_attempts = 3;
    });
    let err = c.head_object(BUCKET, "k").await.unwrap_err();
    assert_eq!(err.code(), "TransportError");
    assert_eq!(
        emu.fault_stats().requests,
        3,
        "HEAD is safe to repeat: {err}"
    );
    let err = upload(&c, "mp", &data(3 * PART as usize, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "TransportError");
    assert_eq!(
        emu.fault_stats().requests,
        4,
        "a timed-out initiate is not repeated: {err}"
    );
}
