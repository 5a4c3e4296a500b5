//! The results store: an S3 bucket and prefix that holds the outcome records, one JSON Lines
//! object per invocation, partitioned by the UTC hour of processing.

use crate::outcome::Outcome;
use crate::source::{sdk_error, SourceError};
use bytes::Bytes;
use std::future::Future;

/// Where outcome records are kept.
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

/// The real results store: an S3 bucket.
#[derive(Debug, Clone)]
pub struct S3ResultsStore {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3ResultsStore {
    /// A bucket reached through a client.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The client.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

impl ResultsStore for S3ResultsStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), SourceError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("PutObject", key, None, e))
    }
}

impl crate::resume::CheckpointStore for S3ResultsStore {
    fn load<'a>(
        &'a self,
        key: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<Option<Bytes>, SourceError>> {
        Box::pin(async move {
            let got = self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await;
            match got {
                Ok(o) => o
                    .body
                    .collect()
                    .await
                    .map(|b| Some(b.into_bytes()))
                    .map_err(|e| SourceError::Transport {
                        op: "GetObject",
                        key: key.to_owned(),
                        detail: crate::source::error_chain(&e),
                        transient: true,
                    }),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
                Err(e) => Err(sdk_error("GetObject", key, None, e)),
            }
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
    ) -> futures_util::future::BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type("application/json")
                .body(body.into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error("PutObject", key, None, e))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        body: Bytes,
    ) -> futures_util::future::BoxFuture<'a, Result<bool, SourceError>> {
        Box::pin(async move {
            let put = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_type("application/json")
                .body(body.into())
                .send()
                .await;
            match put {
                Ok(_) => Ok(true),
                // 412: an object is there. (409, a conflicting conditional write at the same
                // moment, is an error: the caller tries again.)
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => Ok(false),
                Err(e) => Err(sdk_error("PutObject", key, None, e)),
            }
        })
    }

    fn remove<'a>(
        &'a self,
        key: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), SourceError>> {
        Box::pin(async move {
            self.client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error("DeleteObject", key, None, e))
        })
    }
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
