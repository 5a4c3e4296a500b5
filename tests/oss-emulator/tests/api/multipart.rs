//! InitiateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload, AbortMultipartUpload.

use crate::support::*;
use md5::{Digest, Md5};
use s3_oss_sync::checksum::crc64;

const KB100: usize = 100 * 1024;

async fn initiate(c: &Client, key: &str) -> String {
    let r = c
        .send(
            Req::new("POST", Some(key))
                .q("uploads", "")
                .h("content-type", "video/mp4")
                .h("x-oss-meta-m", "1"),
        )
        .await;
    assert_eq!(r.status(), 200);
    element(&r.text().await.unwrap(), "UploadId")
}

async fn part(c: &Client, key: &str, id: &str, n: &str, body: Vec<u8>) -> reqwest::Response {
    c.send(
        Req::new("PUT", Some(key))
            .q("partNumber", n)
            .q("uploadId", id)
            .body(body),
    )
    .await
}

fn complete_xml(parts: &[(u32, &str)]) -> String {
    let mut x = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        x.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        ));
    }
    x + "</CompleteMultipartUpload>"
}

#[tokio::test]
async fn complete_gives_multipart_etag_and_whole_crc() {
    let emu = start().await;
    let c = Client::new(&emu);
    let id = initiate(&c, "mp").await;
    let bodies = [data(KB100, 1), data(KB100 + 7, 2), data(5, 3)];
    let mut etags = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        let r = part(&c, "mp", &id, &(i + 1).to_string(), b.clone()).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-oss-hash-crc64ecma"), crc64(b).to_string());
        assert_eq!(
            header(&r, "etag"),
            format!("\"{}\"", hex::encode_upper(Md5::digest(b)))
        );
        etags.push(header(&r, "etag"));
    }
    let listed = c
        .send(Req::new("GET", Some("mp")).q("uploadId", &id))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(elements(&listed, "PartNumber"), ["1", "2", "3"]);
    assert_eq!(elements(&listed, "Size"), ["102400", "102407", "5"]);
    let page = c
        .send(
            Req::new("GET", Some("mp"))
                .q("uploadId", &id)
                .q("max-parts", "2"),
        )
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        (
            element(&page, "IsTruncated"),
            element(&page, "NextPartNumberMarker")
        ),
        ("true".into(), "2".into())
    );

    let parts: Vec<(u32, &str)> = etags
        .iter()
        .enumerate()
        .map(|(i, e)| (i as u32 + 1, e.as_str()))
        .collect();
    let r = c
        .send(
            Req::new("POST", Some("mp"))
                .q("uploadId", &id)
                .body(complete_xml(&parts)),
        )
        .await;
    assert_eq!(r.status(), 200);
    let whole: Vec<u8> = bodies.concat();
    let mut md5s = Md5::new();
    for b in &bodies {
        md5s.update(Md5::digest(b));
    }
    let expected_etag = format!("\"{}-3\"", hex::encode_upper(md5s.finalize()));
    assert_eq!(
        header(&r, "x-oss-hash-crc64ecma"),
        crc64(&whole).to_string()
    );
    let xml = r.text().await.unwrap();
    assert_eq!(element(&xml, "ETag").replace("&quot;", "\""), expected_etag);

    let got = c.send(Req::new("GET", Some("mp"))).await;
    assert_eq!(header(&got, "x-oss-object-type"), "Multipart");
    assert_eq!(header(&got, "content-type"), "video/mp4");
    assert_eq!(header(&got, "x-oss-meta-m"), "1");
    assert_eq!(header(&got, "etag"), expected_etag);
    assert_eq!(
        header(&got, "x-oss-hash-crc64ecma"),
        crc64(&whole).to_string()
    );
    assert_eq!(got.bytes().await.unwrap().to_vec(), whole);
    // A completed upload is gone.
    let r = c.send(Req::new("GET", Some("mp")).q("uploadId", &id)).await;
    assert_eq!(code_of(&r.text().await.unwrap()), "NoSuchUpload");
}

