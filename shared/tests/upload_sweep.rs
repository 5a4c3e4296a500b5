//! ListMultipartUploads and the sweep of stale multipart uploads against the OSS emulator on
//! 127.0.0.1: only old uploads under the task's prefix are aborted; a dry run aborts none; the
//! uploads of copies in progress (checkpoints written within the age) are kept.

use oss_emulator::{Config, Emulator};
use s3_oss_sync::oss::signing::{self, Credentials, RequestParts, Scope, PRODUCT_OSS};
use s3_oss_sync::oss::OssClient;
use s3_oss_sync::store::source::SourceError;
use s3_oss_sync::sweep::copies::{task_prefix, CheckpointObjects, Listed, ListedPage, READ_LIMITS};
use s3_oss_sync::sweep::{
    sweep_task, sweep_uploads, OssUploads, PickedUpload, Stopped, SweepLimits, SweepOptions,
    SweepRule, Verdict,
};
use s3_oss_sync::sync::resume::{checkpoint_key, Checkpoint, CHECKPOINT_VERSION};
use std::collections::BTreeMap;
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

/// The upload ids of `picked`, sorted.
fn upload_ids(picked: &[PickedUpload]) -> Vec<&str> {
    sorted(picked.iter().map(|p| p.upload_id.as_str()))
}

/// `ids`, sorted.
fn sorted<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    ids
}

fn options(dry_run: bool) -> SweepOptions {
    SweepOptions {
        rule: SweepRule::new("mirror/", DAY, time::OffsetDateTime::now_utc()),
        dry_run,
        // Pages of one, so the markers are followed from page to page.
        limits: SweepLimits {
            page_size: 1,
            ..SweepLimits::default()
        },
        hold: None,
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
    assert_eq!(
        upload_ids(&dry.would_abort),
        sorted([old1.as_str(), old2.as_str()])
    );
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

/// Checkpoints in memory, listed with their write times.
#[derive(Default)]
struct Checkpoints(BTreeMap<String, (bytes::Bytes, time::OffsetDateTime)>);

impl Checkpoints {
    /// A checkpoint of the copy to `dest_key` in `upload_id`, written `hours_ago`.
    fn add(&mut self, dest_key: &str, upload_id: &str, hours_ago: i64) {
        let at = time::OffsetDateTime::now_utc() - time::Duration::hours(hours_ago);
        let text = s3_oss_sync::outcome::format_time(at);
        // From JSON, as stored: fields the format gains later take their defaults.
        let cp = Checkpoint::parse(
            serde_json::json!({
                "version": CHECKPOINT_VERSION,
                "task": "t1",
                "source_bucket": "src",
                "source_key": dest_key,
                "etag": "\"e\"",
                "size": 100 << 20,
                "fingerprint": "f",
                "dest_bucket": BUCKET,
                "dest_key": dest_key,
                "part_size": 10 << 20,
                "upload_id": upload_id,
                "started_at": text,
                "updated_at": text,
                "parts": [],
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        self.0.insert(
            checkpoint_key("results", "t1", BUCKET, dest_key),
            (serde_json::to_vec(&cp).unwrap().into(), at),
        );
    }
}

impl CheckpointObjects for Checkpoints {
    async fn list(&self, prefix: &str, _token: Option<&str>) -> Result<ListedPage, SourceError> {
        Ok(ListedPage {
            objects: self
                .0
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, (_, at))| Listed {
                    key: k.clone(),
                    last_modified: Some(*at),
                })
                .collect(),
            next: None,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<bytes::Bytes>, SourceError> {
        Ok(self.0.get(key).map(|(b, _)| b.clone()))
    }
}

#[tokio::test]
async fn uploads_of_copies_in_progress_are_kept_until_their_checkpoints_go_stale() {
    let emu = emulator().await;
    let client = client_with(&emu, SK, None, |_| {});
    let live = initiate(&emu, "mirror/live").await;
    let stopped = initiate(&emu, "mirror/stopped").await;
    let orphan = initiate(&emu, "mirror/orphan").await;
    // Three days old, all of them: a copy of a large object can take that long.
    emu.age_uploads("mirror/", 3 * DAY);
    let mut cps = Checkpoints::default();
    cps.add("mirror/live", &live, 1);
    cps.add("mirror/stopped", &stopped, 30);
    let store = OssUploads::new(client.clone(), BUCKET);
    let prefix = task_prefix("results", "t1");

    let dry = sweep_task(&store, &cps, &prefix, &options(true), READ_LIMITS)
        .await
        .unwrap();
    assert_eq!(
        upload_ids(&dry.would_abort),
        sorted([stopped.as_str(), orphan.as_str()])
    );
    assert_eq!((dry.resuming, dry.live_copies), (1, 1));

    let done = sweep_task(&store, &cps, &prefix, &options(false), READ_LIMITS)
        .await
        .unwrap();
    assert_eq!((done.listed, done.aborted, done.resuming), (3, 2, 1));
    assert_eq!(done.held, None);
    let left: Vec<String> = listed(&client, "")
        .await
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(left, std::slice::from_ref(&live));
    let mut rule = options(false).rule;
    rule.checkpoints.insert(live.clone(), rule.now);
    let page = client
        .list_multipart_uploads(BUCKET, "", None, 1000)
        .await
        .unwrap();
    assert_eq!(
        s3_oss_sync::sweep::verdict(&page.uploads[0], &rule),
        Verdict::Resuming
    );
}
