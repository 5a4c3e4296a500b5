//! PutObject, GetObject (ranges), HeadObject, DeleteObject, metadata, keys, limits, persistence.

use crate::support::*;
use base64::Engine;
use md5::{Digest, Md5};
use oss_emulator::Config;
use s3_oss_sync::checksum::crc64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn b64_md5(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(d))
}

#[tokio::test]
async fn put_get_head_delete_with_etag_and_crc_forms() {
    let emu = start().await;
    let c = Client::new(&emu);
    let body = b"123456789".to_vec();
    let put = c.send(Req::new("PUT", Some("k")).body(body.clone())).await;
    assert_eq!(put.status(), 200);
    assert_eq!(header(&put, "etag"), "\"25F9E794323B453885F5181F1B624D0B\"");
    assert_eq!(header(&put, "x-oss-hash-crc64ecma"), "11051210869376104954");
    assert_eq!(header(&put, "content-md5"), b64_md5(&body));
    assert_eq!(header(&put, "x-oss-request-id").len(), 24);

    let get = c.send(Req::new("GET", Some("k"))).await;
    assert_eq!(get.status(), 200);
    assert_eq!(header(&get, "x-oss-hash-crc64ecma"), "11051210869376104954");
    assert_eq!(header(&get, "x-oss-object-type"), "Normal");
    assert_eq!(header(&get, "content-type"), "application/octet-stream");
    assert_eq!(header(&get, "content-md5"), b64_md5(&body));
    assert_eq!(get.bytes().await.unwrap().to_vec(), body);

    let head = c.send(Req::new("HEAD", Some("k"))).await;
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), "9");
    assert_eq!(head.bytes().await.unwrap().len(), 0);

    assert_eq!(c.send(Req::new("DELETE", Some("k"))).await.status(), 204);
    assert_eq!(
        c.send(Req::new("DELETE", Some("k"))).await.status(),
        204,
        "absent: still 204"
    );
    let gone = c.send(Req::new("GET", Some("k"))).await;
    assert_eq!(gone.status(), 404);
    let xml = gone.text().await.unwrap();
    assert_eq!(code_of(&xml), "NoSuchKey");
    for field in ["Message", "RequestId", "HostId", "EC"] {
        assert!(!element(&xml, field).is_empty(), "{field} in {xml}");
    }
    assert_eq!(element(&xml, "Key"), "k");
}

#[tokio::test]
async fn empty_object_has_crc_zero() {
    let emu = start().await;
    let c = Client::new(&emu);
    let put = c.send(Req::new("PUT", Some("empty"))).await;
    assert_eq!(header(&put, "x-oss-hash-crc64ecma"), "0");
    assert_eq!(header(&put, "etag"), "\"D41D8CD98F00B204E9800998ECF8427E\"");
}

#[tokio::test]
async fn head_errors_carry_base64_xml_in_x_oss_err() {
    let emu = start().await;
    let c = Client::new(&emu);
    let r = c.send(Req::new("HEAD", Some("missing"))).await;
    assert_eq!(r.status(), 404);
    let err = header(&r, "x-oss-err");
    assert_eq!(header(&r, "x-oss-ec"), "0026-00000001");
    assert!(r.bytes().await.unwrap().is_empty());
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(err)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(code_of(&xml), "NoSuchKey");
}

#[tokio::test]
async fn metadata_round_trips() {
    let emu = start().await;
    let c = Client::new(&emu);
    let put = Req::new("PUT", Some("m.txt"))
        .h("content-type", "text/plain")
        .h("cache-control", "no-cache")
        .h("content-disposition", "attachment")
        .h("content-encoding", "gzip")
        .h("content-language", "zh-CN")
        .h("expires", "Wed, 21 Oct 2026 07:28:00 GMT")
        .h("x-oss-meta-Owner", "alice")
        .h("x-oss-storage-class", "Archive")
        .h("x-oss-tagging", "a=1&b=two%20words")
        .body("x");
    assert_eq!(c.send(put).await.status(), 200);
    let head = c.send(Req::new("HEAD", Some("m.txt"))).await;
    for (n, v) in [
        ("content-type", "text/plain"),
        ("cache-control", "no-cache"),
        ("content-disposition", "attachment"),
        ("content-encoding", "gzip"),
        ("content-language", "zh-CN"),
        ("expires", "Wed, 21 Oct 2026 07:28:00 GMT"),
        ("x-oss-meta-owner", "alice"),
        ("x-oss-storage-class", "Archive"),
        ("x-oss-tagging-count", "2"),
    ] {
        assert_eq!(header(&head, n), v, "{n}");
    }
    let tags = c
        .send(Req::new("GET", Some("m.txt")).q("tagging", ""))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(elements(&tags, "Key"), ["a", "b"]);
    assert_eq!(elements(&tags, "Value"), ["1", "two words"]);

    let bad = c
        .send(Req::new("PUT", Some("x")).h("x-oss-storage-class", "Glacier"))
        .await;
    assert_eq!(
        (bad.status().as_u16(), code_of(&bad.text().await.unwrap())),
        (400, "InvalidArgument".into())
    );
    let big = "v".repeat(8 * 1024);
    let bad = c
        .send(Req::new("PUT", Some("x")).h("x-oss-meta-big", &big))
        .await;
    assert_eq!(code_of(&bad.text().await.unwrap()), "InvalidArgument");
}

