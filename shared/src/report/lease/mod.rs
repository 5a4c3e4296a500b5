//! One writer: the report lease. A report run writes only while it holds a lease, an object in
//! the results bucket that two runs cannot both hold.
//!
//! The protocol. The lease is one small JSON object (`<RESULTS_PREFIX>-locks/<task>/report.lease`,
//! beside the results partitions, never under them): `{holder, acquired_at, expires_at}`.
//!
//! - **Acquire**: write it only if absent (S3's `If-None-Match: *`). If one is there, read it
//!   with its ETag: while it has not expired, another run holds it, and this run writes nothing
//!   and ends (successfully: reporting is that run's job); unless it names this run's own id (a
//!   create the SDK retried after its first attempt landed gets 412): then this run holds it. An
//!   expired one (a run that was killed) is taken over by a write only if the object is still the one read (`If-Match: <ETag>`): of
//!   two runs that both saw it expired, one write succeeds and the other gets 412 and reads again.
//!   A conditional write is atomic in S3, so at any instant at most one run has an unexpired
//!   lease of its own.
//! - **Write only while held**: every write (and delete) of the run goes through [`Fenced`],
//!   which refuses to start it once the clock reaches `expires_at - margin`
//!   ([`LeaseSettings::margin`]), and abandons it (drops the request) if it is still running at
//!   `expires_at - margin / 5` ([`Lease::writes_end_by`]): the last fifth of the margin is the
//!   allowance for the runs' clocks to differ and for a request dropped at that instant to be
//!   gone from the wire. The margin is longer than one write usually lasts (the OSS client's
//!   retries end within 2 minutes, a request within its timeouts), but a write is not trusted to:
//!   a large part over a slow link, or the two uploads of a write to OSS and the report's S3
//!   copy, may last longer, and is cut off rather than left to land after the lease expired,
//!   hence after another run could acquire it. A run that runs out of lease stops with
//!   [`ReportError::LeaseEnding`] at its next write or at the one cut off, above all before a
//!   manifest; the next run continues from what is written (days are written oldest first and a
//!   day's manifest last).
//! - **Expiry**: the lease lasts [`LeaseSettings::duration`], and never less than the run's own
//!   deadline plus the margin (a Lambda invocation's deadline), so an invocation ends before its
//!   lease; a local run's deadline is its lease.
//! - **Release**: at the end the holder reads the lease again and deletes it if it is still its
//!   own and still within its writing time: nobody can take over an unexpired lease, so the
//!   delete cannot remove another run's. Otherwise it is left to expire.
//!
//! What this rests on: the clocks of the runs agree to within the margin (Lambda's and a
//! workstation's synchronised clocks do), and the conditional writes of the results bucket are
//! atomic (S3's are). The report function also has `ReservedConcurrentExecutions: 1`, so
//! scheduled runs queue rather than overlap; the lease covers overlaps with local runs and runs
//! on other schedules.
//!
//! Why S3 and not OSS: OSS's `x-oss-forbid-overwrite` creates a lease only if absent, but has no
//! write conditional on the ETag read, so two runs that both find a lease expired could each
//! delete it and create their own, one after the other, and both believe they hold it. And why
//! time rather than a fencing token: neither OSS nor the report's S3 copy can refuse a write
//! carrying a stale token, so a run's writes must end before its lease does.

use super::build::{
    Listing, RecordSource, ReportError, ReportSettings, ReportStore, Reporter, RunSummary,
};
use super::pauses::{PauseWatch, Sighting};
use crate::outcome::format_time;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::future::Future;
use time::{Duration, OffsetDateTime};

/// The lease's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    /// The run holding it (a random id).
    pub holder: String,
    /// When it was taken, RFC 3339.
    pub acquired_at: String,
    /// When it expires, RFC 3339.
    pub expires_at: String,
}

/// The condition of a lease write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Only if there is no lease object (`If-None-Match: *`).
    Absent,
    /// Only if the lease object is still the one with this ETag (`If-Match`).
    Unchanged(String),
}

impl Condition {
    /// Whether a write under this condition lands on a store whose lease object has the ETag
    /// `current` (`None`: there is no lease object), as S3 decides a conditional PUT.
    pub fn admits(&self, current: Option<&str>) -> bool {
        match (self, current) {
            (Condition::Absent, None) => true,
            (Condition::Unchanged(wanted), Some(etag)) => wanted == etag,
            _ => false,
        }
    }
}

/// The answer to a conditional lease write: the lease object's new ETag, or `None` when the
/// condition failed.
pub type LeaseWrite = Result<Option<String>, ReportError>;

