//! Paused periods: a paused day told from an empty one, and pauses dated by the real clock.

use super::{file, settings};
use bytes::Bytes;
use s3_oss_sync::checksum::md5_hex;
use s3_oss_sync::report::build::ReportError;
use s3_oss_sync::report::lease::{
    lease_key, new_holder, Clock, Condition, LeaseHolder, LeaseSettings, LeaseStore, LeaseWrite,
    LeasedRun,
};
use s3_oss_sync::report::pauses::{PauseWatch, Sighting};
use s3_oss_sync::testing::memory::MemoryBucket;
use s3_oss_sync::testing::report::{json, reporter};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// Answers every look with the state set last, or the error.
struct FakeWatch(std::sync::Mutex<Result<Sighting, String>>);

impl FakeWatch {
    fn set(&self, state: &str, changed_at: Option<OffsetDateTime>) {
        *self.0.lock().unwrap() = Ok(Sighting {
            at: OffsetDateTime::UNIX_EPOCH,
            state: state.into(),
            changed_at,
            waiting: Some(40),
        });
    }
}

impl PauseWatch for FakeWatch {
    async fn look(&self, at: OffsetDateTime) -> Result<Sighting, String> {
        let mut s = self.0.lock().unwrap().clone()?;
        s.at = at;
        Ok(s)
    }
}

#[tokio::test]
async fn a_paused_day_is_told_from_an_empty_one() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let r = reporter(&s, &b);
    let watch = FakeWatch(std::sync::Mutex::new(Err("not yet".into())));
    let t = datetime!(2026-11-20 02:00 UTC);
    file(&b, "a", t, t);
    // A look that fails does not stop the run.
    let t3 = datetime!(2026-11-20 03:00 UTC);
    let run = r.run_watching(t3, t3, &watch).await.unwrap();
    assert_eq!(run.days.len(), 1);
    assert!(b.object("reports/t1/paused.json").is_none());
    watch.set("Enabled", Some(datetime!(2026-11-01 00:00 UTC)));
    let t4 = datetime!(2026-11-20 04:00 UTC);
    r.run_watching(t4, t4, &watch).await.unwrap();
    assert!(
        b.object("reports/t1/paused.json").is_none(),
        "nothing to note"
    );

    // `ctl pause` at 09:20; seen at 10:00; still paused when the 20th completes; resumed at
    // 03:10 on the 21st, seen at 04:00.
    let off = datetime!(2026-11-20 09:20 UTC);
    let on = datetime!(2026-11-21 03:10 UTC);
    let mut now = datetime!(2026-11-20 10:00 UTC);
    while now <= datetime!(2026-11-23 01:00 UTC) {
        if now >= datetime!(2026-11-21 04:00 UTC) {
            watch.set("Enabled", Some(on));
        } else {
            watch.set("Disabled", Some(off));
        }
        if now == datetime!(2026-11-21 06:00 UTC) {
            file(&b, "b", now, now);
        }
        r.run_watching(now, now, &watch).await.unwrap();
        now += Duration::hours(1);
    }
    let periods =
        |day: &str| json(&b, &format!("reports/t1/{day}/manifest.json"))["paused_periods"].clone();
    let p20 = periods("2026-11-20");
    assert_eq!(p20.as_array().unwrap().len(), 1);
    assert_eq!(p20[0]["from"], "2026-11-20T09:20:00.000Z");
    assert!(
        p20[0]["to"].is_null(),
        "still paused when the 20th completed"
    );
    assert!(
        p20[0]["reason"].as_str().unwrap().contains("Disabled"),
        "{p20}"
    );
    let p21 = periods("2026-11-21");
    assert_eq!(p21[0]["to"], "2026-11-21T03:10:00.000Z");
    // The 22nd: no records and not paused, an empty day.
    let m22 = json(&b, "reports/t1/2026-11-22/manifest.json");
    assert_eq!(m22["records"], 0);
    assert_eq!(m22["paused_periods"], serde_json::json!([]));
    let journal = json(&b, "reports/t1/paused.json");
    assert_eq!(journal["periods"].as_array().unwrap().len(), 1);
    // A plain run (no watch) shows the periods noted so far.
    let b2 = MemoryBucket::default();
    b2.insert(
        "reports/t1/paused.json",
        b.object("reports/t1/paused.json").unwrap(),
    );
    file(
        &b2,
        "c",
        datetime!(2026-11-21 01:00 UTC),
        datetime!(2026-11-21 01:00 UTC),
    );
    reporter(&s, &b2)
        .run(datetime!(2026-11-21 05:00 UTC))
        .await
        .unwrap();
    let shown = json(&b2, "reports/t1/2026-11-21/summary.json")["paused_periods"].clone();
    assert_eq!(shown[0]["to"], "2026-11-21T03:10:00.000Z", "{shown}");
}

