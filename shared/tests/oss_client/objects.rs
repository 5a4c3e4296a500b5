//! Keys, sizes and metadata: awkward keys round trip, keys OSS cannot store, sizes around the
//! part size, and the metadata and Content-MD5 sent.

use super::{client, data, emulator, fetch, upload, BUCKET};
use crate::common::{AK, PART, SK};
use bytes::Bytes;
use oss_emulator::Config;
use s3_oss_sync::checksum::crc64;
use s3_oss_sync::store::object::ObjectMetadata;
use s3_oss_sync::store::upload::{BytesSource, UploadRequest};

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
