//! Tests of `ctl verify`'s orchestration, over two sides in memory, reports in a memory bucket,
//! a recording queue, checkpoints in memory and a recording terminal.

use super::*;
use crate::control::commands::recorded::{Queue, Recorded, Saved};
use crate::report::build::{Listing, RecordSource, ReportError};
use crate::testing::memory::MemoryBucket;
use crate::testing::verify::{obj, MemorySides};
use bytes::Bytes;

/// The reports, shared between the verification and the repair's lister.
#[derive(Clone, Default)]
struct Reports(Arc<MemoryBucket>);

impl Listing for Reports {
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        self.0.list_keys(prefix).await
    }
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        self.0.list_prefixes(prefix).await
    }
}

impl RecordSource for Reports {
    async fn get(&self, key: &str) -> Result<Bytes, ReportError> {
        self.0.get(key).await
    }
}

impl ReportStore for Reports {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), ReportError> {
        self.0.put(key, body).await
    }
    async fn exists(&self, key: &str) -> Result<bool, ReportError> {
        self.0.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), ReportError> {
        self.0.delete(key).await
    }
}

const MD5: &str = "0cc175b9c0f1b6a831c399e269772661";

/// The `source` keys in S3 and the `dest` keys in OSS, each 10 bytes of ETag `MD5`; every
/// destination object is an exact copy (same ETag in its marker, written after the source).
fn memory(source: &[&str], dest: &[&str]) -> MemorySides {
    let m = MemorySides::default();
    for k in source {
        m.source
            .lock()
            .unwrap()
            .insert((*k).into(), obj(10, MD5, 1000));
    }
    for k in dest {
        m.dest
            .lock()
            .unwrap()
            .insert((*k).into(), obj(10, &MD5.to_uppercase(), 1010));
    }
    m
}

/// `data/a`…`data/c` only in S3, `data/e` in both, `data/z` only in OSS.
fn sides() -> MemorySides {
    memory(
        &["data/a", "data/b", "data/c", "data/e"],
        &["data/e", "data/z"],
    )
}

fn task() -> VerifyTask {
    VerifyTask {
        task: "t1".into(),
        source_bucket: "src".into(),
        queue_url: "q".into(),
        prefix: "data/".into(),
        binding: TaskBinding {
            source_bucket: "src".into(),
            source_prefix: "data/".into(),
            dest_bucket: "dst".into(),
            dest_prefix: String::new(),
            strip_source_prefix: false,
            report_area: Some("reports/".into()),
        },
        sync_deletes: false,
        report_prefix: "reports".into(),
        part_bytes: 1 << 20,
    }
}

fn request(repair: bool) -> VerifyRequest {
    VerifyRequest {
        repair,
        parallel: 2,
        clock_tolerance_s: 1,
        ..VerifyRequest::default()
    }
}

async fn run(
    sides: &MemorySides,
    request: &VerifyRequest,
    reports: &Reports,
    queue: &Queue,
    store: &Saved,
    terminal: &Recorded,
) -> Result<Value, Failure> {
    verify_with(
        &task(),
        request,
        sides,
        reports,
        queue,
        (store, "cp.json"),
        terminal,
    )
    .await
}

#[tokio::test]
async fn a_clean_verification_prints_its_report_and_sums_up() {
    let m = memory(&["data/e"], &["data/e"]);
    let (r, q, s, t) = (
        Reports::default(),
        Queue::default(),
        Saved::default(),
        Recorded::default(),
    );
    let out = run(&m, &request(true), &r, &q, &s, &t).await.unwrap();
    let dir = out["report"].as_str().unwrap().to_owned();
    assert!(
        dir.starts_with("reports/t1/verify/") && dir.ends_with('/'),
        "{dir}"
    );
    assert_eq!(out, json!({"report": dir, "differences": 0}));
    assert!(t
        .printed()
        .starts_with(&format!("verification      {dir}\n")));
    // Nothing to repair: no checkpoint, no event.
    assert!(s.0.lock().unwrap().is_empty() && q.events().is_empty());
    assert_eq!(*t.activity(0).ended.lock().unwrap(), "finish");
    assert!(r.0.object(&format!("{dir}manifest.json")).is_some());

    let mut req = request(false);
    req.json = true;
    let t = Recorded::default();
    run(&m, &req, &r, &q, &s, &t).await.unwrap();
    let printed: Value = serde_json::from_str(&t.printed()).unwrap();
    assert_eq!(printed["summary"]["differences"], 0);
    assert!(t.printed().ends_with("}\n"));
}

