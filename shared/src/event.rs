//! S3 object events from an SQS message body, in every shape that reaches a queue: S3 direct,
//! SNS-wrapped, EventBridge, moto's reduced form, with one or several records. Tolerant of
//! missing and unknown fields, strict about what it needs.

use serde_json::Value;

/// What an event asks of the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The object was created or overwritten (`ObjectCreated:*`).
    Created,
    /// The current version is gone (`ObjectRemoved:*`, `LifecycleExpiration:*`).
    Removed,
    /// An event the task does not act on (restore, tagging, replication, ...).
    Other,
}

/// One object event, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    /// The event's own name (`ObjectCreated:Put`, or EventBridge's `Object Created`).
    pub name: String,
    /// What it asks for.
    pub kind: EventKind,
    /// When S3 says it happened (RFC 3339), if given.
    pub time: Option<String>,
    /// Source bucket.
    pub bucket: String,
    /// Source key, decoded.
    pub key: String,
    /// Object size, if given (creations).
    pub size: Option<u64>,
    /// S3 ETag without quotes, if given.
    pub etag: Option<String>,
    /// Version id, if given.
    pub version_id: Option<String>,
    /// Per-key ordering token, if given.
    pub sequencer: Option<String>,
}

/// What a message body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `s3:TestEvent`, sent when a notification is configured.
    Test {
        /// The bucket named in it.
        bucket: Option<String>,
    },
    /// Object events; each is parsed on its own, so one bad record does not hide the others.
    Events(Vec<Result<ObjectEvent, ParseError>>),
}

/// Why a body or record could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an S3 event in any known shape.
    #[error("message is not an S3 event notification: {0}")]
    UnknownShape(String),
    /// A record lacks a field or has one of the wrong type.
    #[error("record {index}: {reason}")]
    BadRecord {
        /// Position of the record in the message.
        index: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Parses an SQS message body.
pub fn parse_message(body: &str) -> Result<Message, ParseError> {
    let v: Value = serde_json::from_str(body).map_err(|e| ParseError::NotJson(e.to_string()))?;
    parse_value(&v, 0)
}

fn parse_value(v: &Value, depth: u8) -> Result<Message, ParseError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ParseError::UnknownShape("the body is not a JSON object".into()))?;
    // SNS → SQS without raw delivery: the S3 event is a JSON string in `Message`.
    if obj.get("Type").and_then(Value::as_str) == Some("Notification") && depth == 0 {
        let inner = obj.get("Message").and_then(Value::as_str).ok_or_else(|| {
            ParseError::UnknownShape("SNS notification without a Message string".into())
        })?;
        let inner: Value = serde_json::from_str(inner)
            .map_err(|e| ParseError::NotJson(format!("SNS Message: {e}")))?;
        return parse_value(&inner, depth + 1);
    }
    if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Message::Test {
            bucket: obj.get("Bucket").and_then(Value::as_str).map(str::to_owned),
        });
    }
    if let Some(records) = obj.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| ParseError::UnknownShape("Records is not a list".into()))?;
        if records.is_empty() {
            return Err(ParseError::UnknownShape("Records is empty".into()));
        }
        let events = records
            .iter()
            .enumerate()
            .map(|(i, r)| s3_record(r).map_err(|reason| ParseError::BadRecord { index: i, reason }))
            .collect();
        return Ok(Message::Events(events));
    }
    if obj.get("source").and_then(Value::as_str) == Some("aws.s3") && obj.contains_key("detail") {
        return Ok(Message::Events(vec![
            eventbridge(v).map_err(|reason| ParseError::BadRecord { index: 0, reason })
        ]));
    }
    Err(ParseError::UnknownShape(
        "no Records, no s3:TestEvent, no EventBridge aws.s3 event".into(),
    ))
}

/// The value at a path of object keys; `None` when any step is missing or the value is null.
fn value_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, p| cur.get(p))
        .filter(|v| !v.is_null())
}

fn string_at(v: &Value, path: &[&str]) -> Result<Option<String>, String> {
    match value_at(v, path) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("{} must be a string, not {other}", path.join("."))),
    }
}

fn required(v: &Value, path: &[&str]) -> Result<String, String> {
    string_at(v, path)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{} is missing", path.join(".")))
}

/// An ETag without its quotes; an empty one is no ETag.
fn etag_value(e: String) -> Option<String> {
    Some(e.trim_matches('"').to_owned()).filter(|e| !e.is_empty())
}

