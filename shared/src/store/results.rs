//! The results port: where outcome records go (S3 in [`crate::aws::s3_results`]), and their keys:
//! an S3 bucket and prefix that holds the outcome records, one JSON Lines
//! object per invocation, partitioned by the UTC hour of processing.

use super::source::SourceError;
use crate::outcome::Outcome;
use bytes::Bytes;
use std::future::Future;

/// Where outcome records are kept. Its errors are the S3 object calls' ([`SourceError`]'s
/// `Service` and `Transport`), as for the checkpoints kept in the same bucket
/// ([`super::checkpoints::CheckpointStore`]); whatever the error, the sync handler reports the
/// whole batch failed, so it comes again.
pub trait ResultsStore: Send + Sync {
    /// Writes one object (whole; objects are never appended to).
    fn put(&self, key: &str, body: Bytes) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// The key of an invocation's records:
/// `<prefix>/<task>/dt=YYYY-MM-DD/hr=HH/<invocation>.jsonl`, by the UTC hour of processing.
pub fn results_key(prefix: &str, task: &str, at: time::OffsetDateTime, invocation: &str) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let invocation: String = invocation
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{prefix}{task}/dt={:04}-{:02}-{:02}/hr={:02}/{invocation}.jsonl",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour()
    )
}

/// Renders records as JSON Lines.
pub fn to_json_lines(records: &[Outcome]) -> Bytes {
    let mut out = Vec::with_capacity(records.len() * 512);
    for r in records {
        // Serialising a struct of strings and numbers cannot fail.
        if serde_json::to_writer(&mut out, r).is_ok() {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_partition_by_utc_hour() {
        let t = time::macros::datetime!(2026-11-25 08:30 +08:00);
        assert_eq!(
            results_key("results", "t1", t, "abc-123"),
            "results/t1/dt=2026-11-25/hr=00/abc-123.jsonl"
        );
        assert_eq!(
            results_key("", "t1", t, "a/b"),
            "t1/dt=2026-11-25/hr=00/a_b.jsonl"
        );
    }
}
