//! Retries as a policy: exponential backoff with full jitter, bounded by attempts and by total
//! time; only errors that say they are transient are retried, and each retry is logged.

use rand::RngExt;
use std::future::Future;
use std::time::{Duration, Instant};

/// How often and how long to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff ceiling before the first retry; doubled each retry.
    pub initial_backoff: Duration,
    /// Largest backoff ceiling.
    pub max_backoff: Duration,
    /// No retry starts after this much time since the first attempt.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            deadline: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff ceiling before retry `n` (1-based): `initial × 2^(n-1)`, capped.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(20));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// A jittered backoff: uniform in `[0, ceiling]` ("full jitter").
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = rand::rng().random_range(0..=ceiling.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }
}

/// Something that knows whether trying again can help.
pub trait Transient {
    /// True if the same call may succeed later.
    fn is_transient(&self) -> bool;
}

/// The result of a retried call, with how many attempts it took.
#[derive(Debug)]
pub struct Attempted<T> {
    /// The final result.
    pub result: T,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
}

/// Runs `call(attempt)` until it succeeds, fails permanently, or the policy is spent.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    op: &str,
    mut call: F,
) -> Attempted<Result<T, E>>
where
    E: Transient + std::fmt::Display,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let max = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let result = call(attempt).await;
        let err = match result {
            Ok(v) => {
                return Attempted {
                    result: Ok(v),
                    attempts: attempt,
                }
            }
            Err(e) => e,
        };
        let wait = policy.backoff(attempt);
        if !err.is_transient() || attempt >= max || start.elapsed() + wait > policy.deadline {
            return Attempted {
                result: Err(err),
                attempts: attempt,
            };
        }
        tracing::warn!(
            op,
            attempt,
            max_attempts = max,
            backoff_ms = wait.as_millis() as u64,
            error = %err,
            "transient error, retrying (attempt {attempt} of {max})"
        );
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct E(bool);
    impl Transient for E {
        fn is_transient(&self) -> bool {
            self.0
        }
    }
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "E({})", self.0)
        }
    }

    fn fast(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            deadline: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let out = retry(&fast(5), "op", |_| async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n < 3 {
                Err(E(true))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!((out.result.unwrap(), out.attempts), (3, 3));
    }

    #[tokio::test]
    async fn permanent_errors_fail_at_once() {
        let calls = AtomicU32::new(0);
        let out = retry(&fast(5), "op", |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(E(false))
        })
        .await;
        assert!(out.result.is_err());
        assert_eq!((out.attempts, calls.load(Ordering::SeqCst)), (1, 1));
    }

    #[tokio::test]
    async fn attempts_and_deadline_bound_the_retries() {
        let out = retry(&fast(4), "op", |_| async { Err::<(), _>(E(true)) }).await;
        assert_eq!(out.attempts, 4);
        let slow = RetryPolicy {
            max_attempts: 100,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(20),
            deadline: Duration::from_millis(50),
        };
        let out = retry(&slow, "op", |_| async { Err::<(), _>(E(true)) }).await;
        assert!(out.attempts < 100, "{}", out.attempts);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(30), Duration::from_secs(5));
        for n in 1..10 {
            assert!(p.backoff(n) <= p.ceiling(n));
        }
    }
}
