//! Tests of the upload sweep: the verdicts, the bounds, failed and gone aborts, dry and held
//! runs, the checkpoints read before a sweep, the time left, and the metrics line.

use super::*;
use crate::oss::ServiceError;
use std::sync::Mutex;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

fn up(key: &str, id: &str, hours_ago: Option<i64>) -> MultipartUpload {
    MultipartUpload {
        key: key.into(),
        upload_id: id.into(),
        initiated: hours_ago.map(|h| NOW - time::Duration::hours(h)),
    }
}

fn rule(prefix: &str) -> SweepRule {
    SweepRule::new(prefix, Duration::from_secs(24 * 3600), NOW)
}

/// Asserts the verdict of each upload under `r`; gives the uploads, and the ids of those `pick`
/// takes.
fn check_verdicts<const N: usize>(
    r: &SweepRule,
    cases: [(MultipartUpload, Verdict); N],
) -> (Vec<MultipartUpload>, Vec<String>) {
    for (u, want) in &cases {
        assert_eq!(verdict(u, r), *want, "{u:?}");
    }
    let uploads: Vec<MultipartUpload> = cases.into_iter().map(|(u, _)| u).collect();
    let picked = pick(&uploads, r)
        .iter()
        .map(|u| u.upload_id.clone())
        .collect();
    (uploads, picked)
}

#[test]
fn verdicts() {
    let r = rule("mirror/");
    let cases = [
        (up("mirror/a", "1", Some(25)), Verdict::Abort),
        (up("mirror/a", "2", Some(24)), Verdict::Recent),
        (up("mirror/a", "3", Some(1)), Verdict::Recent),
        (up("mirror/a", "4", Some(-2)), Verdict::Recent),
        (up("mirror/a", "5", None), Verdict::Undated),
        (up("other/a", "6", Some(100)), Verdict::OutsidePrefix),
        (up("mirror", "7", Some(100)), Verdict::OutsidePrefix),
    ];
    let (uploads, picked) = check_verdicts(&r, cases);
    assert_eq!(picked, ["1"]);
    assert_eq!(pick(&uploads, &rule("")).len(), 3);
}

#[test]
fn time_left_respects_the_deadline_and_the_margin() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let min = Duration::from_secs(60);
    let margin = Duration::from_secs(10);
    assert_eq!(time_left(min, None, now, margin), min);
    let far = now + Duration::from_secs(600);
    assert_eq!(time_left(min, Some(far), now, margin), min);
    let near = now + Duration::from_secs(30);
    assert_eq!(
        time_left(min, Some(near), now, margin),
        Duration::from_secs(20)
    );
    let past = now - Duration::from_secs(5);
    assert_eq!(time_left(min, Some(past), now, margin), Duration::ZERO);
}

/// Pages of fixed size over a list of uploads; aborts recorded; some fail.
struct Fake {
    uploads: Vec<MultipartUpload>,
    aborted: Mutex<Vec<String>>,
    fail_abort: Vec<(&'static str, u16, &'static str)>,
    fail_list: bool,
}

impl Fake {
    fn new(uploads: Vec<MultipartUpload>) -> Self {
        Self {
            uploads,
            aborted: Mutex::default(),
            fail_abort: Vec::new(),
            fail_list: false,
        }
    }
}

fn service(status: u16, code: &str) -> Error {
    Error::Service(Box::new(ServiceError::from_response(
        status,
        Some("RID"),
        None,
        None,
        format!("<Error><Code>{code}</Code><Message>m</Message></Error>").as_bytes(),
    )))
}

impl UploadStore for Fake {
    async fn list(&self, prefix: &str, marker: Option<(&str, &str)>, max: u32) -> UploadsListing {
        if self.fail_list {
            return Err(service(403, "AccessDenied"));
        }
        let start = marker.map_or(0, |(_, id)| {
            self.uploads.iter().position(|u| u.upload_id == id).unwrap() + 1
        });
        let rest: Vec<MultipartUpload> = self.uploads[start..]
            .iter()
            .filter(|u| u.key.starts_with(prefix))
            .cloned()
            .collect();
        let n = rest.len().min(max as usize);
        let uploads = rest[..n].to_vec();
        let next = (rest.len() > n).then(|| {
            let l = uploads.last().unwrap();
            (l.key.clone(), l.upload_id.clone())
        });
        Ok(UploadsPage { uploads, next })
    }