/// Where the lease is kept: a store with conditional writes that are atomic.
pub trait LeaseStore: Send + Sync {
    /// The lease object's body and ETag, or `None` when there is none.
    fn read_lease(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Bytes, String)>, ReportError>> + Send;
    /// Writes the lease object if the condition holds: its new ETag, or `None` when the
    /// condition failed (HTTP 412, or 404 for an `If-Match` on an object since deleted).
    fn put_lease(
        &self,
        key: &str,
        body: Bytes,
        condition: &Condition,
    ) -> impl Future<Output = LeaseWrite> + Send;
    /// Deletes the lease object.
    fn delete_lease(&self, key: &str) -> impl Future<Output = Result<(), ReportError>> + Send;
}

/// A source of the current time (the real clock in production, a shared one in tests).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// How the lease is taken.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// The lease object's key in the results bucket.
    pub key: String,
    /// How long a lease lasts (`REPORT_LEASE_MINUTES`).
    pub duration: Duration,
    /// Writing stops this long before the lease expires: longer than one write usually lasts (a
    /// write still running at `expires_at - margin / 5` is abandoned, [`Lease::writes_end_by`]).
    pub margin: Duration,
}

/// The default margin: the OSS client's retries of one request end within 2 minutes, one
/// attempt within its timeouts; a write to the report's S3 copy and then to OSS within twice
/// that.
pub const LEASE_MARGIN: Duration = Duration::minutes(5);

/// The lease object's key: `<results prefix>-locks/<task>/report.lease` (`locks/...` with an
/// empty results prefix), beside the results partitions, so the report never reads it as a
/// record.
pub fn lease_key(results_prefix: &str, task: &str) -> String {
    let root = results_prefix.trim_matches('/');
    if root.is_empty() {
        format!("locks/{task}/report.lease")
    } else {
        format!("{root}-locks/{task}/report.lease")
    }
}

/// A lease this run holds.
#[derive(Debug, Clone)]
pub struct Lease {
    /// This run's id.
    pub holder: String,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// The last instant a write may start.
    pub writable_until: OffsetDateTime,
    /// The instant a write still running is abandoned: `expires_at - margin / `[`SKEW_SHARE`],
    /// leaving that much for the runs' clocks to differ.
    pub writes_end_by: OffsetDateTime,
    key: String,
}

/// The share of the margin kept back, after [`Lease::writes_end_by`], for clock skew: a fifth (a
/// minute of the default 5-minute margin).
pub const SKEW_SHARE: i32 = 5;

impl Lease {
    fn new(holder: &str, expires_at: OffsetDateTime, settings: &LeaseSettings) -> Self {
        Self {
            holder: holder.to_owned(),
            expires_at,
            writable_until: expires_at - settings.margin,
            writes_end_by: expires_at - settings.margin / SKEW_SHARE,
            key: settings.key.clone(),
        }
    }

    fn ending(&self, until: OffsetDateTime) -> ReportError {
        ReportError::LeaseEnding {
            until: format_time(until),
            expires: format_time(self.expires_at),
        }
    }

    /// Whether a write may start at `now`; the error says when writing stopped.
    pub fn check(&self, now: OffsetDateTime) -> Result<(), ReportError> {
        if now < self.writable_until {
            Ok(())
        } else {
            Err(self.ending(self.writable_until))
        }
    }

    /// Gives the lease up: deletes it if it is still this run's and within its writing time
    /// (so nobody else can have taken it); otherwise leaves it to expire. A failure is logged:
    /// the lease expires anyway.
    pub async fn release<L: LeaseStore, C: Clock>(&self, store: &L, clock: &C) {
        let released = async {
            if self.check(clock.now()).is_err() {
                return Ok(false);
            }
            let Some((body, _)) = store.read_lease(&self.key).await? else {
                return Ok(false);
            };
            let ours =
                serde_json::from_slice::<LeaseBody>(&body).is_ok_and(|b| b.holder == self.holder);
            // Checked again after the read: the delete starts within the writing time.
            if !ours || self.check(clock.now()).is_err() {
                return Ok(false);
            }
            store.delete_lease(&self.key).await.map(|()| true)
        }
        .await;
        match released {
            Ok(true) => tracing::info!(holder = %self.holder, "report lease released"),
            Ok(false) => {
                tracing::info!(holder = %self.holder, expires_at = %format_time(self.expires_at), "report lease left to expire")
            }
            Err(e) => {
                tracing::warn!(holder = %self.holder, error = %crate::errors::error_chain(&e), expires_at = %format_time(self.expires_at), "the report lease could not be released; it expires on its own")
            }
        }
    }
}

