//! Fault injection, set per run by flags or at `PUT /_emulator/faults`: server errors, added
//! latency, connections reset in the middle of a body, and slow trickled response bodies.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// What to inject. Rates are fractions of OSS API requests (admin requests are never faulted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Fraction answered `500 InternalError` or `503 ServiceUnavailable` (half each) before
    /// anything is done.
    pub error_rate: f64,
    /// Fraction whose connection is reset in the middle of a body: half-way through the request
    /// body for uploads (nothing is stored), half-way through the response body for downloads,
    /// and before any response otherwise.
    pub reset_rate: f64,
    /// Milliseconds added before every response.
    pub latency_ms: u64,
    /// Fraction of uploads (PutObject, UploadPart) whose first byte is flipped on the way in,
    /// before the body is checked: one with `Content-MD5` is refused (`400 InvalidDigest`) and
    /// nothing stored; one without is stored damaged, with the CRC-64 of the damaged bytes, as
    /// OSS would report.
    pub corrupt_rate: f64,
    /// If set, response bodies are sent at about this many bytes per second.
    pub trickle_bytes_per_sec: Option<u64>,
    /// If set, each request body is read at about this many bytes per second: a bandwidth cap
    /// per connection, as a long link gives (uploads through several connections at once go
    /// that many times faster).
    pub upload_bytes_per_sec: Option<u64>,
    /// Seed for the fault dice, for reproducible runs.
    pub seed: Option<u64>,
}

impl FaultConfig {
    /// Checks the rates are fractions and the trickle is positive.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("reset_rate", self.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if self.trickle_bytes_per_sec == Some(0) {
            return Err("trickle_bytes_per_sec must be positive".into());
        }
        if self.upload_bytes_per_sec == Some(0) {
            return Err("upload_bytes_per_sec must be positive".into());
        }
        Ok(())
    }
}

/// The fault chosen for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// No fault.
    None,
    /// Answer with this 5xx status.
    ServerError(u16),
    /// Reset the connection mid-body.
    Reset,
}

/// Counts of what was injected, served at `GET /_emulator/stats`.
#[derive(Debug, Default, Serialize)]
pub struct FaultStats {
    /// OSS API requests seen.
    pub requests: u64,
    /// 5xx answers injected.
    pub server_errors: u64,
    /// Connections reset.
    pub resets: u64,
    /// Responses delayed.
    pub delayed: u64,
    /// Uploads stored damaged.
    pub corrupted: u64,
    /// Response bodies trickled.
    pub trickled: u64,
    /// UploadPart requests whose part was stored.
    pub parts_stored: u64,
}

/// The live fault settings and dice.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<(FaultConfig, StdRng)>,
    requests: AtomicU64,
    server_errors: AtomicU64,
    resets: AtomicU64,
    delayed: AtomicU64,
    trickled: AtomicU64,
    parts_stored: AtomicU64,
    corrupted: AtomicU64,
}

fn rng_for(config: &FaultConfig) -> StdRng {
    match config.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => rand::make_rng::<StdRng>(),
    }
}

impl Faults {
    /// Starts with a configuration.
    pub fn new(config: FaultConfig) -> Self {
        let rng = rng_for(&config);
        Self {
            state: Mutex::new((config, rng)),
            requests: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            trickled: AtomicU64::new(0),
            parts_stored: AtomicU64::new(0),
            corrupted: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (FaultConfig, StdRng)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration in force.
    pub fn config(&self) -> FaultConfig {
        self.lock().0.clone()
    }

    /// Replaces the configuration (and reseeds the dice).
    pub fn set(&self, config: FaultConfig) {
        let rng = rng_for(&config);
        *self.lock() = (config, rng);
    }

    /// Rolls the dice for one request and returns the fault, the delay and the trickle rate.
    pub fn roll(&self) -> (Fault, Duration, Option<u64>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut guard = self.lock();
        let (config, rng) = &mut *guard;
        let delay = Duration::from_millis(config.latency_ms);
        let trickle = config.trickle_bytes_per_sec;
        let roll: f64 = rng.random();
        let fault = if roll < config.error_rate {
            Fault::ServerError(if rng.random_bool(0.5) { 500 } else { 503 })
        } else if roll < config.error_rate + config.reset_rate {
            Fault::Reset
        } else {
            Fault::None
        };
        drop(guard);
        match fault {
            Fault::ServerError(_) => self.server_errors.fetch_add(1, Ordering::Relaxed),
            Fault::Reset => self.resets.fetch_add(1, Ordering::Relaxed),
            Fault::None => 0,
        };
        if !delay.is_zero() {
            self.delayed.fetch_add(1, Ordering::Relaxed);
        }
        (fault, delay, trickle)
    }

    /// Rolls whether an upload is stored damaged.
    pub fn roll_corrupt(&self) -> bool {
        let mut guard = self.lock();
        let (config, rng) = &mut *guard;
        let hit = config.corrupt_rate > 0.0 && rng.random::<f64>() < config.corrupt_rate;
        if hit {
            self.corrupted.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Notes a trickled response.
    pub fn note_trickle(&self) {
        self.trickled.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes a part stored by UploadPart.
    pub fn note_part(&self) {
        self.parts_stored.fetch_add(1, Ordering::Relaxed);
    }

    /// The per-connection upload cap, if one is set.
    pub fn upload_cap(&self) -> Option<u64> {
        self.lock().0.upload_bytes_per_sec
    }

    /// Counts so far.
    pub fn stats(&self) -> FaultStats {
        FaultStats {
            requests: self.requests.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
            corrupted: self.corrupted.load(Ordering::Relaxed),
            trickled: self.trickled.load(Ordering::Relaxed),
            parts_stored: self.parts_stored.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_respected_roughly_and_reproducibly() {
        let config = FaultConfig {
            error_rate: 0.2,
            reset_rate: 0.1,
            seed: Some(7),
            ..FaultConfig::default()
        };
        let f = Faults::new(config.clone());
        let rolls: Vec<Fault> = (0..10_000).map(|_| f.roll().0).collect();
        let errors = rolls
            .iter()
            .filter(|x| matches!(x, Fault::ServerError(_)))
            .count();
        let resets = rolls.iter().filter(|x| **x == Fault::Reset).count();
        assert!((1_700..2_300).contains(&errors), "{errors}");
        assert!((800..1_200).contains(&resets), "{resets}");
        f.set(config);
        let again: Vec<Fault> = (0..10_000).map(|_| f.roll().0).collect();
        assert_eq!(rolls, again);
    }

    #[test]
    fn validation_names_the_field() {
        let bad = FaultConfig {
            error_rate: 1.5,
            ..FaultConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("error_rate"));
        assert!(FaultConfig::default().validate().is_ok());
    }
}
