//! One memory budget for the body buffers of every job in a process: each part in flight (and
//! each single PutObject body buffered for its `Content-MD5`) holds a permit for its buffer's
//! bytes, so concurrent jobs wait for memory instead of adding up past the function's limit.
//!
//! Peak buffer memory is then at most the budget, whatever `SYNC_CONCURRENCY`, the part size and
//! the parts in flight per object are. A request larger than the whole budget is granted the
//! whole budget (once everything else has been released), so no job can wait forever.
//!
//! The budget is counted in KiB (rounded up) and is at most 4 TiB.

use std::fmt;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The unit the budget is counted in.
const UNIT: u64 = 1024;
/// The largest budget: what one permit can hold (4 TiB).
const MAX_UNITS: u64 = u32::MAX as u64;

/// A shared memory budget. Cheap to clone; clones share the budget.
#[derive(Clone)]
pub struct MemoryBudget {
    units: Arc<Semaphore>,
    total_units: u64,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("total", &self.total())
            .field("available", &self.available())
            .finish()
    }
}

/// Bytes held from a [`MemoryBudget`]; given back when dropped.
#[derive(Debug)]
pub struct BudgetPermit {
    _permit: OwnedSemaphorePermit,
    bytes: u64,
}

impl BudgetPermit {
    /// Bytes this permit holds (what was asked for, rounded up to whole KiB, at most the budget).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl MemoryBudget {
    /// A budget of `bytes` (rounded up to whole KiB; at least 1 KiB).
    pub fn new(bytes: u64) -> Self {
        let total_units = bytes.div_ceil(UNIT).clamp(1, MAX_UNITS);
        Self {
            units: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
        }
    }

    /// The whole budget, in bytes.
    pub fn total(&self) -> u64 {
        self.total_units * UNIT
    }

    /// Bytes not held by any permit now.
    pub fn available(&self) -> u64 {
        self.units.available_permits() as u64 * UNIT
    }

    /// Waits until `bytes` are free and holds them until the permit is dropped. Waiters are
    /// served in order, so a large request is not starved by small ones. A request larger than
    /// the whole budget is granted the whole budget.
    pub async fn acquire(&self, bytes: u64) -> BudgetPermit {
        let units = bytes.div_ceil(UNIT).clamp(1, self.total_units);
        // `units` fits in a u32: the total is capped at `MAX_UNITS`.
        let Ok(permit) = self.units.clone().acquire_many_owned(units as u32).await else {
            unreachable!("the budget's semaphore is never closed")
        };
        BudgetPermit {
            _permit: permit,
            bytes: units * UNIT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIB: u64 = 1024 * 1024;

    #[tokio::test]
    async fn permits_are_given_back_on_drop() {
        let b = MemoryBudget::new(10 * MIB);
        assert_eq!((b.total(), b.available()), (10 * MIB, 10 * MIB));
        let p = b.acquire(4 * MIB).await;
        let q = b.clone().acquire(3 * MIB).await;
        assert_eq!((p.bytes(), q.bytes()), (4 * MIB, 3 * MIB));
        assert_eq!(b.available(), 3 * MIB);
        drop(p);
        assert_eq!(b.available(), 7 * MIB);
        drop(q);
        assert_eq!(b.available(), 10 * MIB);
    }

    #[tokio::test]
    async fn a_request_waits_until_enough_is_free() {
        let b = MemoryBudget::new(8 * MIB);
        let held = b.acquire(6 * MIB).await;
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(4 * MIB).await.bytes() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "4 MiB granted with only 2 MiB free");
        drop(held);
        assert_eq!(waiting.await.unwrap(), 4 * MIB);
        assert_eq!(b.available(), 8 * MIB);
    }

    #[tokio::test]
    async fn more_than_the_whole_budget_gets_the_whole_budget() {
        let b = MemoryBudget::new(2 * MIB);
        let small = b.acquire(MIB).await;
        let big = tokio::spawn({
            let b = b.clone();
            async move { b.acquire(100 * MIB).await.bytes() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!big.is_finished(), "granted while another permit was held");
        drop(small);
        assert_eq!(big.await.unwrap(), 2 * MIB);
    }

    #[tokio::test]
    async fn sizes_round_up_to_whole_kib() {
        let b = MemoryBudget::new(1);
        assert_eq!(b.total(), 1024);
        let p = b.acquire(0).await;
        assert_eq!((p.bytes(), b.available()), (1024, 0));
        let b = MemoryBudget::new(10 * 1024);
        let p = b.acquire(1025).await;
        assert_eq!((p.bytes(), b.available()), (2048, 8 * 1024));
    }

    #[test]
    fn debug_shows_total_and_available() {
        let shown = format!("{:?}", MemoryBudget::new(MIB));
        assert!(shown.contains("total: 1048576") && shown.contains("available: 1048576"));
    }
}
