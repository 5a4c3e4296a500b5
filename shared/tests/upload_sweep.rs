//! ListMultipartUploads and the sweep of stale multipart uploads against the OSS emulator on
//! 127.0.0.1: only old uploads under the task's prefix are aborted; a dry run aborts none.

use oss_emulator::{Config, Emulator};
use s3_oss_sync::oss::signing::{self, Credentials, RequestParts, Scope, PRODUCT_OSS};
use s3_oss_sync::oss::OssClient;
use s3_oss_sync::sweep::{
    sweep_uploads, OssUploads, Stopped, SweepLimits, SweepOptions, SweepRule,
};
use std::time::Duration;

mod common;
use common::{client_with, AK, SK};

const BUCKET: &str = "dest";
const DAY: Duration = Duration::from_secs(24 * 3600);

async fn emulator() -> Emulator {
    Emulator::start(Config::new(AK, SK), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// InitiateMultipartUpload over HTTP, signed as any client would; returns the upload id.
async fn initiate(emu: &Emulator, key: &str) -> String {
    let creds = Credentials::new(AK, SK, None);
    let now = time::OffsetDateTime::now_utc();
    let query = vec![("uploads".to_owned(), String::new())];
    let mut headers = signing::signing_headers(&creds, now);
    let auth = signing::authorization(
        &creds,
        now,
        Scope {
            region: "cn-hangzhou",
            product: PRODUCT_OSS,
        },
        &RequestParts {
            method: "POST",
            bucket: Some(BUCKET),
            key: Some(key),
            query: &query,
            headers: &headers,
            additional_headers: &[],
        },
    );
    headers.push(("authorization".into(), auth));
    let url = format!(
        "{}{}?uploads",
        emu.endpoint(),
        signing::canonical_uri(Some(BUCKET), Some(key))
    );
    let mut req = reqwest::Client::new().post(url);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let id = body
        .split_once("<UploadId>")
        .and_then(|(_, r)| r.split_once("</UploadId>"))
        .unwrap()
        .0;
    id.to_owned()
}

async fn listed(client: &OssClient, prefix: &str) -> Vec<(String, String)> {
    let page = client
        .list_multipart_uploads(BUCKET, prefix, None, 1000)
        .await
        .unwrap();
    assert_eq!(page.next, None);
    page.uploads
        .into_iter()
        .map(|u| (u.key, u.upload_id))
        .collect()
}

fn options(dry_run: bool) -> SweepOptions {
    SweepOptions {
        rule: SweepRule {
            prefix: "mirror/".into(),
            older_than: DAY,
            now: time::OffsetDateTime::now_utc(),
        },
        dry_run,
        // Pages of one, so the markers are followed from page to page.
        limits: SweepLimits {
            page_size: 1,
            ..SweepLimits::default()
        },
    }
}

#[tokio::test]
async fn only_old_uploads_under_the_prefix_are_aborted_and_a_dry_run_aborts_none() {
    let emu = emulator().await;
    let client = client_with(&emu, SK, None, |_| {});
    let old1 = initiate(&emu, "mirror/old one").await;
    let old2 = initiate(&emu, "mirror/sub/old-two").await;
    let fresh = initiate(&emu, "mirror/fresh").await;
    let outside = initiate(&emu, "other/old").await;
    let near = initiate(&emu, "mirror-not/old").await;
    assert_eq!(emu.age_uploads("mirror/old", 2 * DAY), 1);
    assert_eq!(emu.age_uploads("mirror/sub/", 2 * DAY), 1);
    assert_eq!(emu.age_uploads("other/", 3 * DAY), 1);
    assert_eq!(emu.age_uploads("mirror-not/", 3 * DAY), 1);
    let store = OssUploads::new(client.clone(), BUCKET);

    let dry = sweep_uploads(&store, &options(true)).await.unwrap();
    let mut would: Vec<&str> = dry
        .would_abort
        .iter()
        .map(|p| p.upload_id.as_str())
        .collect();
    would.sort_unstable();
    let mut want = vec![old1.as_str(), old2.as_str()];
    want.sort_unstable();
    assert_eq!(would, want);
    assert_eq!((dry.listed, dry.aborted, dry.recent), (3, 0, 1));
    assert_eq!(
        listed(&client, "").await.len(),
        5,
        "a dry run aborts nothing"
    );

    let done = sweep_uploads(&store, &options(false)).await.unwrap();
    assert_eq!((done.listed, done.aborted, done.recent), (3, 2, 1));
    assert!(done.failed.is_empty() && done.would_abort.is_empty());
    assert_eq!(done.stopped, None);
    // Three pages of one, two aborts.
    assert_eq!(done.requests, 5);
    let age = done.oldest_age_secs.unwrap();
    assert!((2 * DAY.as_secs() as i64..2 * DAY.as_secs() as i64 + 60).contains(&age));
    let mut left: Vec<String> = listed(&client, "")
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    left.sort_unstable();
    let mut kept = vec![fresh, outside, near];
    kept.sort_unstable();
    assert_eq!(left, kept);

    // Nothing is left to do.
    let again = sweep_uploads(&store, &options(false)).await.unwrap();
    assert_eq!((again.listed, again.aborted), (1, 0));
}

#[tokio::test]
async fn listing_decodes_keys_and_follows_markers() {
    let emu = emulator().await;
    let client = client_with(&emu, SK, None, |_| {});
    // In key order (bytes): 'z' sorts before 'ü'.
    let keys = ["p/a b", "p/a b", "p/z%2F", "p/ü+&=?"];
    for k in keys {
        initiate(&emu, k).await;
    }
    let mut seen = Vec::new();
    let mut marker: Option<(String, String)> = None;
    loop {
        let page = client
            .list_multipart_uploads(
                BUCKET,
                "p/",
                marker.as_ref().map(|(k, u)| (k.as_str(), u.as_str())),
                1,
            )
            .await
            .unwrap();
        assert!(page.uploads.len() <= 1);
        seen.extend(page.uploads.iter().map(|u| u.key.clone()));
        assert!(page.uploads.iter().all(|u| u.initiated.is_some()));
        match page.next {
            Some(n) => marker = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, keys);
    assert!(client
        .list_multipart_uploads(BUCKET, "", None, 0)
        .await
        .is_err());
}

#[tokio::test]
async fn the_request_budget_bounds_the_sweep() {
    let emu = emulator().await;
    let client = client_with(&emu, SK, None, |_| {});
    for i in 0..4 {
        initiate(&emu, &format!("mirror/{i}")).await;
    }
    emu.age_uploads("", 2 * DAY);
    let mut o = options(false);
    o.limits.max_requests = 3;
    let s = sweep_uploads(&OssUploads::new(client.clone(), BUCKET), &o)
        .await
        .unwrap();
    // Page 1, abort, page 2: the budget is spent before the second abort.
    assert_eq!(
        (s.aborted, s.requests, s.stopped),
        (1, 3, Some(Stopped::RequestBudget))
    );
    assert_eq!(listed(&client, "").await.len(), 3);
}