    async fn abort(&self, _key: &str, upload_id: &str) -> Result<(), Error> {
        if let Some((_, status, code)) = self.fail_abort.iter().find(|f| f.0 == upload_id) {
            return Err(service(*status, code));
        }
        self.aborted.lock().unwrap().push(upload_id.to_owned());
        Ok(())
    }
}

fn options(prefix: &str, dry_run: bool, page_size: u32, max_requests: u32) -> SweepOptions {
    SweepOptions {
        rule: rule(prefix),
        dry_run,
        limits: SweepLimits {
            max_requests,
            time_budget: Duration::from_secs(60),
            page_size,
        },
        hold: None,
    }
}

fn mixed() -> Vec<MultipartUpload> {
    vec![
        up("m/a", "1", Some(48)),
        up("m/b", "2", Some(2)),
        up("m/c", "3", Some(30)),
        up("m/d", "4", None),
        up("m/e", "5", Some(72)),
        up("m/f", "6", Some(26)),
        up("x/g", "7", Some(99)),
    ]
}

#[tokio::test]
async fn pages_through_and_aborts_only_the_stale() {
    let mut fake = Fake::new(mixed());
    fake.fail_abort = vec![("5", 403, "AccessDenied"), ("6", 404, "NoSuchUpload")];
    let s = sweep_uploads(&fake, &options("m/", false, 2, 100))
        .await
        .unwrap();
    assert_eq!(*fake.aborted.lock().unwrap(), ["1", "3"]);
    assert_eq!(
        (s.listed, s.aborted, s.already_gone, s.recent, s.undated),
        (6, 2, 1, 1, 1)
    );
    assert_eq!(s.failed.len(), 1);
    assert_eq!(
        (s.failed[0].upload_id.as_str(), s.failed[0].code.as_str()),
        ("5", "AccessDenied")
    );
    assert!(!s.failed[0].transient);
    assert_eq!(s.oldest_age_secs, Some(72 * 3600));
    // 3 pages of 2 and 4 aborts.
    assert_eq!((s.requests, s.stopped), (7, None));
}

