//! Report rows: the CSV columns of the file lists (`total_list`, `failed_list`,
//! `skipped_list`: one row per file) and of `attempts_list` (one row per outcome record), keys
//! URL-encoded, and the order rows are listed in (file, then time).

use super::files::FileDay;
use crate::outcome::Outcome;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The header row of `attempts_list`: one row per record.
pub const ATTEMPT_HEADER: [&str; 19] = [
    "source_key",
    "dest_key",
    "bucket",
    "event_name",
    "version_id",
    "size",
    "source_etag",
    "dest_crc64",
    "outcome",
    "final",
    "error_code",
    "error_message",
    "event_time",
    "start",
    "end",
    "copy_rounds",
    "message_id",
    "receive_count",
    "recheck_of",
];

/// The header row of `late_list`: a record of a day already complete, with that day first.
pub fn late_header() -> Vec<&'static str> {
    std::iter::once("day").chain(ATTEMPT_HEADER).collect()
}

/// The CSV fields of a late record of `day`, in [`late_header`] order.
pub fn late_fields(day: &str, o: &Outcome) -> Vec<String> {
    std::iter::once(day.to_owned())
        .chain(attempt_fields(o))
        .collect()
}

/// The header row of the file lists: one row per file, its fields from the record that settles
/// it (or its latest, when pending).
pub const FILE_HEADER: [&str; 19] = [
    "source_key",
    "dest_key",
    "bucket",
    "event_name",
    "version_id",
    "size",
    "source_etag",
    "dest_crc64",
    "state",
    "error_code",
    "error_message",
    "event_time",
    "settled_at",
    "last_outcome",
    "first_attempt",
    "last_attempt",
    "deliveries",
    "attempts",
    "message_id",
];

/// Keeps the RFC 3986 unreserved characters and `/`, so keys stay readable.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// URL-encodes a key for a report (UTF-8, `%XX`; `/` kept).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, KEY).to_string()
}

/// The sort key of a record: its file ([`super::files::file_id`]), then processing time, then
/// message id.
pub fn sort_key(o: &Outcome) -> (String, String, String) {
    (
        super::files::file_id(o),
        o.processed_at.clone(),
        o.message_id.clone(),
    )
}