fn size_at(v: &Value, path: &[&str]) -> Result<Option<u64>, String> {
    match value_at(v, path) {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            format!(
                "{} must be a whole number of bytes, not {n}",
                path.join(".")
            )
        }),
        Some(other) => Err(format!("{} must be a number, not {other}", path.join("."))),
    }
}

/// S3's notification names → what they ask for.
pub fn kind_of(name: &str) -> EventKind {
    if name.starts_with("ObjectCreated:") {
        EventKind::Created
    } else if name == "ObjectRemoved:Delete"
        || name == "ObjectRemoved:DeleteMarkerCreated"
        || name.starts_with("LifecycleExpiration:")
    {
        EventKind::Removed
    } else {
        EventKind::Other
    }
}

fn s3_record(r: &Value) -> Result<ObjectEvent, String> {
    if !r.is_object() {
        return Err("a record must be a JSON object".into());
    }
    let name = required(r, &["eventName"])?;
    let raw_key = required(r, &["s3", "object", "key"])?;
    let key = decode_form_key(&raw_key)?;
    Ok(ObjectEvent {
        kind: kind_of(&name),
        name,
        time: string_at(r, &["eventTime"])?,
        bucket: required(r, &["s3", "bucket", "name"])?,
        key,
        size: size_at(r, &["s3", "object", "size"])?,
        etag: string_at(r, &["s3", "object", "eTag"])?.and_then(etag_value),
        version_id: string_at(r, &["s3", "object", "versionId"])?,
        sequencer: string_at(r, &["s3", "object", "sequencer"])?,
    })
}

fn eventbridge(v: &Value) -> Result<ObjectEvent, String> {
    let detail_type = required(v, &["detail-type"])?;
    let kind = match detail_type.as_str() {
        "Object Created" => EventKind::Created,
        "Object Deleted" => EventKind::Removed,
        _ => EventKind::Other,
    };
    // EventBridge keys are not URL-encoded.
    let key = required(v, &["detail", "object", "key"])?;
    Ok(ObjectEvent {
        name: detail_type,
        kind,
        time: string_at(v, &["time"])?,
        bucket: required(v, &["detail", "bucket", "name"])?,
        key,
        size: size_at(v, &["detail", "object", "size"])?,
        etag: string_at(v, &["detail", "object", "etag"])?.and_then(etag_value),
        version_id: string_at(v, &["detail", "object", "version-id"])?,
        sequencer: string_at(v, &["detail", "object", "sequencer"])?,
    })
}

/// Decodes a key as S3 writes it in notifications: form-URL-encoded (`+` is a space, `%XX` a
/// byte). A `%` not followed by two hex digits, or bytes that are not UTF-8, are errors: S3 never
/// writes them, so the record was not written by S3.
pub fn decode_form_key(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Two hex digits exactly: `u8::from_str_radix` alone would take `+1` as 1.
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        format!("key {raw:?} has an invalid percent-escape at byte {i}")
                    })?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("key {raw:?} does not decode to UTF-8"))
}

/// Orders two sequencers of the same key: the shorter is right-padded with `0`, then compared
/// as hex strings (case-insensitive).
pub fn sequencer_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let pad = |s: &str| format!("{:0<n$}", s.to_ascii_uppercase());
    pad(a).cmp(&pad(b))
}

/// Names of the events `ctl` sends (its backfill, a verification's repair, and retry):
/// S3-shaped, so the sync function handles them as S3's own.
/// The event name of a backfill: an `ObjectCreated:*` event, so the sync function copies the
/// object, or skips it if OSS already holds that version.
pub const BACKFILL_EVENT: &str = "ObjectCreated:Backfill";

/// The event name of a verification's repair of a key missing or differing in OSS.
pub const VERIFY_EVENT: &str = "ObjectCreated:Verify";

/// The event name of a retried creation.
pub const RETRY_EVENT: &str = "ObjectCreated:Retry";

