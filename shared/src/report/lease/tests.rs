//! Tests of the report lease: its key, when a lease is free or busy, the end of writing a
//! margin before expiry, and a retried create that finds its own lease.

use super::*;
use time::macros::datetime;

#[test]
fn keys_sit_beside_the_results() {
    assert_eq!(lease_key("results", "t1"), "results-locks/t1/report.lease");
    assert_eq!(lease_key("", "t1"), "locks/t1/report.lease");
}

#[test]
fn an_unexpired_lease_is_busy_an_expired_or_foreign_one_is_free() {
    let body = serde_json::to_vec(&LeaseBody {
        holder: "a".into(),
        acquired_at: "2026-11-25T10:00:00Z".into(),
        expires_at: "2026-11-25T10:30:00Z".into(),
    })
    .unwrap();
    let busy = holder_of(&body, datetime!(2026-11-25 10:29:59 UTC)).unwrap();
    assert_eq!(busy.holder, "a");
    assert!(busy.to_string().contains("holder a"), "{busy}");
    assert_eq!(holder_of(&body, datetime!(2026-11-25 10:30 UTC)), None);
    assert_eq!(
        holder_of(b"not json", datetime!(2026-11-25 10:00 UTC)),
        None
    );
}

#[test]
fn writing_stops_a_margin_before_expiry() {
    let settings = LeaseSettings {
        key: "k".into(),
        duration: Duration::minutes(30),
        margin: LEASE_MARGIN,
    };
    let lease = Lease::new("a", datetime!(2026-11-25 10:30 UTC), &settings);
    assert_eq!(lease.writable_until, datetime!(2026-11-25 10:25 UTC));
    assert_eq!(lease.writes_end_by, datetime!(2026-11-25 10:29 UTC));
    assert!(lease.check(datetime!(2026-11-25 10:24:59 UTC)).is_ok());
    let e = lease.check(datetime!(2026-11-25 10:25 UTC)).unwrap_err();
    assert!(e.to_string().contains("10:25:00"), "{e}");
}

/// One lease object; the first create lands and answers 412, as an SDK retry of a create
/// whose first attempt landed does.
#[derive(Default)]
struct RetriedCreate {
    object: std::sync::Mutex<Option<(Bytes, String)>>,
    creates: std::sync::atomic::AtomicU32,
}

impl LeaseStore for RetriedCreate {
    async fn read_lease(&self, _key: &str) -> Result<Option<(Bytes, String)>, ReportError> {
        Ok(self.object.lock().unwrap().clone())
    }
    async fn put_lease(&self, _key: &str, body: Bytes, condition: &Condition) -> LeaseWrite {
        let mut object = self.object.lock().unwrap();
        if !condition.admits(object.as_ref().map(|(_, etag)| etag.as_str())) {
            return Ok(None);
        }
        let n = self
            .creates
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let etag = format!("\"e{n}\"");
        *object = Some((body, etag.clone()));
        // The first landed, and its retry got 412.
        Ok((n > 0).then_some(etag))
    }
    async fn delete_lease(&self, _key: &str) -> Result<(), ReportError> {
        *self.object.lock().unwrap() = None;
        Ok(())
    }
}

struct At(OffsetDateTime);

impl Clock for At {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

#[tokio::test]
async fn a_retried_create_that_finds_its_own_lease_holds_it() {
    let store = RetriedCreate::default();
    let settings = LeaseSettings {
        key: "k".into(),
        duration: Duration::minutes(30),
        margin: LEASE_MARGIN,
    };
    let clock = At(datetime!(2026-11-25 10:00 UTC));
    let got = acquire(&store, &settings, "me", &clock, None)
        .await
        .unwrap();
    let Acquired::Held(lease) = got else {
        panic!("its own lease taken for another run's: {got:?}");
    };
    assert_eq!(lease.expires_at, datetime!(2026-11-25 10:30 UTC));
    assert_eq!(lease.writable_until, datetime!(2026-11-25 10:25 UTC));
    let written: LeaseBody =
        serde_json::from_slice(&store.object.lock().unwrap().as_ref().unwrap().0).unwrap();
    assert_eq!(written.holder, "me");
    // Another run finds it busy.
    match acquire(&store, &settings, "other", &clock, None)
        .await
        .unwrap()
    {
        Acquired::Busy(b) => assert_eq!(b.holder, "me"),
        Acquired::Held(_) => panic!("two runs hold the lease"),
    }
    // The holder releases it.
    lease.release(&store, &clock).await;
    assert!(store.object.lock().unwrap().is_none());
}