#[tokio::test]
async fn ranges_follow_oss_rules() {
    let emu = start().await;
    let c = Client::new(&emu);
    let body = data(1000, 1);
    c.send(Req::new("PUT", Some("r")).body(body.clone())).await;
    let r = c
        .send(Req::new("GET", Some("r")).h("range", "bytes=100-199"))
        .await;
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 100-199/1000");
    assert_eq!(r.bytes().await.unwrap().to_vec(), body[100..200]);
    let r = c
        .send(Req::new("GET", Some("r")).h("range", "bytes=-10"))
        .await;
    assert_eq!(r.bytes().await.unwrap().to_vec(), body[990..]);
    // Unsatisfiable: OSS ignores it and sends the whole object, unless asked for standard behaviour.
    let r = c
        .send(Req::new("GET", Some("r")).h("range", "bytes=5000-6000"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 1000);
    let r = c
        .send(
            Req::new("GET", Some("r"))
                .h("range", "bytes=5000-6000")
                .h("x-oss-range-behavior", "standard"),
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), code_of(&r.text().await.unwrap())),
        (416, "InvalidRange".into())
    );
}

#[tokio::test]
async fn conditional_reads_and_forbid_overwrite() {
    let emu = start().await;
    let c = Client::new(&emu);
    let etag = header(&c.send(Req::new("PUT", Some("c")).body("v1")).await, "etag");
    assert_eq!(
        c.send(Req::new("GET", Some("c")).h("if-match", &etag))
            .await
            .status(),
        200
    );
    let r = c
        .send(Req::new("GET", Some("c")).h("if-match", "\"0000\""))
        .await;
    assert_eq!(
        (r.status().as_u16(), code_of(&r.text().await.unwrap())),
        (412, "PreconditionFailed".into())
    );
    assert_eq!(
        c.send(Req::new("GET", Some("c")).h("if-none-match", &etag))
            .await
            .status(),
        304
    );
    let r = c
        .send(
            Req::new("PUT", Some("c"))
                .h("x-oss-forbid-overwrite", "true")
                .body("v2"),
        )
        .await;
    assert_eq!(
        (r.status().as_u16(), code_of(&r.text().await.unwrap())),
        (409, "FileAlreadyExists".into())
    );
}

#[tokio::test]
async fn content_md5_is_checked() {
    let emu = start().await;
    let c = Client::new(&emu);
    let ok = c
        .send(
            Req::new("PUT", Some("d"))
                .h("content-md5", &b64_md5(b"abc"))
                .body("abc"),
        )
        .await;
    assert_eq!(ok.status(), 200);
    let bad = c
        .send(
            Req::new("PUT", Some("d"))
                .h("content-md5", &b64_md5(b"abd"))
                .body("abc"),
        )
        .await;
    assert_eq!(
        (bad.status().as_u16(), code_of(&bad.text().await.unwrap())),
        (400, "InvalidDigest".into())
    );
    let junk = c
        .send(
            Req::new("PUT", Some("d"))
                .h("content-md5", "not base64!")
                .body("abc"),
        )
        .await;
    assert_eq!(code_of(&junk.text().await.unwrap()), "InvalidDigest");
    let kept = c
        .send(Req::new("GET", Some("d")))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(kept, "abc");
}

#[tokio::test]
async fn awkward_keys_round_trip_and_invalid_ones_are_refused() {
    let emu = start().await;
    let c = Client::new(&emu);
    let long = "k".repeat(1023);
    for key in [
        "a b",
        "a+b",
        "100%",
        "q?x=1&y#z",
        "ü/日本語",
        "dir//double",
        "trailing/",
        "tab\there",
        long.as_str(),
    ] {
        let body = format!("body of {key}");
        let put = c.send(Req::new("PUT", Some(key)).body(body.clone())).await;
        assert_eq!(put.status(), 200, "{key}");
        let got = c
            .send(Req::new("GET", Some(key)))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(got, body, "{key}");
    }
    let too_long = "k".repeat(1024);
    for key in ["/lead", "\\lead", too_long.as_str()] {
        let r = c.send(Req::new("PUT", Some(key)).body("x")).await;
        assert_eq!(r.status(), 400, "{key}");
        assert_eq!(
            code_of(&r.text().await.unwrap()),
            "InvalidObjectName",
            "{key}"
        );
    }
}