/// The event name of a retried delete (S3's own name: the sync function checks the source first
/// and copies the object instead if it exists again).
pub const RETRY_DELETE_EVENT: &str = "ObjectRemoved:Delete";

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn keys_are_form_decoded_strictly() {
        assert_eq!(
            decode_form_key("summer+trip%2Bday+1.jpg").unwrap(),
            "summer trip+day 1.jpg"
        );
        assert_eq!(
            decode_form_key("dir%2Fhello+world%2B1.txt").unwrap(),
            "dir/hello world+1.txt"
        );
        assert_eq!(decode_form_key("%C3%BC%E6%97%A5").unwrap(), "ü日");
        assert_eq!(decode_form_key("100%25").unwrap(), "100%");
        for bad in ["50%", "%zz", "a%2", "%FF%FE", "%+1", "%-1", "a%+fb"] {
            assert!(decode_form_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sequencers_compare_padded() {
        assert_eq!(
            sequencer_cmp("0055AED6DCD90281E5", "0055AED6DCD90281E6"),
            Ordering::Less
        );
        assert_eq!(
            sequencer_cmp("0055AED6DCD90281E5", "0055AED6DCD90281E500"),
            Ordering::Equal
        );
        assert_eq!(
            sequencer_cmp("617f0837b476e463", "617F08299329D189"),
            Ordering::Greater
        );
        assert_eq!(sequencer_cmp("1", "0F"), Ordering::Greater);
    }

    #[test]
    fn kinds() {
        assert_eq!(
            kind_of("ObjectCreated:CompleteMultipartUpload"),
            EventKind::Created
        );
        assert_eq!(
            kind_of("ObjectRemoved:DeleteMarkerCreated"),
            EventKind::Removed
        );
        assert_eq!(kind_of("LifecycleExpiration:Delete"), EventKind::Removed);
        assert_eq!(kind_of("ObjectRestore:Completed"), EventKind::Other);
        assert_eq!(kind_of("LifecycleTransition"), EventKind::Other);
    }

    #[test]
    fn bad_records_say_what_is_wrong_and_spare_the_others() {
        let body = r#"{"Records":[
            {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"ok","size":1}}},
            {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"neg","size":-1}}},
            {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"size":1}}},
            {"eventName":5,"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}},
            "not an object"
        ]}"#;
        let Message::Events(ev) = parse_message(body).unwrap() else {
            panic!()
        };
        assert_eq!(ev[0].as_ref().unwrap().key, "ok");
        let reasons: Vec<String> = ev[1..]
            .iter()
            .map(|e| e.as_ref().unwrap_err().to_string())
            .collect();
        assert!(
            reasons[0].contains("size must be a whole number"),
            "{}",
            reasons[0]
        );
        assert!(reasons[1].contains("s3.object.key is missing"));
        assert!(reasons[2].contains("eventName must be a string"));
        assert!(reasons[3].contains("must be a JSON object"));
    }

    #[test]
    fn junk_bodies_are_refused() {
        for body in [
            "",
            "not json",
            "[]",
            "{}",
            "{\"Records\":[]}",
            "{\"Records\":{}}",
            "null",
            "{\"Type\":\"Notification\"}",
            "{\"Type\":\"Notification\",\"Message\":\"{not json\"}",
        ] {
            assert!(parse_message(body).is_err(), "{body}");
        }
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/s3-events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn only_event(name: &str) -> ObjectEvent {
        match parse_message(&fixture(name)).unwrap() {
            Message::Events(mut ev) => {
                assert_eq!(ev.len(), 1, "{name}");
                ev.remove(0).unwrap()
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn s3_direct_put() {
        let e = only_event("s3-object-created-put.json");
        assert_eq!(e.kind, EventKind::Created);
        assert_eq!(e.name, "ObjectCreated:Put");
        assert_eq!(e.bucket, "mybucket");
        assert_eq!(e.key, "photos/2026/summer trip+day 1.jpg");
        assert_eq!(e.size, Some(1024));
        assert_eq!(e.etag.as_deref(), Some("d41d8cd98f00b204e9800998ecf8427e"));
        assert_eq!(
            e.version_id.as_deref(),
            Some("096fKKXTRTtl3on89fVO.nfljtsv6qko")
        );
        assert_eq!(e.sequencer.as_deref(), Some("0055AED6DCD90281E5"));
        assert_eq!(e.time.as_deref(), Some("1970-01-01T00:00:00.000Z"));
    }

    #[test]
    fn an_empty_etag_is_no_etag() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},
            "object":{"key":"k","size":1,"eTag":"\"\""}}}]}"#;
        let Ok(Message::Events(events)) = parse_message(body) else {
            panic!("not parsed")
        };
        assert_eq!(events[0].as_ref().unwrap().etag, None);
    }

    #[test]
    fn s3_direct_delete() {
        let e = only_event("s3-object-removed-delete.json");
        assert_eq!(e.kind, EventKind::Removed);
        assert_eq!(e.key, "photos/2026/summer trip+day 1.jpg");
        assert_eq!((e.size, e.etag), (None, None));
        assert_eq!(e.sequencer.as_deref(), Some("0055AED6DCD90281F0"));
    }

    #[test]
    fn sns_wrapped() {
        let e = only_event("sns-wrapped-object-created.json");
        assert_eq!(e.name, "ObjectCreated:CompleteMultipartUpload");
        assert_eq!(e.kind, EventKind::Created);
        assert_eq!(e.key, "videos/big file.mp4");
        assert_eq!(e.size, Some(73_400_320));
        assert!(e.etag.unwrap().contains('-'), "a multipart ETag");
    }

    #[test]
    fn eventbridge_keys_are_not_decoded() {
        let e = only_event("eventbridge-object-created.json");
        assert_eq!(
            (e.kind, e.name.as_str()),
            (EventKind::Created, "Object Created")
        );
        assert_eq!(
            (e.bucket.as_str(), e.key.as_str()),
            ("example-bucket", "example-key")
        );
        assert_eq!(
            e.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
        assert_eq!(e.sequencer.as_deref(), Some("617f08299329d189"));
        assert_eq!(e.size, Some(5));
        let d = only_event("eventbridge-object-deleted.json");
        assert_eq!(d.kind, EventKind::Removed);
        let body = fixture("eventbridge-object-created.json").replace("example-key", "a+b%20c");
        let Message::Events(ev) = parse_message(&body).unwrap() else {
            panic!()
        };
        assert_eq!(ev[0].as_ref().unwrap().key, "a+b%20c");
    }

    #[test]
    fn moto_reduced_shape() {
        let e = only_event("moto-object-created-put.json");
        assert_eq!(e.key, "dir/hello world+1.txt");
        assert_eq!((e.version_id, e.sequencer), (None, None));
        assert_eq!(e.size, Some(15));
    }

    #[test]
    fn test_event() {
        assert_eq!(
            parse_message(&fixture("s3-test-event.json")).unwrap(),
            Message::Test {
                bucket: Some("mybucket".into())
            }
        );
    }

    #[test]
    fn several_records_in_one_message() {
        let one: Value = serde_json::from_str(&fixture("s3-object-created-put.json")).unwrap();
        let two: Value = serde_json::from_str(&fixture("s3-object-removed-delete.json")).unwrap();
        let body = serde_json::json!({"Records": [one["Records"][0], two["Records"][0]]});
        let Message::Events(ev) = parse_message(&body.to_string()).unwrap() else {
            panic!()
        };
        let kinds: Vec<EventKind> = ev.iter().map(|e| e.as_ref().unwrap().kind).collect();
        assert_eq!(kinds, [EventKind::Created, EventKind::Removed]);
    }

    proptest::proptest! {
        #[test]
        fn no_input_makes_the_parser_panic(body in proptest::prelude::any::<String>()) {
            let _ = parse_message(&body);
            let _ = decode_form_key(&body);
        }

        #[test]
        fn no_mutated_fixture_makes_the_parser_panic(
            which in 0usize..7, at in proptest::prelude::any::<proptest::sample::Index>(),
            junk in "[\\[\\]{}\",:0-9a-z%+\\\\-]{0,8}", cut in proptest::prelude::any::<bool>(),
        ) {
            const NAMES: [&str; 7] = [
                "eventbridge-object-created.json", "eventbridge-object-deleted.json",
                "moto-object-created-put.json", "s3-object-created-put.json",
                "s3-object-removed-delete.json", "s3-test-event.json",
                "sns-wrapped-object-created.json",
            ];
            let f = fixture(NAMES[which]);
            let mut i = at.index(f.len());
            while !f.is_char_boundary(i) { i -= 1; }
            let body = if cut { format!("{}{junk}", &f[..i]) } else { format!("{}{junk}{}", &f[..i], &f[i..]) };
            let _ = parse_message(&body);
        }

        #[test]
        fn encoded_keys_decode_back(key in "\\PC{0,40}") {
            let encoded: String = percent_encoding::utf8_percent_encode(&key, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
            proptest::prop_assert_eq!(decode_form_key(&encoded).unwrap(), key);
        }
    }
}