/// The start of processing: `processed_at` less the duration.
fn start_of(o: &Outcome) -> String {
    let parsed = time::OffsetDateTime::parse(
        &o.processed_at,
        &time::format_description::well_known::Rfc3339,
    );
    match parsed {
        Ok(end) => crate::outcome::format_time(
            end - time::Duration::milliseconds(o.duration_ms.min(i64::MAX as u64) as i64),
        ),
        Err(_) => o.processed_at.clone(),
    }
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

fn key(v: &Option<String>) -> String {
    v.as_deref().map(encode_key).unwrap_or_default()
}

fn num<T: ToString>(v: Option<T>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

/// The CSV fields of a record, in [`ATTEMPT_HEADER`] order.
pub fn attempt_fields(o: &Outcome) -> [String; 19] {
    [
        key(&o.source_key),
        key(&o.dest_key),
        opt(&o.bucket),
        opt(&o.event_name),
        opt(&o.version_id),
        num(o.size),
        opt(&o.source_etag),
        num(o.crc64),
        o.outcome.as_str().to_owned(),
        o.is_final.to_string(),
        opt(&o.error_code),
        opt(&o.error_message),
        opt(&o.event_time),
        start_of(o),
        o.processed_at.clone(),
        o.attempts.to_string(),
        o.message_id.clone(),
        o.receive_count.to_string(),
        opt(&o.recheck_of),
    ]
}

/// The CSV fields of a file, in [`FILE_HEADER`] order.
pub fn file_fields(f: &FileDay) -> [String; 19] {
    let o = &f.record;
    [
        key(&o.source_key),
        key(&o.dest_key),
        opt(&o.bucket),
        opt(&o.event_name),
        opt(&o.version_id),
        num(o.size),
        opt(&o.source_etag),
        num(o.crc64),
        f.state.as_str().to_owned(),
        opt(&o.error_code),
        opt(&o.error_message),
        opt(&o.event_time),
        o.processed_at.clone(),
        f.last_outcome.as_str().to_owned(),
        f.first_at.clone(),
        f.last_at.clone(),
        f.deliveries.to_string(),
        f.attempts.to_string(),
        o.message_id.clone(),
    ]
}

/// One CSV row (with its line end), quoted as RFC 4180 requires.
pub fn csv_row(fields: &[impl AsRef<str>]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256));
    // Writing to a Vec cannot fail.
    let _ = w.write_record(fields.iter().map(|f| f.as_ref()));
    let mut row = w.into_inner().unwrap_or_default();
    row.shrink_to_fit();
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::OutcomeKind;
    use crate::report::files::{FileFolder, FileState};

    /// The field under `name`.
    fn at<'a>(header: &[&str], fields: &'a [String], name: &str) -> &'a str {
        &fields[header.iter().position(|h| *h == name).unwrap()]
    }

    #[test]
    fn keys_are_encoded_and_rows_quoted() {
        assert_eq!(encode_key("a b/ü,\"x\"\n%"), "a%20b/%C3%BC%2C%22x%22%0A%25");
        let row = csv_row(&["a,b", "say \"hi\"", "line\nbreak", "plain"]);
        assert_eq!(row, b"\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",plain\r\n");
        let mut r = csv::Reader::from_reader(&row[..]);
        let _ = r.headers();
        assert_eq!(csv_row(&ATTEMPT_HEADER).split(|b| *b == b',').count(), 19);
    }

    #[test]
    fn attempt_fields_follow_the_header() {
        let o: Outcome = serde_json::from_value(serde_json::json!({
            "task": "t", "processed_at": "2026-11-25T00:00:01.500Z", "source_key": "a b",
            "dest_key": "m/a b", "outcome": "failed", "bytes_moved": 0, "attempts": 2,
            "duration_ms": 1000, "message_id": "m1", "error_code": "X", "error_message": "y, z",
            "final": false, "receive_count": 3, "recheck_of": "m0"
        }))
        .unwrap();
        let f = attempt_fields(&o);
        let h = &ATTEMPT_HEADER;
        assert_eq!(at(h, &f, "source_key"), "a%20b");
        assert_eq!(at(h, &f, "dest_key"), "m/a%20b");
        assert_eq!(at(h, &f, "outcome"), OutcomeKind::Failed.as_str());
        assert_eq!(at(h, &f, "final"), "false");
        assert_eq!(at(h, &f, "start"), "2026-11-25T00:00:00.500Z");
        assert_eq!(at(h, &f, "end"), "2026-11-25T00:00:01.500Z");
        assert_eq!(at(h, &f, "copy_rounds"), "2");
        assert_eq!(at(h, &f, "receive_count"), "3");
        assert_eq!(at(h, &f, "recheck_of"), "m0");
    }

    #[test]
    fn file_fields_show_the_settling_record_and_the_counts() {
        use crate::report::files::tests::rec;
        let mut f = FileFolder::default();
        let mut failed = rec("k", 1, OutcomeKind::Failed, true);
        failed.error_code = Some("SignatureDoesNotMatch".into());
        assert!(f.push("m/k", failed).is_none());
        let mut copied = rec("k", 2, OutcomeKind::Copied, true);
        copied.crc64 = Some(42);
        assert!(f.push("m/k", copied).is_none());
        let day = f.finish().unwrap();
        assert_eq!(day.state, FileState::Settled(OutcomeKind::Copied));
        let fields = file_fields(&day);
        let h = &FILE_HEADER;
        assert_eq!(at(h, &fields, "state"), "copied");
        assert_eq!(at(h, &fields, "error_code"), "");
        assert_eq!(at(h, &fields, "dest_crc64"), "42");
        assert_eq!(at(h, &fields, "settled_at"), "2026-11-25T10:00:02.000Z");
        assert_eq!(at(h, &fields, "first_attempt"), "2026-11-25T10:00:01.000Z");
        assert_eq!(at(h, &fields, "last_attempt"), "2026-11-25T10:00:02.000Z");
        assert_eq!(at(h, &fields, "last_outcome"), "copied");
        assert_eq!(
            (at(h, &fields, "deliveries"), at(h, &fields, "attempts")),
            ("2", "2")
        );
    }
}