/// Another run holds the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// Its holder's id (or `unreadable` for a lease object that is not a lease).
    pub holder: String,
    /// When its lease expires, RFC 3339.
    pub expires_at: String,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "another report run holds the lease (holder {}, until {}); this run wrote nothing",
            self.holder, self.expires_at
        )
    }
}

/// What a lease holder found: it holds the lease now, or another run does.
#[derive(Debug, Clone)]
pub enum Acquired {
    /// This run holds it.
    Held(Lease),
    /// Another run does.
    Busy(Busy),
}

/// What an existing lease object means at `now`: `None` when it may be taken over (expired, or
/// not a lease at all: nothing but the report writes under the locks prefix, so an unreadable
/// object is a torn-down remnant), else who holds it.
pub fn holder_of(body: &[u8], now: OffsetDateTime) -> Option<Busy> {
    let (b, expires) = read_body(body)?;
    (now < expires).then_some(Busy {
        holder: b.holder,
        expires_at: b.expires_at,
    })
}

/// A lease object's body and expiry, if it is a lease.
fn read_body(body: &[u8]) -> Option<(LeaseBody, OffsetDateTime)> {
    let b: LeaseBody = serde_json::from_slice(body).ok()?;
    let expires = OffsetDateTime::parse(
        &b.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    Some((b, expires))
}

/// Conditional writes in a row that may lose to other runs before acquire gives up and reports
/// the lease busy.
const ACQUIRE_ROUNDS: usize = 4;

/// Takes the lease for `holder`, lasting `settings.duration` and at least until `deadline` plus
/// the margin.
pub async fn acquire<L: LeaseStore, C: Clock>(
    store: &L,
    settings: &LeaseSettings,
    holder: &str,
    clock: &C,
    deadline: Option<OffsetDateTime>,
) -> Result<Acquired, ReportError> {
    let mut condition = Condition::Absent;
    let mut last_seen = None;
    for _ in 0..ACQUIRE_ROUNDS {
        let now = clock.now();
        let mut expires_at = now + settings.duration;
        if let Some(d) = deadline {
            expires_at = expires_at.max(d + settings.margin);
        }
        let body = LeaseBody {
            holder: holder.to_owned(),
            acquired_at: format_time(now),
            expires_at: format_time(expires_at),
        };
        let body = Bytes::from(serde_json::to_vec(&body).map_err(std::io::Error::other)?);
        if store
            .put_lease(&settings.key, body, &condition)
            .await?
            .is_some()
        {
            tracing::info!(holder, expires_at = %format_time(expires_at), "report lease acquired");
            return Ok(Acquired::Held(Lease::new(holder, expires_at, settings)));
        }
        // Lost the write: read what is there now.
        match store.read_lease(&settings.key).await? {
            None => condition = Condition::Absent,
            Some((body, etag)) => match read_body(&body).filter(|(_, e)| clock.now() < *e) {
                // This run's own, unexpired: an earlier attempt of the write landed (the SDK
                // retried it, and the retry found the lease there). Held, as written.
                Some((b, expires_at)) if b.holder == holder => {
                    tracing::info!(holder, etag = %etag, expires_at = %format_time(expires_at), "report lease acquired (a retried write found this run's own lease)");
                    return Ok(Acquired::Held(Lease::new(holder, expires_at, settings)));
                }
                Some((b, _)) => {
                    return Ok(Acquired::Busy(Busy {
                        holder: b.holder,
                        expires_at: b.expires_at,
                    }))
                }
                // Expired, or not a lease at all ([`holder_of`]): taken over if unchanged.
                _ => {
                    condition = Condition::Unchanged(etag);
                    last_seen = Some(body);
                }
            },
        }
    }
    // Every round lost to another run's write: that run holds it.
    let busy = last_seen
        .and_then(|b| serde_json::from_slice::<LeaseBody>(&b).ok())
        .map(|b| Busy {
            holder: b.holder,
            expires_at: b.expires_at,
        })
        .unwrap_or_else(|| Busy {
            holder: "unknown (the lease changed hands during acquire)".into(),
            expires_at: "unknown".into(),
        });
    Ok(Acquired::Busy(busy))
}

/// A random holder id.
pub fn new_holder() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// What a report run under the lease did.
#[derive(Debug)]
pub enum LeasedRun {
    /// It held the lease and ran.
    Ran(RunSummary),
    /// Another run holds the lease: this one wrote nothing.
    Busy(Busy),
}

/// A report run's side of the lease: where it is kept, how long it lasts, the clock it is
/// checked on, and this run's id and deadline.
pub struct LeaseHolder<'a, L, C> {
    /// The results bucket, where the lease is kept.
    pub store: &'a L,
    /// Its key and duration.
    pub settings: &'a LeaseSettings,
    /// The clock (the real one: never the report's "as of" instant).
    pub clock: &'a C,
    /// This run's id ([`new_holder`]).
    pub holder: String,
    /// When the run is cut off, if it is (a Lambda invocation's deadline).
    pub deadline: Option<OffsetDateTime>,
}