#[tokio::test]
async fn put_over_5_gb_is_refused_before_the_body() {
    let emu = start().await;
    let c = Client::new(&emu);
    // Sign a PUT that declares 5 GB + 1 and send only its headers over a raw connection.
    let now = time::OffsetDateTime::now_utc();
    let mut headers = vec![(
        "content-length".to_owned(),
        (5u64 * 1024 * 1024 * 1024 + 1).to_string(),
    )];
    headers.extend(s3_oss_sync::oss::signing::signing_headers(&c.creds, now));
    let auth = s3_oss_sync::oss::signing::authorization(
        &c.creds,
        now,
        s3_oss_sync::oss::signing::Scope {
            region: REGION,
            product: "oss",
        },
        &s3_oss_sync::oss::signing::RequestParts {
            method: "PUT",
            bucket: Some(BUCKET),
            key: Some("huge"),
            query: &[],
            headers: &headers,
            additional_headers: &[],
        },
    );
    let mut raw = format!(
        "PUT /{BUCKET}/huge HTTP/1.1\r\nhost: {}\r\nauthorization: {auth}\r\n",
        emu.addr()
    );
    for (k, v) in &headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let mut tcp = tokio::net::TcpStream::connect(emu.addr()).await.unwrap();
    tcp.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("<Code>EntityTooLarge</Code>"), "{answer}");
}

#[tokio::test]
async fn virtual_hosted_addressing() {
    let emu = start().await;
    let mut c = Client::new(&emu);
    c.http = reqwest::Client::builder()
        .resolve(&format!("{BUCKET}.localhost"), emu.addr())
        .build()
        .unwrap();
    c.virtual_host = Some(format!("{BUCKET}.localhost"));
    assert_eq!(
        c.send(Req::new("PUT", Some("v/k")).body("vh"))
            .await
            .status(),
        200
    );
    c.virtual_host = None;
    assert_eq!(
        c.send(Req::new("GET", Some("v/k")))
            .await
            .text()
            .await
            .unwrap(),
        "vh"
    );
}

#[tokio::test]
async fn buckets_auto_created_or_refused() {
    let mut config = Config::new(AK, SK);
    config.auto_create_buckets = false;
    config.buckets = vec!["made".into()];
    let emu = start_with(config).await;
    let c = Client::new(&emu);
    let r = c.send(Req::new("PUT", Some("k")).body("x")).await;
    assert_eq!(
        (r.status().as_u16(), code_of(&r.text().await.unwrap())),
        (404, "NoSuchBucket".into())
    );
    let mut r = Req::new("PUT", Some("k")).body("x");
    r.bucket = Some("made");
    assert_eq!(c.send(r).await.status(), 200);
    let mut create = Req::new("PUT", None);
    create.bucket = Some("new-bucket");
    assert_eq!(c.send(create).await.status(), 200);
    let mut r = Req::new("PUT", Some("k")).body("x");
    r.bucket = Some("new-bucket");
    assert_eq!(c.send(r).await.status(), 200);
}

#[tokio::test]
async fn unknown_sub_resources_are_not_served_as_objects() {
    let emu = start().await;
    let c = Client::new(&emu);
    c.send(Req::new("PUT", Some("k")).body("x")).await;
    let r = c.send(Req::new("GET", Some("k")).q("acl", "")).await;
    assert_eq!(
        (r.status().as_u16(), code_of(&r.text().await.unwrap())),
        (501, "NotImplemented".into())
    );
}

#[tokio::test]
async fn data_dir_persists_across_restarts_and_journal_orders_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(AK, SK);
    config.data_dir = Some(dir.path().to_owned());
    let emu = start_with(config.clone()).await;
    let c = Client::new(&emu);
    let body = data(300_000, 9);
    c.send(
        Req::new("PUT", Some("keep/me"))
            .h("x-oss-meta-a", "1")
            .body(body.clone()),
    )
    .await;
    c.send(Req::new("PUT", Some("drop")).body("x")).await;
    c.send(Req::new("DELETE", Some("drop"))).await;
    let journal: serde_json::Value = reqwest::get(format!("{}/_emulator/journal", emu.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ops: Vec<(String, String)> = journal
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap().into(),
                e["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("put".into(), "keep/me".into()),
            ("put".into(), "drop".into()),
            ("delete".into(), "drop".into())
        ]
    );
    emu.stop().await;

    let emu = start_with(config).await;
    let c = Client::new(&emu);
    let got = c.send(Req::new("GET", Some("keep/me"))).await;
    assert_eq!(header(&got, "x-oss-meta-a"), "1");
    assert_eq!(
        header(&got, "x-oss-hash-crc64ecma"),
        crc64(&body).to_string()
    );
    assert_eq!(got.bytes().await.unwrap().to_vec(), body);
    assert_eq!(c.send(Req::new("GET", Some("drop"))).await.status(), 404);
}