#[tokio::test]
async fn a_dry_run_aborts_nothing_and_names_what_it_would() {
    let fake = Fake::new(mixed());
    let s = sweep_uploads(&fake, &options("m/", true, 1000, 100))
        .await
        .unwrap();
    let text = s.render();
    for want in [
        "would abort       4 (dry run",
        "  m/e 5 (72.0 h)",
        "oldest            72.0 h",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(fake.aborted.lock().unwrap().is_empty());
    let ids: Vec<&str> = s.would_abort.iter().map(|p| p.upload_id.as_str()).collect();
    assert_eq!(ids, ["1", "3", "5", "6"]);
    assert_eq!(s.would_abort[0].age_secs, 48 * 3600);
    assert_eq!((s.aborted, s.requests), (0, 1));
}

#[tokio::test]
async fn the_request_budget_stops_the_sweep() {
    let fake = Fake::new(mixed());
    let s = sweep_uploads(&fake, &options("m/", false, 2, 3))
        .await
        .unwrap();
    // Page 1 (request 1) aborts "1" (request 2); page 2 (request 3) cannot abort "3".
    assert_eq!(*fake.aborted.lock().unwrap(), ["1"]);
    assert_eq!((s.requests, s.stopped), (3, Some(Stopped::RequestBudget)));
}

#[tokio::test]
async fn a_failed_listing_is_an_error_carrying_what_was_done() {
    let mut fake = Fake::new(mixed());
    fake.fail_list = true;
    let e = sweep_uploads(&fake, &options("m/", false, 2, 100))
        .await
        .unwrap_err();
    assert_eq!(e.source.code(), "AccessDenied");
    assert!(!e.is_transient());
    assert_eq!(e.summary.requests, 1);
    let line = metrics_line("t1", &Err(e), 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["UploadSweepFailures"], 1);
    assert_eq!(
        v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
        "Task"
    );
}

#[test]
fn a_copy_in_progress_keeps_its_upload_until_its_checkpoint_is_older_than_the_age() {
    let mut r = rule("mirror/");
    let hours_ago = |h: i64| NOW - time::Duration::hours(h);
    r.checkpoints = [
        ("live".to_owned(), hours_ago(2)),
        ("edge".to_owned(), hours_ago(24)),
        ("stale".to_owned(), hours_ago(25)),
        ("skewed".to_owned(), hours_ago(-1)),
        ("elsewhere".to_owned(), hours_ago(0)),
    ]
    .into_iter()
    .collect();
    let cases = [
        (up("mirror/a", "live", Some(72)), Verdict::Resuming),
        (up("mirror/a", "live", None), Verdict::Resuming),
        (up("mirror/b", "edge", Some(72)), Verdict::Resuming),
        (up("mirror/c", "stale", Some(72)), Verdict::Abort),
        (up("mirror/c", "stale", Some(3)), Verdict::Recent),
        (up("mirror/d", "skewed", Some(72)), Verdict::Resuming),
        (up("other/e", "elsewhere", Some(72)), Verdict::OutsidePrefix),
        (up("mirror/f", "unnamed", Some(72)), Verdict::Abort),
    ];
    let (_, picked) = check_verdicts(&r, cases);
    assert_eq!(picked, ["stale", "unnamed"]);
}

#[test]
fn checkpointed_uploads_take_the_latest_write_and_keep_the_undated() {
    use crate::sweep::copies::tests::{checkpoint, NOW as CNOW};
    assert_eq!(CNOW, NOW);
    let mut undated = checkpoint("u", "U3", 10, 5, 1, 0);
    undated.updated_at = "soon".into();
    let copies = Copies {
        checkpoints: vec![
            ("k1".into(), checkpoint("a", "U1", 10, 5, 1, 30)),
            ("k2".into(), checkpoint("a2", "U1", 10, 5, 1, 3)),
            ("k3".into(), checkpoint("b", "U2", 10, 5, 1, 40)),
            ("k4".into(), undated),
        ],
        ..Copies::default()
    };
    let (named, bad) = checkpointed_uploads(&copies, NOW);
    let h = |h: i64| NOW - time::Duration::hours(h);
    assert_eq!(named["U1"], h(3));
    assert_eq!(named["U2"], h(40));
    assert_eq!(named["U3"], NOW);
    assert_eq!(bad.len(), 1);
    assert!(bad[0].starts_with("k4: updated_at \"soon\""), "{bad:?}");
}

fn task_options(dry_run: bool) -> SweepOptions {
    options("m/", dry_run, 1000, 100)
}

/// Uploads of three copies (live, stale, with a damaged checkpoint) and one without any.
fn copies_and_uploads() -> (crate::sweep::copies::tests::Fake, Fake, String) {
    use crate::sweep::copies::task_prefix;
    use crate::sweep::copies::tests::{checkpoint, Fake as Checkpoints};
    let mut cps = Checkpoints::with(&[
        // Written an hour ago: live.
        (checkpoint("a", "live", 100, 10, 5, 1), 1),
        // Written 30 hours ago (and last modified then): stale, not even read.
        (checkpoint("b", "stale", 100, 10, 5, 30), 30),
        // Last modified an hour ago but its body says 30 hours: stale.
        (checkpoint("c", "stale2", 100, 10, 5, 30), 1),
    ]);
    cps.page = 1;
    let prefix = task_prefix("results", "t1");
    cps.objects.insert(
        format!("{prefix}zz-damaged.json"),
        (bytes::Bytes::from_static(b"[1,2"), NOW),
    );
    let uploads = Fake::new(vec![
        up("m/a", "live", Some(72)),
        up("m/b", "stale", Some(72)),
        up("m/c", "stale2", Some(72)),
        up("m/d", "orphan", Some(48)),
        up("m/e", "young", Some(1)),
    ]);
    (cps, uploads, prefix)
}

#[tokio::test]
async fn the_task_sweep_keeps_the_uploads_of_live_copies() {
    use crate::sweep::copies::READ_LIMITS;
    let (cps, uploads, prefix) = copies_and_uploads();
    let s = sweep_task(&uploads, &cps, &prefix, &task_options(false), READ_LIMITS)
        .await
        .unwrap();
    assert_eq!(
        *uploads.aborted.lock().unwrap(),
        ["stale", "stale2", "orphan"]
    );
    assert_eq!(
        (s.listed, s.aborted, s.resuming, s.recent, s.live_copies),
        (5, 3, 1, 1, 1)
    );
    assert_eq!(s.held, None);
    assert_eq!(s.unreadable_checkpoints.len(), 1);
    assert!(
        s.unreadable_checkpoints[0].contains("zz-damaged.json: damaged"),
        "{:?}",
        s.unreadable_checkpoints
    );
    // The checkpoint last modified 30 hours ago was listed, never read.
    assert_eq!(cps.gets.lock().unwrap().len(), 3);
    let text = s.render();
    for want in [
        "listed            5 (1 recent, 1 resuming, 0 undated)",
        "copies live       1 (checkpoints written in the past 24 h)",
        "checkpoint        results-checkpoints/t1/zz-damaged.json: damaged",
        "aborted           3",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let line = metrics_line("t1", &Ok(s), 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["UploadSweepFailures"], 0);
}

#[tokio::test]
async fn the_task_sweep_aborts_nothing_when_the_checkpoints_are_not_known() {
    use crate::sweep::copies::READ_LIMITS;
    // The listing fails.
    let (mut cps, uploads, prefix) = copies_and_uploads();
    cps.fail_list = true;
    let s = sweep_task(&uploads, &cps, &prefix, &task_options(false), READ_LIMITS)
        .await
        .unwrap();
    assert!(uploads.aborted.lock().unwrap().is_empty());
    let held = s.held.clone().unwrap();
    assert!(held.contains("could not be listed"), "{held}");
    let mut would: Vec<&str> = s.would_abort.iter().map(|p| p.upload_id.as_str()).collect();
    would.sort_unstable();
    assert_eq!(would, ["live", "orphan", "stale", "stale2"]);
    assert!(!s.dry_run);
    let text = s.render();
    for want in [
        "held              nothing aborted: the checkpoints under",
        "would abort       4 (held: nothing aborted)",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let v: serde_json::Value = serde_json::from_str(&metrics_line("t1", &Ok(s), 1)).unwrap();
    assert_eq!(v["UploadSweepFailures"], 1);

    // A read fails: the live copy might be that one.
    let (mut cps, uploads, prefix) = copies_and_uploads();
    let live_key = cps
        .objects
        .iter()
        .find(|(_, (b, _))| String::from_utf8_lossy(b).contains("\"live\""))
        .map(|(k, _)| k.clone())
        .unwrap();
    cps.fail_get = vec![live_key];
    let s = sweep_task(&uploads, &cps, &prefix, &task_options(false), READ_LIMITS)
        .await
        .unwrap();
    assert!(uploads.aborted.lock().unwrap().is_empty());
    assert!(s
        .held
        .unwrap()
        .contains("1 checkpoint(s) could not be read"));

    // A bound is reached.
    let (cps, uploads, prefix) = copies_and_uploads();
    let few = ReadLimits {
        max_read: 1,
        ..READ_LIMITS
    };
    let s = sweep_task(&uploads, &cps, &prefix, &task_options(false), few)
        .await
        .unwrap();
    assert!(uploads.aborted.lock().unwrap().is_empty());
    assert!(s.held.unwrap().contains("only the first 1 were read"));
}