#[tokio::test]
async fn differences_exit_3_and_with_repair_become_events() {
    let m = sides();
    let (r, q, s, t) = (
        Reports::default(),
        Queue::default(),
        Saved::default(),
        Recorded::default(),
    );
    let f = run(&m, &request(false), &r, &q, &s, &t).await.unwrap_err();
    assert_eq!(f.code(), 3);
    let summary = f.summary.clone().unwrap();
    let dir = summary["report"].as_str().unwrap();
    assert_eq!(summary, json!({"report": dir, "differences": 4}));
    assert_eq!(f.message, format!("4 differences (listed in {dir})"));
    assert!(q.events().is_empty());

    let t = Recorded::default();
    let f = run(&m, &request(true), &r, &q, &s, &t).await.unwrap_err();
    assert_eq!(f.code(), 3);
    let summary = f.summary.unwrap();
    assert_eq!(
        summary["repair"],
        json!({"finished": true, "checkpoint": "cp.json", "sent": 3, "left_out_extra": 1, "runs": 1})
    );
    let events = q.events();
    let keys: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["data/a", "data/b", "data/c"]);
    assert!(events.iter().all(|(_, n)| n == VERIFY_EVENT));
    let cp = s.load().unwrap().unwrap();
    assert_eq!(
        cp.plan.source,
        ObjectSource::Verification {
            report: summary["report"].as_str().unwrap().into()
        }
    );
    assert_eq!(t.activity(1).messages.lock().unwrap()[0], "repairing");
}

#[tokio::test]
async fn an_unfinished_repair_is_resumed_from_its_report_without_verifying_again() {
    let m = sides();
    let (r, q, s) = (Reports::default(), Queue::default(), Saved::default());
    run(&m, &request(true), &r, &q, &s, &Recorded::default())
        .await
        .unwrap_err();
    let listed = m.listings.load(Ordering::Relaxed);
    let mut cp = s.load().unwrap().unwrap();
    let dir = match &cp.plan.source {
        ObjectSource::Verification { report } => report.clone(),
        other => panic!("{other:?}"),
    };
    // As if stopped after the first key.
    cp.finished = false;
    cp.position = crate::store::listing::Position::AfterKey {
        key: "data/a".into(),
    };
    cp.counts.sent = 1;
    s.save(&cp).unwrap();
    let q = Queue::default();
    let t = Recorded::default();
    let f = run(&m, &request(true), &r, &q, &s, &t).await.unwrap_err();
    assert_eq!(
        t.notes(),
        [format!(
            "resuming the repair of {dir} checkpointed in cp.json (1 events sent so far)"
        )]
    );
    assert_eq!(
        m.listings.load(Ordering::Relaxed),
        listed,
        "not verified again"
    );
    assert!(t.printed().is_empty());
    let keys: Vec<String> = q.events().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["data/b", "data/c"]);
    assert_eq!(
        (f.code(), f.summary.unwrap()["repair"]["sent"].clone()),
        (3, json!(3))
    );

    // --restart verifies again; a checkpoint of a backfill is not a repair's.
    let mut req = request(true);
    req.restart = true;
    run(&m, &req, &r, &Queue::default(), &s, &Recorded::default())
        .await
        .unwrap_err();
    assert!(m.listings.load(Ordering::Relaxed) > listed);
    cp.plan.source = ObjectSource::List;
    s.save(&cp).unwrap();
    let f = run(&m, &request(true), &r, &q, &s, &Recorded::default())
        .await
        .unwrap_err();
    assert_eq!(f.code(), 2);
    assert_eq!(
        f.message,
        "cp.json is not a verification's checkpoint; pass --checkpoint or --restart"
    );
}

#[tokio::test]
async fn a_stopped_verification_is_printed_and_exits_130() {
    let m = sides();
    let (r, q, s, t) = (
        Reports::default(),
        Queue::default(),
        Saved::default(),
        Recorded::stopped(),
    );
    let f = run(&m, &request(true), &r, &q, &s, &t).await.unwrap_err();
    assert_eq!(f.code(), 130);
    assert!(
        f.message
            .starts_with("interrupted; the report in reports/t1/verify/"),
        "{f}"
    );
    assert!(f.message.ends_with("/ is incomplete"), "{f}");
    assert_eq!(f.summary, None);
    assert!(t.printed().starts_with("verification      "));
    assert!(q.events().is_empty() && s.0.lock().unwrap().is_empty());
}

#[test]
fn the_checkpoint_file_is_named_after_the_task_unless_given() {
    let mut r = request(true);
    assert_eq!(r.checkpoint_path("t1"), "verify-t1.checkpoint.json");
    r.checkpoint = Some("mine.json".into());
    assert_eq!(r.checkpoint_path("t1"), "mine.json");
}