impl<L: LeaseStore, C: Clock> LeaseHolder<'_, L, C> {
    /// Acquires the lease; if held, reports as of `now` with every write fenced by the lease
    /// ([`Fenced`]), then releases it, also when the run failed. A busy lease is logged and
    /// returned: the run wrote nothing.
    pub async fn run<R: RecordSource, S: ReportStore>(
        &self,
        settings: &ReportSettings,
        results: &R,
        store: &S,
        now: OffsetDateTime,
    ) -> Result<LeasedRun, ReportError> {
        self.run_watching(settings, results, store, now, None::<&Unwatched>)
            .await
    }

    /// [`Self::run`], looking at the task's delivery first when `watch` is given
    /// ([`Reporter::run_watching`]: its note of a pause is a write, fenced like the others).
    pub async fn run_watching<R: RecordSource, S: ReportStore, W: PauseWatch>(
        &self,
        settings: &ReportSettings,
        results: &R,
        store: &S,
        now: OffsetDateTime,
        watch: Option<&W>,
    ) -> Result<LeasedRun, ReportError> {
        let lease = match acquire(
            self.store,
            self.settings,
            &self.holder,
            self.clock,
            self.deadline,
        )
        .await?
        {
            Acquired::Held(lease) => lease,
            Acquired::Busy(busy) => {
                tracing::info!(holder = %busy.holder, expires_at = %busy.expires_at, "another report run holds the lease; this run ends without writing");
                return Ok(LeasedRun::Busy(busy));
            }
        };
        let fenced = Fenced {
            inner: store,
            lease: &lease,
            clock: self.clock,
        };
        let reporter = Reporter {
            settings,
            results,
            store: &fenced,
        };
        let ran = match watch {
            Some(w) => reporter.run_watching(now, self.clock.now(), w).await,
            None => reporter.run(now).await,
        };
        lease.release(self.store, self.clock).await;
        ran.map(LeasedRun::Ran)
    }
}

/// No watch of the task's delivery (the type of an absent one).
struct Unwatched;

impl PauseWatch for Unwatched {
    async fn look(&self, _at: OffsetDateTime) -> Result<Sighting, String> {
        Err("not watched".into())
    }
}

/// A report store whose writes and deletes start only while the lease is held.
pub struct Fenced<'a, S, C> {
    /// The store written to.
    pub inner: &'a S,
    /// The lease held.
    pub lease: &'a Lease,
    /// The clock the lease is checked on.
    pub clock: &'a C,
}

impl<S, C: Clock> Fenced<'_, S, C> {
    /// Runs `write` if it may start now, and abandons it (dropping the request) if it is still
    /// running at [`Lease::writes_end_by`]: both end in [`ReportError::LeaseEnding`].
    async fn fence<T>(
        &self,
        key: &str,
        write: impl Future<Output = Result<T, ReportError>>,
    ) -> Result<T, ReportError> {
        let now = self.clock.now();
        self.lease.check(now)?;
        let left =
            std::time::Duration::try_from(self.lease.writes_end_by - now).unwrap_or_default();
        match tokio::time::timeout(left, write).await {
            Ok(done) => done,
            Err(_) => {
                tracing::warn!(key, writes_end_by = %format_time(self.lease.writes_end_by), expires_at = %format_time(self.lease.expires_at), "a report write still running near the lease's expiry was abandoned; the next run writes it again");
                Err(self.lease.ending(self.lease.writes_end_by))
            }
        }
    }
}

impl<S: Listing, C: Clock> Listing for Fenced<'_, S, C> {
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        self.inner.list_keys(prefix).await
    }
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        self.inner.list_prefixes(prefix).await
    }
}

impl<S: RecordSource, C: Clock> RecordSource for Fenced<'_, S, C> {
    async fn get(&self, key: &str) -> Result<Bytes, ReportError> {
        self.inner.get(key).await
    }
}

impl<S: ReportStore, C: Clock> ReportStore for Fenced<'_, S, C> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), ReportError> {
        self.fence(key, self.inner.put(key, body)).await
    }
    async fn exists(&self, key: &str) -> Result<bool, ReportError> {
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), ReportError> {
        self.fence(key, self.inner.delete(key)).await
    }
}

#[cfg(test)]
mod tests;
