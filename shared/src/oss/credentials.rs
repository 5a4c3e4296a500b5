//! Credentials the OSS client can replace while it runs.
//!
//! A key pair read once at start-up goes stale when it is rotated or when its STS token expires;
//! every request then fails with a credential error until the process restarts. So the client
//! holds its credentials in a store, and may be given a [`CredentialRefresh`]: a
//! [`RefreshCredentials`] source (the Secrets Manager secret they came from) and a minimum
//! interval between two re-reads.
//!
//! The protocol, when OSS refuses a request with one of the [credential
//! codes](super::error::is_credential_code):
//! 1. If the credentials were replaced since the request was signed (another request refreshed
//!    them), the request is worth repeating at once: it was signed with the old ones.
//! 2. Otherwise, if no refresh happened within the interval (one minute by default; the clock is
//!    injectable), the source is read again. Concurrent failing requests wait for that one read
//!    rather than start their own.
//! 3. If what was read differs from what the request was signed with, the store holds it from
//!    now on and the request is worth repeating; the client says so with
//!    [`Error::CredentialsReplaced`](super::Error::CredentialsReplaced), which is transient, so the
//!    caller's retry policy repeats the request (re-opening a streamed body as for any retry).
//! 4. Otherwise (unchanged, unreadable, or within the interval) the refusal stands, permanent as
//!    before: a key that is wrong everywhere costs one read of the source a minute, not a loop.
//!
//! Each re-read is logged with the access key id only; the secret and the token never are.

use super::signing::Credentials;
use futures_util::future::BoxFuture;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The shortest time between two re-reads of the credentials, by default.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// The longest a re-read may take; requests refused meanwhile wait for it.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why credentials could not be re-read. Never carries the secret.
#[derive(Debug, thiserror::Error)]
#[error("re-reading the OSS credentials failed: {0}")]
pub struct RefreshError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Where fresh credentials come from (a Secrets Manager secret, in production). Any
/// `Fn() -> impl Future<Output = Result<Credentials, RefreshError>>` is one.
pub trait RefreshCredentials: Send + Sync {
    /// Reads the credentials afresh.
    fn refresh(&self) -> BoxFuture<'_, Result<Credentials, RefreshError>>;
}

impl<F, Fut> RefreshCredentials for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Result<Credentials, RefreshError>> + Send + 'static,
{
    fn refresh(&self) -> BoxFuture<'_, Result<Credentials, RefreshError>> {
        Box::pin(self())
    }
}

/// A monotonic clock, injectable so tests can move it on.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// How the client re-reads its credentials: from where, how often at most, by which clock.
#[derive(Clone)]
pub struct CredentialRefresh {
    source: Arc<dyn RefreshCredentials>,
    min_interval: Duration,
    clock: Arc<dyn Clock>,
}

impl CredentialRefresh {
    /// Re-reads from `source`, at most once a minute, by the system clock.
    pub fn new(source: impl RefreshCredentials + 'static) -> Self {
        Self {
            source: Arc::new(source),
            min_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            clock: Arc::new(SystemClock),
        }
    }

    /// The shortest time between two re-reads.
    pub fn min_interval(mut self, interval: Duration) -> Self {
        self.min_interval = interval;
        self
    }

    /// The clock the interval is measured by.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reads the source now, whatever the interval.
    pub async fn read(&self) -> Result<Credentials, RefreshError> {
        self.source.refresh().await
    }
}

impl fmt::Debug for CredentialRefresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialRefresh")
            .field("min_interval", &self.min_interval)
            .finish_non_exhaustive()
    }
}

/// Whether a re-read may start: none yet, or the last one at least `min_interval` ago.
pub fn may_refresh(last: Option<Instant>, now: Instant, min_interval: Duration) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) >= min_interval)
}

/// The credentials a request was signed with, and which version of the store's they were.
#[derive(Clone)]
pub(crate) struct Signed {
    pub credentials: Arc<Credentials>,
    generation: u64,
}

/// The credentials a client signs with, replaceable at run time (see the module doc).
pub(crate) struct CredentialStore {
    current: RwLock<Signed>,
    refresh: RwLock<Option<CredentialRefresh>>,
    /// When the source was last read; held while a read runs, so concurrent failing requests
    /// share it.
    last: tokio::sync::Mutex<Option<Instant>>,
}

