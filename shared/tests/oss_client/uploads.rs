//! Multipart uploads and the other calls: dropped jobs and failed aborts, the memory budget,
//! failing or wrong-sized sources, HEAD, ranged GET, DELETE, presigning and the destination trait.

use super::{admin, client, data, emulator, fetch, upload, BUCKET};
use crate::common::{client_with, AK, PART, SK};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use oss_emulator::{Config, FaultConfig};
use s3_oss_sync::oss::Error;
use s3_oss_sync::store::object::{ByteStream, ObjectMetadata};
use s3_oss_sync::store::upload::{BodySource, BytesSource, UploadRequest};
use std::time::Duration;

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