/// The lease, in memory, with S3's conditional writes.
#[derive(Default)]
struct LeaseObject(std::sync::Mutex<Option<(Bytes, String)>>);

impl LeaseStore for LeaseObject {
    async fn read_lease(&self, _key: &str) -> Result<Option<(Bytes, String)>, ReportError> {
        Ok(self.0.lock().unwrap().clone())
    }
    async fn put_lease(&self, _key: &str, body: Bytes, condition: &Condition) -> LeaseWrite {
        let mut lease = self.0.lock().unwrap();
        if !condition.admits(lease.as_ref().map(|(_, etag)| etag.as_str())) {
            return Ok(None);
        }
        let etag = format!("\"{}\"", md5_hex(&body));
        *lease = Some((body, etag.clone()));
        Ok(Some(etag))
    }
    async fn delete_lease(&self, _key: &str) -> Result<(), ReportError> {
        *self.0.lock().unwrap() = None;
        Ok(())
    }
}

/// A clock set by the test: the real clock of the run.
struct SetClock(std::sync::Mutex<OffsetDateTime>);

impl Clock for SetClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

#[tokio::test]
async fn paused_periods_are_dated_by_the_real_clock_never_by_the_runs_as_of_instant() {
    let b = MemoryBucket::default();
    let s = settings("Z");
    let leases = LeaseObject::default();
    let lease = LeaseSettings {
        key: lease_key("results", "t1"),
        duration: Duration::minutes(30),
        margin: Duration::minutes(5),
    };
    let clock = SetClock(std::sync::Mutex::new(datetime!(2026-11-20 10:00 UTC)));
    let watch = FakeWatch(std::sync::Mutex::new(Err("not yet".into())));
    // Local runs "as of" a day long before, and one long after, the real clock.
    let run = |as_of: OffsetDateTime| {
        let holder = LeaseHolder {
            store: &leases,
            settings: &lease,
            clock: &clock,
            holder: new_holder(),
            deadline: None,
        };
        let (s, b, watch) = (&s, &b, &watch);
        async move {
            match holder.run_watching(s, b, b, as_of, Some(watch)).await {
                Ok(LeasedRun::Ran(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    };
    let journal = || json(&b, "reports/t1/paused.json")["periods"].clone();
    let at = |v: &Value| OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap();

    // Paused at 09:20 (the mapping's LastModified), seen at 10:00 by a run as of 1 November: the
    // period begins at 09:20, not on 1 November.
    let off = datetime!(2026-11-20 09:20 UTC);
    watch.set("Disabled", Some(off));
    run(datetime!(2026-11-01 00:00 UTC)).await;
    let p = journal();
    assert_eq!(p.as_array().unwrap().len(), 1, "{p}");
    assert_eq!(at(&p[0]["from"]), off, "{p}");
    assert!(p[0]["to"].is_null(), "{p}");
    // Resumed (the mapping does not say when), seen at 04:00 the next day by a run as of 1
    // November again: the period ends at the sighting on the real clock, after it began.
    *clock.0.lock().unwrap() = datetime!(2026-11-21 04:00 UTC);
    watch.set("Enabled", None);
    run(datetime!(2026-11-01 00:00 UTC)).await;
    let p = journal();
    assert_eq!(at(&p[0]["to"]), datetime!(2026-11-21 04:00 UTC), "{p}");

    // Paused again (the mapping does not say when), seen at 06:00 by a run as of next year,
    // then resumed at 07:30 (LastModified), seen at 08:00 by a run as of 1 November.
    *clock.0.lock().unwrap() = datetime!(2026-11-21 06:00 UTC);
    watch.set("Disabled", None);
    run(datetime!(2027-06-01 00:00 UTC)).await;
    *clock.0.lock().unwrap() = datetime!(2026-11-21 08:00 UTC);
    watch.set("Enabled", Some(datetime!(2026-11-21 07:30 UTC)));
    run(datetime!(2026-11-01 00:00 UTC)).await;
    let p = journal();
    assert_eq!(p.as_array().unwrap().len(), 2, "{p}");
    assert_eq!(at(&p[1]["from"]), datetime!(2026-11-21 06:00 UTC), "{p}");
    assert_eq!(at(&p[1]["to"]), datetime!(2026-11-21 07:30 UTC), "{p}");
    for period in p.as_array().unwrap() {
        assert!(at(&period["to"]) >= at(&period["from"]), "{period}");
    }
}