#[tokio::test]
async fn complete_enforces_part_rules() {
    let emu = start().await;
    let c = Client::new(&emu);
    let id = initiate(&c, "rules").await;
    let e1 = header(&part(&c, "rules", &id, "1", data(10, 1)).await, "etag");
    let e2 = header(&part(&c, "rules", &id, "2", data(10, 2)).await, "etag");
    let send = |x: String| c.send(Req::new("POST", Some("rules")).q("uploadId", &id).body(x));
    let code = |r: reqwest::Response| async move { code_of(&r.text().await.unwrap()) };
    assert_eq!(
        code(send(complete_xml(&[(1, &e1), (2, &e2)])).await).await,
        "EntityTooSmall"
    );
    assert_eq!(
        code(send(complete_xml(&[(2, &e2), (1, &e1)])).await).await,
        "InvalidPartOrder"
    );
    assert_eq!(
        code(send(complete_xml(&[(1, "\"BAD\"")])).await).await,
        "InvalidPart"
    );
    assert_eq!(
        code(send(complete_xml(&[(3, &e1)])).await).await,
        "InvalidPart"
    );
    assert_eq!(code(send("<oops".into()).await).await, "MalformedXML");
    // A single small part is fine: only parts before the last must reach 100 KB.
    assert_eq!(send(complete_xml(&[(2, &e2)])).await.status(), 200);
}

#[tokio::test]
async fn part_numbers_are_bounded_and_uploads_must_exist() {
    let emu = start().await;
    let c = Client::new(&emu);
    let id = initiate(&c, "n").await;
    for n in ["0", "10001", "x"] {
        let r = part(&c, "n", &id, n, vec![1]).await;
        assert_eq!(
            (r.status().as_u16(), code_of(&r.text().await.unwrap())),
            (400, "InvalidArgument".into()),
            "{n}"
        );
    }
    assert_eq!(part(&c, "n", &id, "10000", vec![1]).await.status(), 200);
    let r = part(&c, "n", "NOPE", "1", vec![1]).await;
    assert_eq!(
        (r.status().as_u16(), code_of(&r.text().await.unwrap())),
        (404, "NoSuchUpload".into())
    );
    let r = part(&c, "other-key", &id, "1", vec![1]).await;
    assert_eq!(code_of(&r.text().await.unwrap()), "NoSuchUpload");
}

#[tokio::test]
async fn abort_discards_the_upload() {
    let emu = start().await;
    let c = Client::new(&emu);
    let id = initiate(&c, "ab").await;
    part(&c, "ab", &id, "1", data(10, 1)).await;
    assert_eq!(
        c.send(Req::new("DELETE", Some("ab")).q("uploadId", &id))
            .await
            .status(),
        204
    );
    let r = c
        .send(Req::new("DELETE", Some("ab")).q("uploadId", &id))
        .await;
    assert_eq!(
        (r.status().as_u16(), code_of(&r.text().await.unwrap())),
        (404, "NoSuchUpload".into())
    );
    assert_eq!(c.send(Req::new("GET", Some("ab"))).await.status(), 404);
}

#[tokio::test]
async fn complete_all_joins_every_part() {
    let emu = start().await;
    let c = Client::new(&emu);
    let id = initiate(&c, "all").await;
    part(&c, "all", &id, "1", data(KB100, 1)).await;
    part(&c, "all", &id, "2", data(3, 2)).await;
    let r = c
        .send(
            Req::new("POST", Some("all"))
                .q("uploadId", &id)
                .h("x-oss-complete-all", "yes"),
        )
        .await;
    assert_eq!(r.status(), 200);
    let got = c
        .send(Req::new("GET", Some("all")))
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.to_vec(), [data(KB100, 1), data(3, 2)].concat());
}

#[tokio::test]
async fn upload_part_checks_content_md5() {
    let emu = start().await;
    let c = Client::new(&emu);
    let id = initiate(&c, "md").await;
    let r = c
        .send(
            Req::new("PUT", Some("md"))
                .q("partNumber", "1")
                .q("uploadId", &id)
                .h("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")
                .body("x"),
        )
        .await;
    assert_eq!(code_of(&r.text().await.unwrap()), "InvalidDigest");
}
