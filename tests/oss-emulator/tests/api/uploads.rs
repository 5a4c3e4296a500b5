//! ListMultipartUploads (paging, prefix, delimiter, URL encoding, `Initiated`), the admin
//! endpoint that ages uploads, and OSS's tag rules on PutObject, InitiateMultipartUpload and
//! CopyObject.

use crate::support::*;
use std::time::{Duration, SystemTime};

async fn initiate(c: &Client, key: &str) -> String {
    let r = c.send(Req::new("POST", Some(key)).q("uploads", "")).await;
    assert_eq!(r.status(), 200);
    element(&r.text().await.unwrap(), "UploadId")
}

async fn list(c: &Client, query: &[(&str, &str)]) -> String {
    let mut r = Req::new("GET", None).q("uploads", "");
    for (k, v) in query {
        r = r.q(k, v);
    }
    let r = c.send(r).await;
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

fn initiated(xml: &str) -> Vec<SystemTime> {
    elements(xml, "Initiated")
        .iter()
        .map(|t| {
            let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .unwrap();
            SystemTime::from(t)
        })
        .collect()
}

#[tokio::test]
async fn pages_by_key_then_upload_id_with_markers() {
    let emu = start().await;
    let c = Client::new(&emu);
    let mut ids = vec![
        ("a/1".to_owned(), initiate(&c, "a/1").await),
        ("a/1".to_owned(), initiate(&c, "a/1").await),
        ("a/2".to_owned(), initiate(&c, "a/2").await),
        ("b/1".to_owned(), initiate(&c, "b/1").await),
        ("a/3".to_owned(), initiate(&c, "a/3").await),
    ];
    ids.sort();
    let mut seen = Vec::new();
    let (mut key_marker, mut id_marker) = (String::new(), String::new());
    loop {
        let x = list(
            &c,
            &[
                ("max-uploads", "2"),
                ("key-marker", &key_marker),
                ("upload-id-marker", &id_marker),
            ],
        )
        .await;
        assert_eq!(element(&x, "MaxUploads"), "2");
        let keys = elements(&x, "Key");
        let page: Vec<(String, String)> = keys.into_iter().zip(elements(&x, "UploadId")).collect();
        assert!(page.len() <= 2);
        seen.extend(page);
        if element(&x, "IsTruncated") != "true" {
            break;
        }
        key_marker = element(&x, "NextKeyMarker");
        id_marker = element(&x, "NextUploadIdMarker");
        assert_eq!(
            seen.last().unwrap(),
            &(key_marker.clone(), id_marker.clone())
        );
    }
    assert_eq!(seen, ids);

    let a = list(&c, &[("prefix", "a/")]).await;
    assert_eq!(elements(&a, "Key"), ["a/1", "a/1", "a/2", "a/3"]);
    assert_eq!(element(&a, "Prefix"), "a/");
    // A key marker alone starts after every upload of that key.
    let after = list(&c, &[("key-marker", "a/1")]).await;
    assert_eq!(elements(&after, "Key"), ["a/2", "a/3", "b/1"]);

    // Completed or aborted uploads are no longer listed.
    let (key, id) = &ids[0];
    let r = c
        .send(Req::new("DELETE", Some(key)).q("uploadId", id))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(elements(&list(&c, &[]).await, "UploadId").len(), 4);
}

#[tokio::test]
async fn delimiter_rolls_up_and_keys_come_back_url_encoded() {
    let emu = start().await;
    let c = Client::new(&emu);
    for k in ["d/x 1", "d/y", "e/sub/z", "top&1"] {
        initiate(&c, k).await;
    }
    let x = list(&c, &[("delimiter", "/")]).await;
    assert_eq!(elements(&x, "Key"), ["top&amp;1"]);
    assert_eq!(elements(&x, "Prefix"), ["", "d/", "e/"]);
    // Paging over common prefixes: each comes once, and a prefix marker skips its keys.
    let p1 = list(&c, &[("delimiter", "/"), ("max-uploads", "1")]).await;
    assert_eq!(element(&p1, "NextKeyMarker"), "d/");
    let p2 = list(
        &c,
        &[
            ("delimiter", "/"),
            ("max-uploads", "1"),
            ("key-marker", "d/"),
        ],
    )
    .await;
    assert_eq!(elements(&p2, "Prefix"), ["", "e/"]);

    let enc = list(&c, &[("encoding-type", "url"), ("prefix", "d/")]).await;
    assert_eq!(element(&enc, "EncodingType"), "url");
    assert_eq!(elements(&enc, "Key"), ["d%2Fx%201", "d%2Fy"]);
    assert_eq!(element(&enc, "Prefix"), "d%2F");
}

#[tokio::test]
async fn initiated_times_and_the_admin_endpoint_that_ages_uploads() {
    let emu = start().await;
    let c = Client::new(&emu);
    let before = SystemTime::now() - Duration::from_secs(2);
    initiate(&c, "old/a").await;
    initiate(&c, "new/a").await;
    let x = list(&c, &[]).await;
    for t in initiated(&x) {
        assert!(t >= before && t <= SystemTime::now() + Duration::from_secs(2));
    }
    let http = reqwest::Client::new();
    let aged = http
        .post(format!(
            "{}/_emulator/uploads?age=7200&prefix=old%2F",
            emu.endpoint()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(aged.status(), 200);
    assert_eq!(aged.text().await.unwrap(), "{\"aged\":1}");
    let x = list(&c, &[]).await;
    let times = initiated(&x);
    assert_eq!(elements(&x, "Key"), ["new/a", "old/a"]);
    let old_age = SystemTime::now().duration_since(times[1]).unwrap();
    assert!(old_age >= Duration::from_secs(7200) && old_age < Duration::from_secs(7300));
    assert!(
        SystemTime::now()
            .duration_since(times[0])
            .unwrap_or_default()
            < Duration::from_secs(60)
    );
    assert_eq!(emu.age_uploads("", Duration::from_secs(1)), 2);
    let bad = http
        .post(format!("{}/_emulator/uploads?age=soon", emu.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn bad_list_arguments_are_refused() {
    let emu = start().await;
    let c = Client::new(&emu);
    for max in ["0", "1001", "many"] {
        let r = c
            .send(Req::new("GET", None).q("uploads", "").q("max-uploads", max))
            .await;
        assert_eq!(r.status(), 400, "{max}");
        assert_eq!(code_of(&r.text().await.unwrap()), "InvalidArgument");
    }
}

#[tokio::test]
async fn tags_outside_oss_rules_are_refused_on_every_write() {
    let emu = start().await;
    let c = Client::new(&emu);
    let k129 = format!("{}=v", "k".repeat(129));
    let v257 = format!("k={}", "v".repeat(257));
    let eleven = (0..11)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join("&");
    for bad in [
        k129.as_str(),
        v257.as_str(),
        eleven.as_str(),
        "a=b%40c",
        "a%2Cb=c",
        "a=%E4%B8%AD",
        "aa=bb=cc",
        "a=1&a=2",
    ] {
        let requests = [
            Req::new("PUT", Some("t")).h("x-oss-tagging", bad).body("x"),
            Req::new("POST", Some("t"))
                .q("uploads", "")
                .h("x-oss-tagging", bad),
            Req::new("PUT", Some("t"))
                .h("x-oss-copy-source", "/test-bucket/src")
                .h("x-oss-tagging", bad),
        ];
        for r in requests {
            let method = r.method;
            let got = c.send(r).await;
            let status = got.status().as_u16();
            let ec = header(&got, "x-oss-ec");
            let doc = got.text().await.unwrap();
            assert_eq!(
                (status, code_of(&doc).as_str(), ec.as_str()),
                (400, "InvalidTag", "0010-00000217"),
                "{method} {bad:?}: {doc}"
            );
        }
    }
    assert_eq!(c.send(Req::new("HEAD", Some("t"))).await.status(), 404);
    assert!(elements(&list(&c, &[]).await, "UploadId").is_empty());
    let k128 = format!("{}=v", "k".repeat(128));
    let ok = format!("{k128}&Az09 +-=._:/&empty=");
    let put = c
        .send(Req::new("PUT", Some("t")).h("x-oss-tagging", &ok).body("x"))
        .await;
    assert_eq!(put.status(), 200);
    let head = c.send(Req::new("HEAD", Some("t"))).await;
    assert_eq!(header(&head, "x-oss-tagging-count"), "3");
}
