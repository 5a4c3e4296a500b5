//! Day totals: counts per outcome, bytes, first and last event, and replication-lag percentiles
//! from a histogram of bounded size (about 1 % relative error), whatever the number of records.

use crate::outcome::{Outcome, OutcomeKind};
use serde::Serialize;
use std::collections::BTreeMap;

/// Lag histogram: exact below 1,024 ms, then 64 buckets per power of two (under 1.1 % error).
#[derive(Debug, Clone, Default)]
pub struct LagHistogram {
    buckets: BTreeMap<u32, u64>,
    count: u64,
    max: u64,
}

const SUB: u32 = 64;

fn bucket_of(ms: u64) -> u32 {
    if ms < 1024 {
        return ms as u32;
    }
    let exp = 63 - ms.leading_zeros(); // ≥ 10
    let mantissa = ((ms >> (exp - 6)) & (SUB as u64 - 1)) as u32;
    1024 + (exp - 10) * SUB + mantissa
}

fn bucket_floor(b: u32) -> u64 {
    if b < 1024 {
        return b as u64;
    }
    let exp = (b - 1024) / SUB + 10;
    let mantissa = ((b - 1024) % SUB) as u64;
    (1u64 << exp) + (mantissa << (exp - 6))
}

impl LagHistogram {
    /// Adds one lag (negative lags, from clock skew, count as 0).
    pub fn add(&mut self, ms: i64) {
        let ms = ms.max(0) as u64;
        *self.buckets.entry(bucket_of(ms)).or_default() += 1;
        self.count += 1;
        self.max = self.max.max(ms);
    }

    /// The `q` quantile (0..=1), as the lower edge of its bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some(bucket_floor(*b).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Replication lag percentiles, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LagSummary {
    /// Median.
    pub p50: Option<u64>,
    /// 90th percentile.
    pub p90: Option<u64>,
    /// 99th percentile.
    pub p99: Option<u64>,
    /// Largest.
    pub max: Option<u64>,
}

/// A record's replication lag, milliseconds: measured for objects copied or deleted, when the
/// event time is known.
pub fn lag_of(o: &Outcome) -> Option<i64> {
    matches!(o.outcome, OutcomeKind::Copied | OutcomeKind::Deleted)
        .then(|| o.lag_ms())
        .flatten()
}

/// What a day came to, accumulated record by record.
#[derive(Debug, Clone, Default)]
pub struct DayTotals {
    /// Records per outcome.
    pub counts: BTreeMap<OutcomeKind, u64>,
    /// Records.
    pub records: u64,
    /// Bytes written to the destination.
    pub bytes: u64,
    /// Earliest and latest event time seen.
    pub first_event: Option<String>,
    /// Latest event time.
    pub last_event: Option<String>,
    lag: LagHistogram,
}

impl DayTotals {
    /// Counts one record (its lag: [`lag_of`]).
    pub fn add(&mut self, o: &Outcome) {
        *self.counts.entry(o.outcome).or_default() += 1;
        self.records += 1;
        self.bytes += o.bytes_moved;
        if let Some(t) = &o.event_time {
            if self.first_event.as_ref().is_none_or(|f| t < f) {
                self.first_event = Some(t.clone());
            }
            if self.last_event.as_ref().is_none_or(|l| t > l) {
                self.last_event = Some(t.clone());
            }
        }
        if let Some(l) = lag_of(o) {
            self.lag.add(l);
        }
    }

    /// The lag percentiles.
    pub fn lag(&self) -> LagSummary {
        LagSummary {
            p50: self.lag.quantile(0.50),
            p90: self.lag.quantile(0.90),
            p99: self.lag.quantile(0.99),
            max: (self.lag.count > 0).then_some(self.lag.max),
        }
    }

    /// Counts for every outcome, zeros included, by name.
    pub fn count_map(&self) -> BTreeMap<&'static str, u64> {
        OutcomeKind::ALL
            .iter()
            .map(|k| (k.as_str(), self.counts.get(k).copied().unwrap_or(0)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_within_about_one_percent() {
        let mut h = LagHistogram::default();
        for ms in 1..=100_000 {
            h.add(ms);
        }
        for (q, exact) in [(0.5, 50_000u64), (0.9, 90_000), (0.99, 99_000)] {
            let got = h.quantile(q).unwrap();
            let err = (got as f64 - exact as f64).abs() / exact as f64;
            assert!(err < 0.011, "q{q}: {got} vs {exact}");
        }
        assert_eq!(
            h.quantile(1.0),
            Some(100_000).map(|m: u64| bucket_floor(bucket_of(m)))
        );
        assert!(h.buckets.len() < 1024 + 10 * 64, "bounded size");
        let mut small = LagHistogram::default();
        small.add(-5);
        small.add(7);
        assert_eq!(
            (small.quantile(0.5), small.quantile(1.0)),
            (Some(0), Some(7))
        );
        assert_eq!(LagHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for ms in (0..5_000_000u64).step_by(997) {
            let b = bucket_of(ms);
            assert!(b >= last);
            assert!(bucket_floor(b) <= ms);
            last = b;
        }
    }
}
