//! ListObjectsV2: prefix, delimiter, max-keys, continuation tokens, start-after, URL encoding.

use crate::support::*;

async fn list(c: &Client, q: &[(&str, &str)]) -> String {
    let mut r = Req::new("GET", None).q("list-type", "2");
    for (k, v) in q {
        r = r.q(k, v);
    }
    let res = c.send(r).await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

async fn seed(c: &Client, keys: &[&str]) {
    for k in keys {
        assert_eq!(
            c.send(Req::new("PUT", Some(k)).body("x")).await.status(),
            200
        );
    }
}

#[tokio::test]
async fn prefix_delimiter_and_pages() {
    let emu = start().await;
    let c = Client::new(&emu);
    seed(&c, &["a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d"]).await;

    let x = list(&c, &[("delimiter", "/")]).await;
    assert_eq!(elements(&x, "Key"), ["b", "d"]);
    assert_eq!(elements(&x, "Prefix")[1..], ["a/", "c/"]);
    assert_eq!(element(&x, "KeyCount"), "4");

    let x = list(&c, &[("prefix", "a/"), ("delimiter", "/")]).await;
    assert_eq!(elements(&x, "Key"), ["a/1", "a/2"]);
    assert!(x.contains("<Prefix>a/b/</Prefix>"));

    // Pages of two, with a delimiter, so a common prefix sits on a page boundary.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let mut q = vec![("delimiter", "/"), ("max-keys", "1")];
        if !token.is_empty() {
            q.push(("continuation-token", token.as_str()));
        }
        let x = list(&c, &q).await;
        seen.extend(elements(&x, "Key"));
        seen.extend(elements(&x, "Prefix").into_iter().filter(|p| !p.is_empty()));
        if element(&x, "IsTruncated") == "false" {
            break;
        }
        token = element(&x, "NextContinuationToken");
    }
    assert_eq!(seen, ["a/", "b", "c/", "d"]);

    // Flat listing page by page covers every key once.
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let mut q = vec![("max-keys", "3")];
        if !token.is_empty() {
            q.push(("continuation-token", token.as_str()));
        }
        let x = list(&c, &q).await;
        all.extend(elements(&x, "Key"));
        if element(&x, "IsTruncated") == "false" {
            break;
        }
        token = element(&x, "NextContinuationToken");
    }
    assert_eq!(all, ["a/1", "a/2", "a/b/3", "b", "c/1", "c/2", "d"]);

    let x = list(&c, &[("start-after", "b")]).await;
    assert_eq!(elements(&x, "Key"), ["c/1", "c/2", "d"]);
}

#[tokio::test]
async fn url_encoding_and_entry_fields() {
    let emu = start().await;
    let c = Client::new(&emu);
    seed(&c, &["sp ace/ü&<x>"]).await;
    let x = list(&c, &[("encoding-type", "url")]).await;
    assert_eq!(elements(&x, "Key"), ["sp%20ace%2F%C3%BC%26%3Cx%3E"]);
    assert_eq!(element(&x, "EncodingType"), "url");
    let x = list(&c, &[]).await;
    assert_eq!(elements(&x, "Key"), ["sp ace/ü&amp;&lt;x&gt;"]);
    assert_eq!(element(&x, "Size"), "1");
    assert_eq!(element(&x, "StorageClass"), "Standard");
    assert_eq!(element(&x, "Type"), "Normal");
    assert!(
        element(&x, "LastModified").ends_with(".000Z")
            || element(&x, "LastModified").ends_with('Z')
    );
}

#[tokio::test]
async fn bad_arguments_are_refused() {
    let emu = start().await;
    let c = Client::new(&emu);
    for q in [
        ("max-keys", "1001"),
        ("max-keys", "x"),
        ("continuation-token", "!!!"),
    ] {
        let r = c
            .send(Req::new("GET", None).q("list-type", "2").q(q.0, q.1))
            .await;
        assert_eq!(
            (r.status().as_u16(), code_of(&r.text().await.unwrap())),
            (400, "InvalidArgument".into()),
            "{q:?}"
        );
    }
}
