//! Each kind of injected fault reaches a client: 5xx, latency, reset mid-body, trickle.

use crate::support::*;
use oss_emulator::{Config, FaultConfig};
use std::time::{Duration, Instant};

#[tokio::test]
async fn server_errors_reach_the_client() {
    let emu = start().await;
    let c = Client::new(&emu);
    emu.set_faults(FaultConfig {
        error_rate: 1.0,
        seed: Some(1),
        ..FaultConfig::default()
    });
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let r = c.send(Req::new("PUT", Some("k")).body("x")).await;
        let status = r.status().as_u16();
        let code = code_of(&r.text().await.unwrap());
        seen.insert((status, code));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [
            (500, "InternalError".to_owned()),
            (503, "ServiceUnavailable".to_owned())
        ]
    );
    emu.set_faults(FaultConfig::default());
    assert_eq!(
        c.send(Req::new("GET", Some("k"))).await.status(),
        404,
        "nothing was stored"
    );
    assert_eq!(emu.fault_stats().server_errors, 20);
}

#[tokio::test]
async fn latency_delays_every_response() {
    let emu = start().await;
    let c = Client::new(&emu);
    emu.set_faults(FaultConfig {
        latency_ms: 300,
        ..FaultConfig::default()
    });
    let t = Instant::now();
    assert_eq!(c.send(Req::new("GET", Some("k"))).await.status(), 404);
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn reset_cuts_a_download_mid_body() {
    let emu = start().await;
    let c = Client::new(&emu);
    let body = data(1 << 20, 5);
    c.send(Req::new("PUT", Some("k")).body(body.clone())).await;
    emu.set_faults(FaultConfig {
        reset_rate: 1.0,
        ..FaultConfig::default()
    });
    let r = c.send(Req::new("GET", Some("k"))).await;
    assert_eq!(r.status(), 200, "headers arrive");
    assert_eq!(header(&r, "content-length"), (1 << 20).to_string());
    assert!(r.bytes().await.is_err(), "the body must be cut short");
}

#[tokio::test]
async fn reset_cuts_an_upload_and_stores_nothing() {
    let emu = start().await;
    let c = Client::new(&emu);
    emu.set_faults(FaultConfig {
        reset_rate: 1.0,
        ..FaultConfig::default()
    });
    let err = c
        .try_send(Req::new("PUT", Some("k")).body(data(1 << 20, 6)))
        .await;
    assert!(err.is_err(), "the connection must be dropped: {err:?}");
    let err = c.try_send(Req::new("DELETE", Some("k"))).await;
    assert!(err.is_err(), "a bodiless request loses its connection too");
    emu.set_faults(FaultConfig::default());
    assert_eq!(c.send(Req::new("GET", Some("k"))).await.status(), 404);
    assert_eq!(emu.fault_stats().resets, 2);
}

#[tokio::test]
async fn trickle_sends_the_body_slowly_in_pieces() {
    let emu = start().await;
    let c = Client::new(&emu);
    let body = data(4000, 7);
    c.send(Req::new("PUT", Some("k")).body(body.clone())).await;
    emu.set_faults(FaultConfig {
        trickle_bytes_per_sec: Some(10_000),
        ..FaultConfig::default()
    });
    let t = Instant::now();
    let mut r = c.send(Req::new("GET", Some("k"))).await;
    let mut chunks = 0;
    let mut got = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        chunks += 1;
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, body);
    assert!(chunks >= 4, "{chunks} chunks");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn faults_are_set_at_start_or_through_the_admin_endpoint() {
    let mut config = Config::new(AK, SK);
    config.faults = FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    };
    let emu = start_with(config).await;
    let c = Client::new(&emu);
    assert!(c
        .send(Req::new("GET", Some("k")))
        .await
        .status()
        .is_server_error());
    let admin = reqwest::Client::new();
    let url = format!("{}/_emulator/faults", emu.endpoint());
    let r = admin
        .put(&url)
        .body(r#"{"error_rate": 2}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "rates are checked");
    let r = admin
        .put(&url)
        .body(r#"{"error_rate": 0, "latency_ms": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(c.send(Req::new("GET", Some("k"))).await.status(), 404);
    let stats: serde_json::Value = admin
        .get(format!("{}/_emulator/stats", emu.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["server_errors"], 1);
    assert_eq!(stats["delayed"], 1);
}

#[tokio::test]
async fn corruption_is_stored_and_reported_honestly() {
    let emu = start().await;
    let c = Client::new(&emu);
    emu.set_faults(FaultConfig {
        corrupt_rate: 1.0,
        ..FaultConfig::default()
    });
    let put = c.send(Req::new("PUT", Some("k")).body("123456789")).await;
    assert_eq!(put.status(), 200);
    let reported = header(&put, "x-oss-hash-crc64ecma");
    assert_ne!(
        reported, "11051210869376104954",
        "the CRC is of the damaged bytes"
    );
    emu.set_faults(FaultConfig::default());
    let got = c.send(Req::new("GET", Some("k"))).await;
    assert_eq!(header(&got, "x-oss-hash-crc64ecma"), reported);
    let body = got.bytes().await.unwrap();
    assert_eq!(&body[1..], b"23456789");
    assert_ne!(body[0], b'1');
    assert_eq!(emu.fault_stats().corrupted, 1);
}

#[tokio::test]
async fn damage_on_the_way_is_refused_when_content_md5_was_sent() {
    use base64::Engine;
    use md5::Digest;
    let b64_md5 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(d));
    let emu = start().await;
    let c = Client::new(&emu);
    let put = c
        .send(
            Req::new("PUT", Some("k"))
                .h("content-md5", &b64_md5(b"older"))
                .body("older"),
        )
        .await;
    assert_eq!(put.status(), 200);
    emu.set_faults(FaultConfig {
        corrupt_rate: 1.0,
        ..FaultConfig::default()
    });
    for key in ["k", "new"] {
        let put = c
            .send(
                Req::new("PUT", Some(key))
                    .h("content-md5", &b64_md5(b"123456789"))
                    .body("123456789"),
            )
            .await;
        assert_eq!(
            (put.status().as_u16(), code_of(&put.text().await.unwrap())),
            (400, "InvalidDigest".into()),
            "{key}"
        );
    }
    assert_eq!(emu.fault_stats().corrupted, 2);
    emu.set_faults(FaultConfig::default());
    let kept = c.send(Req::new("GET", Some("k"))).await;
    assert_eq!(
        kept.bytes().await.unwrap().as_ref(),
        b"older",
        "nothing stored"
    );
    let absent = c.send(Req::new("GET", Some("new"))).await;
    assert_eq!(absent.status(), 404, "nothing stored");
}