impl CredentialStore {
    /// A store holding `credentials`, without a refresher.
    pub fn new(credentials: Credentials) -> Self {
        Self {
            current: RwLock::new(Signed {
                credentials: Arc::new(credentials),
                generation: 0,
            }),
            refresh: RwLock::new(None),
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The credentials to sign the next request with.
    pub fn current(&self) -> Signed {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sets (or replaces) the refresher.
    pub fn set_refresh(&self, refresh: CredentialRefresh) {
        *self.refresh.write().unwrap_or_else(PoisonError::into_inner) = Some(refresh);
    }

    /// Called when OSS refused a request signed with `used` for its credentials. True if the
    /// store now holds other credentials than `used`, so the request is worth repeating.
    pub async fn renew(&self, used: &Signed) -> bool {
        let mut last = self.last.lock().await;
        if self.current().generation != used.generation {
            return true;
        }
        let refresh = self
            .refresh
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(refresh) = refresh else {
            return false;
        };
        let now = refresh.clock.now();
        if !may_refresh(*last, now, refresh.min_interval) {
            tracing::warn!(
                access_key_id = %used.credentials.access_key_id,
                min_interval_secs = refresh.min_interval.as_secs(),
                "OSS refused the credentials again; they were re-read less than the minimum interval ago, so the error stands"
            );
            return false;
        }
        *last = Some(now);
        let read = tokio::time::timeout(REFRESH_TIMEOUT, refresh.read())
            .await
            .unwrap_or_else(|_| {
                Err(RefreshError(
                    format!("no answer within {} s", REFRESH_TIMEOUT.as_secs()).into(),
                ))
            });
        match read {
            Ok(fresh) if fresh == *used.credentials => {
                tracing::warn!(
                    access_key_id = %fresh.access_key_id,
                    "OSS refused the credentials; re-read them, but they are unchanged, so the error stands"
                );
                false
            }
            Ok(fresh) => {
                tracing::info!(
                    previous_access_key_id = %used.credentials.access_key_id,
                    access_key_id = %fresh.access_key_id,
                    "OSS refused the credentials; re-read them and replaced them"
                );
                let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
                *current = Signed {
                    credentials: Arc::new(fresh),
                    generation: used.generation + 1,
                };
                true
            }
            Err(e) => {
                tracing::warn!(error = %crate::errors::error_chain(&e), "OSS refused the credentials, and re-reading them failed; the error stands");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    #[test]
    fn refresh_at_most_once_per_interval() {
        let t0 = Instant::now();
        let minute = Duration::from_secs(60);
        assert!(may_refresh(None, t0, minute));
        assert!(!may_refresh(Some(t0), t0, minute));
        assert!(!may_refresh(Some(t0), t0 + Duration::from_secs(59), minute));
        assert!(may_refresh(Some(t0), t0 + minute, minute));
        // A clock that went backwards never allows a refresh early.
        assert!(!may_refresh(Some(t0 + minute), t0, minute));
    }

    struct Fake(Mutex<Instant>);
    impl Clock for Fake {
        fn now(&self) -> Instant {
            *self.0.lock().unwrap()
        }
    }

    fn creds(ak: &str) -> Credentials {
        Credentials::new(ak, format!("{ak}-secret"), None)
    }

    #[tokio::test]
    async fn renews_only_on_change_and_shares_a_refresh() {
        let secret = Arc::new(Mutex::new(creds("a")));
        let reads = Arc::new(AtomicU32::new(0));
        let clock = Arc::new(Fake(Mutex::new(Instant::now())));
        let store = CredentialStore::new(creds("a"));
        let used = store.current();
        // Without a refresher nothing changes.
        assert!(!store.renew(&used).await);
        let (s, r) = (secret.clone(), reads.clone());
        store.set_refresh(
            CredentialRefresh::new(move || {
                r.fetch_add(1, Ordering::SeqCst);
                let c = s.lock().unwrap().clone();
                async move { Ok(c) }
            })
            .clock(clock.clone()),
        );
        // Unchanged: read once, the error stands, and within the minute no second read.
        assert!(!store.renew(&used).await);
        assert!(!store.renew(&used).await);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // A minute on, with the secret rotated: replaced.
        *clock.0.lock().unwrap() += Duration::from_secs(60);
        *secret.lock().unwrap() = creds("b");
        assert!(store.renew(&used).await);
        assert_eq!(store.current().credentials.access_key_id, "b");
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // A request signed with the old ones is repeated without another read.
        assert!(store.renew(&used).await);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
        // The new ones refused within the minute: the error stands.
        let newer = store.current();
        *secret.lock().unwrap() = creds("c");
        assert!(!store.renew(&newer).await);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn concurrent_refusals_share_one_read() {
        let reads = Arc::new(AtomicU32::new(0));
        let store = Arc::new(CredentialStore::new(creds("a")));
        let r = reads.clone();
        store.set_refresh(CredentialRefresh::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(creds("b"))
            }
        }));
        let used = store.current();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (store, used) = (store.clone(), used.clone());
            tasks.spawn(async move { store.renew(&used).await });
        }
        while let Some(renewed) = tasks.join_next().await {
            assert!(renewed.unwrap(), "every refused request is worth repeating");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn debug_shows_no_source() {
        let r = CredentialRefresh::new(|| async { Ok(creds("a")) });
        assert!(format!("{r:?}").contains("min_interval"));
    }
}
