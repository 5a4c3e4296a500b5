//! The events `ctl` sends: S3 notification records, as S3 writes them (form-URL-encoded keys, one
//! record per message), named so records and reports show where they came from.

pub use crate::event::{BACKFILL_EVENT, RETRY_DELETE_EVENT, RETRY_EVENT, VERIFY_EVENT};
use crate::outcome::format_time;
use crate::report::rows::encode_key;
use serde_json::json;
use time::OffsetDateTime;

/// What one sent event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEvent<'a> {
    /// The event name.
    pub name: &'a str,
    /// The source bucket.
    pub bucket: &'a str,
    /// The key, as stored (not encoded).
    pub key: &'a str,
    /// The object's size, when known.
    pub size: Option<u64>,
    /// The object's ETag without quotes, when known: a destination that already holds this
    /// version is skipped after one HEAD, without reading the source.
    pub etag: Option<&'a str>,
}

/// The SQS message body for an event sent at `now`. Its event time is the time it was sent, not
/// the object's age, so replication lag stays meaningful.
pub fn event_body(e: &SentEvent<'_>, now: OffsetDateTime) -> String {
    let mut object = json!({ "key": encode_key(e.key) });
    if let Some(size) = e.size {
        object["size"] = json!(size);
    }
    if let Some(etag) = e.etag.filter(|t| !t.is_empty()) {
        object["eTag"] = json!(etag);
    }
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "s3-oss-sync:ctl",
            "eventTime": format_time(now),
            "eventName": e.name,
            "userIdentity": { "principalId": "s3-oss-sync-ctl" },
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": { "name": e.bucket, "arn": format!("arn:aws:s3:::{}", e.bucket) },
                "object": object,
            }
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{parse_message, EventKind, Message};
    use proptest::prelude::*;

    fn round_trip(name: &str, key: &str, size: Option<u64>, etag: Option<&str>) {
        let body = event_body(
            &SentEvent {
                name,
                bucket: "src",
                key,
                size,
                etag,
            },
            time::macros::datetime!(2026-11-25 10:00 UTC),
        );
        let Message::Events(events) = parse_message(&body).unwrap() else {
            panic!("not events: {body}");
        };
        let e = events.into_iter().next().unwrap().unwrap();
        assert_eq!(e.key, key, "{body}");
        assert_eq!(e.bucket, "src");
        assert_eq!(e.size, size);
        assert_eq!(e.etag.as_deref(), etag);
        assert_eq!(e.name, name);
        assert_eq!(e.time.as_deref(), Some("2026-11-25T10:00:00.000Z"));
    }

    #[test]
    fn events_parse_back_as_the_sync_function_reads_them() {
        round_trip(BACKFILL_EVENT, "a b+c%d/ü/日本.txt", Some(5), Some("abc"));
        round_trip(RETRY_EVENT, "x\u{1}\ny", None, None);
        assert_eq!(crate::event::kind_of(BACKFILL_EVENT), EventKind::Created);
        assert_eq!(crate::event::kind_of(RETRY_EVENT), EventKind::Created);
        assert_eq!(crate::event::kind_of(VERIFY_EVENT), EventKind::Created);
        assert_eq!(
            crate::event::kind_of(RETRY_DELETE_EVENT),
            EventKind::Removed
        );
    }

    proptest! {
        #[test]
        fn any_key_survives_the_trip(key in "\\PC{1,64}", size in proptest::option::of(0u64..u64::MAX / 2)) {
            round_trip(BACKFILL_EVENT, &key, size, Some("e"));
        }
    }
}
