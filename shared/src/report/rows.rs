//! Report rows: the CSV columns of `total_list`, `failed_list` and `skipped_list`, one row per
//! outcome record, keys URL-encoded, and the order rows are listed in (key, then time).

use crate::outcome::Outcome;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The header row.
pub const HEADER: [&str; 16] = [
    "source_key",
    "dest_key",
    "bucket",
    "event_name",
    "version_id",
    "size",
    "source_etag",
    "dest_crc64",
    "outcome",
    "error_code",
    "error_message",
    "event_time",
    "start",
    "end",
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

/// The sort key of a record: source key, then processing time, then message id.
pub fn sort_key(o: &Outcome) -> (String, String, String) {
    (
        o.source_key.clone().unwrap_or_default(),
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

/// The CSV fields of a record, in [`HEADER`] order.
pub fn fields(o: &Outcome) -> [String; 16] {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        o.source_key.as_deref().map(encode_key).unwrap_or_default(),
        o.dest_key.as_deref().map(encode_key).unwrap_or_default(),
        opt(&o.bucket),
        opt(&o.event_name),
        opt(&o.version_id),
        o.size.map(|s| s.to_string()).unwrap_or_default(),
        opt(&o.source_etag),
        o.crc64.map(|c| c.to_string()).unwrap_or_default(),
        o.outcome.as_str().to_owned(),
        opt(&o.error_code),
        opt(&o.error_message),
        opt(&o.event_time),
        start_of(o),
        o.processed_at.clone(),
        o.attempts.to_string(),
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

    #[test]
    fn keys_are_encoded_and_rows_quoted() {
        assert_eq!(encode_key("a b/ü,\"x\"\n%"), "a%20b/%C3%BC%2C%22x%22%0A%25");
        let row = csv_row(&["a,b", "say \"hi\"", "line\nbreak", "plain"]);
        assert_eq!(row, b"\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",plain\r\n");
        let mut r = csv::Reader::from_reader(&row[..]);
        let _ = r.headers();
        assert_eq!(csv_row(&HEADER).split(|b| *b == b',').count(), 16);
    }

    #[test]
    fn fields_follow_the_header() {
        let o: Outcome = serde_json::from_value(serde_json::json!({
            "task": "t", "processed_at": "2026-11-25T00:00:01.500Z", "source_key": "a b",
            "dest_key": "m/a b", "outcome": "failed", "bytes_moved": 0, "attempts": 2,
            "duration_ms": 1000, "message_id": "m1", "error_code": "X", "error_message": "y, z"
        }))
        .unwrap();
        let f = fields(&o);
        assert_eq!(f[0], "a%20b");
        assert_eq!(f[8], OutcomeKind::Failed.as_str());
        assert_eq!(f[12], "2026-11-25T00:00:00.500Z");
        assert_eq!(f[13], "2026-11-25T00:00:01.500Z");
        assert_eq!(f[14], "2");
    }
}
