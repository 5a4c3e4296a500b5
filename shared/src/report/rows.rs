//! Report rows: the CSV columns of the file lists (`total_list`, `failed_list`,
//! `skipped_list`: one row per file) and of `attempts_list` (one row per outcome record), keys
//! URL-encoded, cells a spreadsheet would evaluate neutralised, and the order rows are listed in
//! (file, then time).
//!
//! Neutralising follows OWASP's advice on CSV injection: a cell that starts with `=`, `+`, `-`,
//! `@`, a tab or a carriage return gets a leading `'`, which spreadsheets take as "text" and do
//! not show. So that the mark is never ambiguous, a cell that starts with `'` gets one too: a
//! reader drops the first `'` of any cell ([`cell_value`]). Keys never need it (URL-encoded, a
//! leading `-` as `%2D`). The CRC-64's decimal form (20 digits, past what a spreadsheet or
//! pandas' default float keeps) is marked as text the same way, beside its 16 hex digits.

use super::files::FileDay;
use crate::outcome::Outcome;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The columns both lists open with: the object, the event, and the source version
/// ([`object_fields`]).
const OBJECT_COLUMNS: [&str; 8] = [
    "source_key",
    "dest_key",
    "bucket",
    "event_name",
    "version_id",
    "size",
    "source_etag",
    "dest_crc64",
];

/// The error columns both lists carry after the state, and the event's time ([`error_fields`]).
const ERROR_COLUMNS: [&str; 3] = ["error_code", "error_message", "event_time"];

/// The columns both lists close with ([`destination_fields`]).
const DESTINATION_COLUMNS: [&str; 4] = [
    "dest_size",
    "dest_crc64_hex",
    "bytes_moved",
    "dropped_metadata",
];

/// `parts` laid end to end as one header of `N` columns; a count other than `N` fails the build.
const fn header<const N: usize>(parts: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut at, mut p) = (0, 0);
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[at] = parts[p][i];
            at += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(at == N, "a header's parts do not add up to its columns");
    out
}

/// The header row of `attempts_list`: one row per record. Columns added in format 4 are last, so
/// a reader by position keeps working.
pub const ATTEMPT_HEADER: [&str; 23] = header(&[
    &OBJECT_COLUMNS,
    &["outcome", "final"],
    &ERROR_COLUMNS,
    &[
        "start",
        "end",
        "copy_rounds",
        "message_id",
        "receive_count",
        "recheck_of",
    ],
    &DESTINATION_COLUMNS,
]);

/// The header row of `late_list`: a record of a day already complete, with that day first.
pub fn late_header() -> Vec<&'static str> {
    std::iter::once("day").chain(ATTEMPT_HEADER).collect()
}

/// The CSV fields of a late record of `day` (`YYYY-MM-DD`), in [`late_header`] order.
pub fn late_fields(day: &str, o: &Outcome) -> Vec<String> {
    std::iter::once(day.to_owned())
        .chain(attempt_fields(o))
        .collect()
}

/// The header row of the file lists: one row per file, its fields from the record that settles
/// it (or its latest, when pending). Columns added in format 4 are last.
pub const FILE_HEADER: [&str; 23] = header(&[
    &OBJECT_COLUMNS,
    &["state"],
    &ERROR_COLUMNS,
    &[
        "settled_at",
        "last_outcome",
        "first_attempt",
        "last_attempt",
        "deliveries",
        "attempts",
        "message_id",
    ],
    &DESTINATION_COLUMNS,
]);

/// The column list of each list kind, as the manifest's `fileSchema` gives it (S3 Inventory's
/// form: names joined by `, `).
pub fn file_schema() -> serde_json::Value {
    let schema = |h: &[&str]| serde_json::Value::from(h.join(", "));
    serde_json::json!({
        "total_list": schema(&FILE_HEADER),
        "failed_list": schema(&FILE_HEADER),
        "skipped_list": schema(&FILE_HEADER),
        "attempts_list": schema(&ATTEMPT_HEADER),
        "late_list": schema(&late_header()),
    })
}

/// Keeps the RFC 3986 unreserved characters and `/`, so keys stay readable.
const KEY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// URL-encodes a key for a report (UTF-8, `%XX`; `/` kept; a leading `-` as `%2D`, so a key
/// cell never starts with a character a spreadsheet evaluates).
pub fn encode_key(key: &str) -> String {
    match key.strip_prefix('-') {
        Some(rest) => format!("%2D{}", utf8_percent_encode(rest, KEY)),
        None => utf8_percent_encode(key, KEY).to_string(),
    }
}

