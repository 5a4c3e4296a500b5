//! The outcome record: what happened to one event. The sync function writes one per event to the
//! results store (JSON Lines) and to its log; the report function reads them back.

use serde::{Deserialize, Serialize};

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeKind {
    /// The source object was copied to the destination.
    Copied,
    /// The destination already held this source version; nothing was written.
    Skipped,
    /// The destination object was deleted to match the source.
    Deleted,
    /// The event's version is gone or replaced, and a newer state was (or will be) synced instead.
    Superseded,
    /// The event is for a bucket or prefix outside the task; acknowledged without action.
    Filtered,
    /// The event asks for nothing this task does (other event kinds, deletes when delete sync is
    /// off, the test event).
    Ignored,
    /// The message could not be understood; reported failed so it reaches the DLQ.
    Invalid,
    /// The work failed. A transient failure is reported failed so SQS delivers it again; a
    /// permanent one (the object can never be copied as it is) is recorded once, `final`, and
    /// acknowledged.
    Failed,
    /// The invocation's deadline came before the work could be done (or finished); reported
    /// failed so SQS delivers it again, and nothing is left half-done.
    Deferred,
    /// A copy in parts was stopped by the invocation's deadline with its progress kept (a
    /// checkpoint and the open upload); the message was sent back to continue it.
    #[serde(rename = "in_progress")]
    InProgress,
}

impl OutcomeKind {
    /// Every kind, in report order.
    pub const ALL: [OutcomeKind; 10] = [
        Self::Copied,
        Self::Skipped,
        Self::Deleted,
        Self::Superseded,
        Self::Filtered,
        Self::Ignored,
        Self::Invalid,
        Self::Failed,
        Self::Deferred,
        Self::InProgress,
    ];

    /// The lower-case name used in records and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copied => "copied",
            Self::Skipped => "skipped",
            Self::Deleted => "deleted",
            Self::Superseded => "superseded",
            Self::Filtered => "filtered",
            Self::Ignored => "ignored",
            Self::Invalid => "invalid",
            Self::Failed => "failed",
            Self::Deferred => "deferred",
            Self::InProgress => "in_progress",
        }
    }

    /// Whether the outcome is an error of some kind (for log levels and alarms).
    pub fn is_error(self) -> bool {
        matches!(self, Self::Invalid | Self::Failed)
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One record per event. Field names are the results store's format (documented in
/// docs/report-format.md); optional fields are omitted when unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// Task id.
    pub task: String,
    /// When processing of the event ended, UTC, RFC 3339 with milliseconds.
    pub processed_at: String,
    /// When S3 says the event happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The event's name (`ObjectCreated:Put`, `s3:TestEvent`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    /// Source bucket named by the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Source key, decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_key: Option<String>,
    /// Destination key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_key: Option<String>,
    /// Version id from the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Sequencer from the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    /// Source ETag (of the version copied, or the event's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_etag: Option<String>,
    /// Object size (of the version copied, or the event's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Bytes written to the destination (retries included).
    pub bytes_moved: u64,
    /// What happened.
    pub outcome: OutcomeKind,
    /// Error code (OSS, S3 or ours), for failures and refusals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// Error message or reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Metadata names the destination could not carry (reported, not silently dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_metadata: Vec<String>,
    /// Copy rounds (1 unless the source changed during a copy).
    pub attempts: u32,
    /// Whether this is the event's last word: `true` for every outcome but a failure or deferral
    /// that SQS will deliver again. A permanent failure is final at once; a transient failure or a
    /// deferral is final on the message's last delivery (its receive count reached the queue's
    /// `maxReceiveCount`, after which SQS moves it to the DLQ).
    #[serde(rename = "final", default = "final_by_default")]
    pub is_final: bool,
    /// Requests made to the source and destination for it.
    #[serde(default)]
    pub requests: u32,
    /// Milliseconds spent on the event.
    pub duration_ms: u64,
    /// Request ids of the destination's answers (for support cases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_ids: Vec<String>,
    /// SQS message id.
    pub message_id: String,
    /// How many times SQS has delivered the message (`ApproximateReceiveCount`).
    #[serde(default)]
    pub receive_count: u32,
    /// For a recheck (a delayed second look a later delivery left behind): the message it
    /// stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_of: Option<String>,
    /// CRC-64/XZ (OSS's `x-oss-hash-crc64ecma`) of the destination object, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crc64: Option<u64>,
}

/// Records written before the field existed read as final; a report then decides a key's state by
/// its latest record.
fn final_by_default() -> bool {
    true
}

impl Outcome {
    /// Milliseconds between the event and the end of its processing (replication lag), when the
    /// event time is known.
    pub fn lag_ms(&self) -> Option<i64> {
        let parse = |s: &str| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        };
        let event = parse(self.event_time.as_deref()?)?;
        let done = parse(&self.processed_at)?;
        Some((done - event).whole_milliseconds() as i64)
    }
}

/// Formats an instant as the records do: UTC, RFC 3339, milliseconds.
pub fn format_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_omit_unknowns() {
        let o = Outcome {
            task: "t".into(),
            processed_at: "2026-11-25T03:01:35.000Z".into(),
            event_time: Some("2026-11-25T03:01:33.879Z".into()),
            event_name: Some("ObjectCreated:Put".into()),
            bucket: Some("b".into()),
            source_key: Some("a,b\n\"c\"".into()),
            dest_key: Some("p/a,b\n\"c\"".into()),
            version_id: None,
            sequencer: None,
            source_etag: Some("e".into()),
            size: Some(3),
            bytes_moved: 3,
            outcome: OutcomeKind::Copied,
            error_code: None,
            error_message: None,
            dropped_metadata: vec![],
            attempts: 1,
            is_final: true,
            requests: 4,
            duration_ms: 5,
            request_ids: vec!["r".into()],
            message_id: "m".into(),
            receive_count: 1,
            recheck_of: None,
            crc64: Some(42),
        };
        let line = serde_json::to_string(&o).unwrap();
        assert!(!line.contains("version_id") && !line.contains('\n'));
        assert!(line.contains("\"outcome\":\"copied\""));
        assert!(line.contains("\"final\":true"));
        assert_eq!(serde_json::from_str::<Outcome>(&line).unwrap(), o);
        assert_eq!(o.lag_ms(), Some(1121));
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        let t = time::macros::datetime!(2026-11-25 11:01:33.8795 +08:00);
        assert_eq!(format_time(t), "2026-11-25T03:01:33.879Z");
    }
}
