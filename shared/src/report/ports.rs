//! The report's ports: what a report run needs from the results store it reads ([`Listing`],
//! [`RecordSource`]) and the bucket it writes to ([`ReportStore`]), and what they, and the run,
//! fail with ([`ReportError`]). The real stores are in [`super::stores`]; in-memory ones in
//! `crate::testing`.

use crate::errors::{BoxError, Context};
use crate::retry::Transient;
use bytes::Bytes;
use std::future::Future;

/// Why a report run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the results store failed.
    #[error("results store: {0}")]
    Results(#[source] BoxError),
    /// Writing the report failed.
    #[error("report destination: {0}")]
    Destination(#[source] BoxError),
    /// Sorting spilled to local disk and that failed.
    #[error("local sort files: {0}")]
    Io(#[from] std::io::Error),
    /// The run's lease is nearly over: it stopped before its next write (see
    /// [`super::lease`]); the next run continues from what is written.
    #[error("stopped writing at {until}: the report lease expires at {expires}, and a write started (or still running) later could land after another run took the lease over; the next run continues")]
    LeaseEnding {
        /// When writing stopped.
        until: String,
        /// When the lease expires.
        expires: String,
    },
    /// The last complete day's manifest names a time zone this build cannot read.
    #[error("time zone: {0}")]
    Zone(String),
}

impl ReportError {
    /// A call to the results store failed: what was done (`GetObject <key>`), the cause, and
    /// whether trying again may help.
    pub fn results(what: impl Into<String>, cause: impl Into<BoxError>, transient: bool) -> Self {
        Self::Results(Box::new(Context::new(what, cause).transient(transient)))
    }

    /// A call to the report's bucket failed: what was done, the cause, and whether trying again
    /// may help.
    pub fn destination(
        what: impl Into<String>,
        cause: impl Into<BoxError>,
        transient: bool,
    ) -> Self {
        Self::Destination(Box::new(Context::new(what, cause).transient(transient)))
    }
}

/// Whether a store's error says trying again may help: one of the crate's errors that know
/// ([`Context`], OSS's, [`crate::store::error::StoreError`],
/// [`crate::store::source::SourceError`]); a message alone does not.
fn cause_is_transient(e: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    if let Some(c) = e.downcast_ref::<Context>() {
        c.is_transient()
    } else if let Some(e) = e.downcast_ref::<crate::oss::Error>() {
        e.is_transient()
    } else if let Some(e) = e.downcast_ref::<crate::store::error::StoreError>() {
        e.is_transient()
    } else if let Some(e) = e.downcast_ref::<crate::store::source::SourceError>() {
        e.is_transient()
    } else {
        false
    }
}

impl Transient for ReportError {
    /// A store's call that may pass if made again, or a lease that ran out (the next run
    /// continues); never a local disk, nor a time zone this build cannot read.
    fn is_transient(&self) -> bool {
        match self {
            Self::Results(e) | Self::Destination(e) => cause_is_transient(&**e),
            Self::LeaseEnding { .. } => true,
            Self::Io(_) | Self::Zone(_) => false,
        }
    }
}

/// Listing a bucket: keys under a prefix, and the sub-prefixes (`.../`) directly under it.
pub trait Listing: Send + Sync {
    /// Keys under a prefix.
    fn list_keys(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, ReportError>> + Send;
    /// Sub-prefixes (`.../`) directly under a prefix.
    fn list_prefixes(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, ReportError>> + Send;
}

/// Where outcome records are read from.
pub trait RecordSource: Listing {
    /// An object's bytes.
    fn get(&self, key: &str) -> impl Future<Output = Result<Bytes, ReportError>> + Send;
}

/// Where reports are written (and read back: a day's manifest says what it read).
pub trait ReportStore: RecordSource {
    /// Writes an object whole.
    fn put(&self, key: &str, body: Bytes) -> impl Future<Output = Result<(), ReportError>> + Send;
    /// Whether an object exists.
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool, ReportError>> + Send;
    /// Deletes an object.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), ReportError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_error_keeps_its_cause_and_says_if_it_may_pass() {
        let e = ReportError::results("GetObject k", "timed out", true);
        assert_eq!(e.to_string(), "results store: GetObject k: timed out");
        assert!(e.is_transient());
        assert!(std::error::Error::source(&e).is_some());
        let e = ReportError::Destination("k: NoSuchKey".into());
        assert_eq!(e.to_string(), "report destination: k: NoSuchKey");
        assert!(!e.is_transient());
    }
}