/// Whether a spreadsheet would evaluate a cell starting with `c` (OWASP's list), or `c` is the
/// text mark itself.
fn needs_mark(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r' | '\'')
}

/// A text cell as written: with a leading `'` when it starts with a character a spreadsheet
/// would evaluate (or with `'`).
pub fn neutralise(cell: &str) -> String {
    match cell.chars().next() {
        Some(c) if needs_mark(c) => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

/// A cell's value as read back: without the leading `'` a report adds (format 4 on; earlier
/// formats wrote no `'`, and none of the cells `ctl retry-failed` reads ever started with one).
pub fn cell_value(cell: &str) -> &str {
    cell.strip_prefix('\'').unwrap_or(cell)
}

/// The CRC-64 as OSS gives it (decimal), marked as text.
fn crc_decimal(crc: Option<u64>) -> String {
    crc.map(|n| format!("'{n}")).unwrap_or_default()
}

/// The CRC-64 as 16 hex digits.
fn crc_hex(crc: Option<u64>) -> String {
    crc.map(|n| format!("{n:016x}")).unwrap_or_default()
}

/// The object's size in the destination, known when the record copied it.
fn dest_size(o: &Outcome) -> String {
    num(o
        .size
        .filter(|_| o.outcome == crate::outcome::OutcomeKind::Copied))
}

/// The metadata not carried, as a JSON array (empty when none).
fn dropped(o: &Outcome) -> String {
    if o.dropped_metadata.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&o.dropped_metadata).unwrap_or_default()
    }
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

/// A text field from a record, neutralised.
fn opt(v: &Option<String>) -> String {
    v.as_deref().map(neutralise).unwrap_or_default()
}

fn key(v: &Option<String>) -> String {
    v.as_deref().map(encode_key).unwrap_or_default()
}

fn num<T: ToString>(v: Option<T>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

/// The fields both lists open with: the object, the event, and the source version.
fn object_fields(o: &Outcome) -> [String; 8] {
    [
        key(&o.source_key),
        key(&o.dest_key),
        opt(&o.bucket),
        opt(&o.event_name),
        opt(&o.version_id),
        num(o.size),
        opt(&o.source_etag),
        crc_decimal(o.crc64),
    ]
}

/// The error fields both lists carry after the state, and the event's time.
fn error_fields(o: &Outcome) -> [String; 3] {
    [
        opt(&o.error_code),
        opt(&o.error_message),
        opt(&o.event_time),
    ]
}

/// The fields both lists close with: what the destination holds, `bytes_moved`, and the
/// metadata left behind.
fn destination_fields(o: &Outcome, bytes_moved: u64) -> [String; 4] {
    [
        dest_size(o),
        crc_hex(o.crc64),
        bytes_moved.to_string(),
        dropped(o),
    ]
}

/// `fields` as one row of `N` columns; panics when there are more or fewer (a list's columns are
/// fixed by its header).
fn columns<const N: usize>(fields: impl IntoIterator<Item = String>) -> [String; N] {
    let mut fields = fields.into_iter();
    let row = std::array::from_fn(|_| fields.next().expect("fewer fields than columns"));
    assert!(fields.next().is_none(), "more fields than columns");
    row
}

/// The CSV fields of a record, in [`ATTEMPT_HEADER`] order.
pub fn attempt_fields(o: &Outcome) -> [String; 23] {
    let outcome = [o.outcome.as_str().to_owned(), o.is_final.to_string()];
    let processing = [
        neutralise(&start_of(o)),
        neutralise(&o.processed_at),
        o.attempts.to_string(),
        neutralise(&o.message_id),
        o.receive_count.to_string(),
        opt(&o.recheck_of),
    ];
    columns(
        object_fields(o)
            .into_iter()
            .chain(outcome)
            .chain(error_fields(o))
            .chain(processing)
            .chain(destination_fields(o, o.bytes_moved)),
    )
}

/// The CSV fields of a file, in [`FILE_HEADER`] order. `bytes_moved` counts every attempt of the
/// day; the other record fields are the settling record's.
pub fn file_fields(f: &FileDay) -> [String; 23] {
    let o = &f.record;
    let settling = [
        neutralise(&o.processed_at),
        f.last_outcome.as_str().to_owned(),
        neutralise(&f.first_at),
        neutralise(&f.last_at),
        f.deliveries.to_string(),
        f.attempts.to_string(),
        neutralise(&o.message_id),
    ];
    columns(
        object_fields(o)
            .into_iter()
            .chain([f.state.as_str().to_owned()])
            .chain(error_fields(o))
            .chain(settling)
            .chain(destination_fields(o, f.bytes_moved)),
    )
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
    use crate::report::files::{FileDay, FileFolder, FileState};

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
        assert_eq!(csv_row(&ATTEMPT_HEADER).split(|b| *b == b',').count(), 23);
        assert_eq!(encode_key("-x/-y"), "%2Dx/-y");
        assert_eq!(
            crate::event::decode_form_key(&encode_key("-=1+2 @a")).unwrap(),
            "-=1+2 @a"
        );
    }

    #[test]
    fn no_cell_starts_with_what_a_spreadsheet_evaluates() {
        let hostile = [
            "=HYPERLINK(\"x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'=1",
        ];
        for h in hostile {
            let o: Outcome = serde_json::from_value(serde_json::json!({
                "task": "t", "processed_at": h, "source_key": h, "dest_key": h, "bucket": h,
                "event_name": h, "version_id": h, "source_etag": h, "event_time": h,
                "outcome": "failed", "bytes_moved": 0, "attempts": 1, "duration_ms": 0,
                "message_id": h, "error_code": h, "error_message": h, "recheck_of": h,
                "dropped_metadata": [h],
            }))
            .unwrap();
            let f = FileDay {
                state: FileState::Settled(OutcomeKind::Failed),
                last_outcome: OutcomeKind::Failed,
                first_at: h.into(),
                last_at: h.into(),
                deliveries: 1,
                attempts: 1,
                bytes_moved: 0,
                record: o.clone(),
            };
            let rows = [
                attempt_fields(&o).to_vec(),
                file_fields(&f).to_vec(),
                late_fields("2026-11-25", &o),
            ];
            for cell in rows.iter().flatten() {
                let first = cell.chars().next();
                assert!(
                    !matches!(first, Some('=' | '+' | '-' | '@' | '\t' | '\r')),
                    "{cell:?}"
                );
                if first == Some('\'') {
                    assert_eq!(cell_value(cell), h, "only the mark is added");
                }
            }
            assert_eq!(
                at(&ATTEMPT_HEADER, &attempt_fields(&o), "error_message"),
                format!("'{h}")
            );
        }
        assert_eq!(neutralise("plain = text"), "plain = text");
        assert_eq!(neutralise(""), "");
        assert_eq!(cell_value("'=1"), "=1");
        assert_eq!(cell_value("x'"), "x'");
    }

    #[test]
    fn crc64_is_hex_and_marked_decimal_and_the_schema_follows_the_headers() {
        let o: Outcome = serde_json::from_value(serde_json::json!({
            "task": "t", "processed_at": "2026-11-25T00:00:01.500Z", "dest_key": "k",
            "outcome": "copied", "bytes_moved": 12, "attempts": 1, "duration_ms": 0,
            "message_id": "m", "size": 10, "crc64": u64::MAX - 1,
            "dropped_metadata": ["x-amz-meta-a: value is not printable ASCII", "tag b; c"],
        }))
        .unwrap();
        let f = attempt_fields(&o);
        let h = &ATTEMPT_HEADER;
        assert_eq!(at(h, &f, "dest_crc64"), "'18446744073709551614");
        assert_eq!(at(h, &f, "dest_crc64_hex"), "fffffffffffffffe");
        assert_eq!(at(h, &f, "dest_size"), "10");
        assert_eq!(at(h, &f, "bytes_moved"), "12");
        let dropped: Vec<String> = serde_json::from_str(at(h, &f, "dropped_metadata")).unwrap();
        assert_eq!(dropped, o.dropped_metadata);
        let mut small = o.clone();
        small.crc64 = Some(0xab);
        small.outcome = OutcomeKind::Skipped;
        small.dropped_metadata.clear();
        let f = attempt_fields(&small);
        assert_eq!(at(h, &f, "dest_crc64_hex"), "00000000000000ab");
        assert_eq!(
            at(h, &f, "dest_size"),
            "",
            "only a copy says the destination's size"
        );
        assert_eq!(at(h, &f, "dropped_metadata"), "");
        let schema = file_schema();
        assert_eq!(schema["attempts_list"], ATTEMPT_HEADER.join(", "));
        assert_eq!(schema["failed_list"], FILE_HEADER.join(", "));
        assert!(schema["late_list"]
            .as_str()
            .unwrap()
            .starts_with("day, source_key, "));
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
        assert_eq!(at(h, &fields, "dest_crc64"), "'42");
        assert_eq!(at(h, &fields, "dest_crc64_hex"), "000000000000002a");
        assert_eq!(at(h, &fields, "dest_size"), "");
        assert_eq!(at(h, &fields, "bytes_moved"), "7", "every attempt's bytes");
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
