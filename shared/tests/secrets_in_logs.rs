//! Secrets never reach the logs: a run full of retries, a rejected signature and a key rotated
//! under the client (re-read through its refresher), with every log line captured (its own test
//! binary, so the global subscriber sees every event).

use bytes::Bytes;
use oss_emulator::{Config, Emulator, FaultConfig};
use s3_oss_sync::oss::{CredentialRefresh, OssClient};
use s3_oss_sync::store::object::ObjectMetadata;
use s3_oss_sync::store::upload::{BytesSource, UploadRequest};

mod common;
use common::{AK, PART, SK};
use s3_oss_sync::oss::signing::Credentials;

fn client_with(emu: &Emulator, secret: &str) -> OssClient {
    common::client_with(emu, secret, Some("sts-token-never-logged"), |_| {})
}

async fn upload(
    c: &OssClient,
    key: &str,
    body: Bytes,
) -> Result<s3_oss_sync::store::upload::UploadOutcome, s3_oss_sync::oss::Error> {
    let meta = ObjectMetadata::default();
    let req = UploadRequest {
        bucket: "dest",
        key,
        size: body.len() as u64,
        metadata: &meta,
        content_md5: None,
    };
    c.upload(&req, &BytesSource(body)).await
}

fn data(len: usize, seed: u64) -> Bytes {
    (0..len).map(|i| (i as u64 * 31 + seed) as u8).collect()
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let mut config = Config::new(AK, SK);
    config.credentials = vec![Credentials::new(
        AK,
        SK,
        Some("sts-token-never-logged".into()),
    )];
    config.faults = FaultConfig {
        error_rate: 0.3,
        seed: Some(5),
        ..FaultConfig::default()
    };
    let emu = Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let c = client_with(&emu, SK);
    for i in 0..10 {
        upload(&c, &format!("logged/{i}"), data(3 * PART as usize, i))
            .await
            .unwrap();
    }
    let wrong = client_with(&emu, "another-secret-value");
    let err = upload(&wrong, "x", Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    tracing::error!(error = %err, debug = ?err, client = ?c, "final error");

    // The key rotates; the refresher reads the new one (with its token) and the upload goes on.
    emu.set_faults(FaultConfig::default());
    let rotated = Credentials::new(
        "rotated-ak",
        "rotated-secret-never-logged",
        Some("rotated-token-never-logged".into()),
    );
    let fresh = rotated.clone();
    let refreshing =
        client_with(&emu, SK).with_credential_refresh(CredentialRefresh::new(move || {
            let c = fresh.clone();
            async move { Ok(c) }
        }));
    emu.set_credentials(vec![rotated]);
    upload(&refreshing, "rotated", data(3 * PART as usize, 9))
        .await
        .unwrap();
    tracing::info!(client = ?refreshing, "after the rotation");

    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("retrying"), "retries were logged");
    assert!(logs.contains("attempt 1 of 8"), "{logs}");
    assert!(!logs.contains(SK), "the secret leaked into the logs");
    assert!(!logs.contains("another-secret-value"));
    assert!(!logs.contains("sts-token-never-logged"));
    assert!(
        logs.contains("re-read them and replaced them") && logs.contains("rotated-ak"),
        "the refresh is logged, with the key id: {logs}"
    );
    assert!(!logs.contains("rotated-secret-never-logged"));
    assert!(!logs.contains("rotated-token-never-logged"));
    assert!(
        logs.contains("SignatureDoesNotMatch"),
        "the rejection itself is logged"
    );
}
