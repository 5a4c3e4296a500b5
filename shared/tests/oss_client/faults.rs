//! Errors and faults: a wrong secret, permanent errors, transient faults, a damaged body, clock
//! skew and timeouts.

use super::{admin, client, data, emulator, fetch, upload, Chunked, BUCKET};
use crate::common::{client_with, AK, PART, SK};
use bytes::Bytes;
use oss_emulator::{Config, FaultConfig};
use s3_oss_sync::checksum::crc64;
use s3_oss_sync::store::object::ObjectMetadata;
use s3_oss_sync::store::upload::UploadRequest;
use std::time::Duration;

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
