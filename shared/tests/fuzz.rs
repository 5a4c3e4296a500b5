//! Fuzz targets, as property tests: `cargo fuzz` needs a nightly toolchain, which this project
//! does not use. Each target feeds generated and mutated input to a parser or writer and checks
//! that it never panics and that what is written reads back the same.
//!
//! `make test` runs each target for `FUZZ_CASES` cases (default 2,000); `make fuzz` runs
//! 1,000,000. Seeds come from the repository's own inputs (the S3 event fixtures, the bad-input
//! corpus); a failing input is shrunk and saved,
//! and replayed first on every later run (`tests/regressions/`, kept in the repository).

use proptest::prelude::*;
use proptest::test_runner::Config;
use s3_oss_sync::event::{decode_form_key, parse_message};
use s3_oss_sync::oss::xml::parse_list;
use s3_oss_sync::oss::ServiceError;
use s3_oss_sync::report::rows::{csv_row, encode_key};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..Config::default()
    }
}

/// Every input the repository keeps: the S3 event fixtures and the bad-input corpus bodies.
fn seeds() -> Vec<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let mut out = Vec::new();
    let fixtures = format!("{dir}/tests/fixtures/s3-events");
    for entry in std::fs::read_dir(&fixtures).expect("fixtures") {
        out.push(std::fs::read_to_string(entry.expect("entry").path()).expect("fixture"));
    }
    let corpus = std::fs::read_to_string(format!("{dir}/tests/bad-input/cases.jsonl"))
        .expect("bad-input corpus");
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("corpus line");
        out.push(v["body"].as_str().unwrap_or_default().to_owned());
    }
    out
}

/// A seed with bytes replaced, inserted or cut at a chosen place.
fn mutated() -> impl Strategy<Value = String> {
    let seeds = seeds();
    let n = seeds.len();
    (
        0..n,
        any::<prop::sample::Index>(),
        "[\\[\\]{}\",:0-9a-zA-Z%+\\\\ \\-\u{0}-\u{1f}é😀]{0,12}",
        0..3u8,
    )
        .prop_map(move |(which, at, junk, how)| {
            let s = &seeds[which];
            let mut i = at.index(s.len().max(1)).min(s.len());
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            match how {
                0 => format!("{}{junk}", &s[..i]),
                1 => format!("{}{junk}{}", &s[..i], &s[i..]),
                _ => {
                    let mut j = (i + junk.len()).min(s.len());
                    while !s.is_char_boundary(j) {
                        j -= 1;
                    }
                    format!("{}{junk}{}", &s[..i], &s[j..])
                }
            }
        })
}

/// A ListObjectsV2 answer around generated keys, URL-encoded as OSS sends them with
/// `encoding-type=url`.
fn list_xml(keys: &[String], truncated: bool) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>b</Name>\
         <EncodingType>url</EncodingType>",
    );
    x.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if truncated {
        x.push_str("<NextContinuationToken>tok</NextContinuationToken>");
    }
    for k in keys {
        x.push_str(&format!(
            "<Contents><Key>{}</Key><Size>1</Size><ETag>\"E\"</ETag>\
             <LastModified>2026-11-25T03:00:00.000Z</LastModified></Contents>",
            encode_key(k)
        ));
    }
    x.push_str("</ListBucketResult>");
    x
}

proptest! {
    #![proptest_config(config())]

    /// Message parsing: any body, and mutations of every kept input, give a result or an
    /// error; never a panic.
    #[test]
    fn messages(body in prop_oneof![any::<String>(), mutated()]) {
        let _ = parse_message(&body);
    }

    /// Key decoding never panics; key encoding round-trips any key.
    #[test]
    fn keys(raw in any::<String>(), key in "\\PC{0,64}|[\u{0}-\u{7f}]{0,64}") {
        let _ = decode_form_key(&raw);
        prop_assert_eq!(decode_form_key(&encode_key(&key)).unwrap(), key);
    }

    /// OSS listings: any text parses or errs; generated listings give back their keys.
    #[test]
    fn oss_listings(text in any::<String>(), keys in prop::collection::vec("\\PC{1,40}", 0..20),
                    truncated in any::<bool>()) {
        let _ = parse_list(&text);
        let page = parse_list(&list_xml(&keys, truncated)).unwrap();
        let got: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
        prop_assert_eq!(got, keys);
        prop_assert_eq!(page.next_token.is_some(), truncated);
    }

    /// OSS errors: any status, headers and body give an error with a code; never a panic.
    #[test]
    fn oss_errors(status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..300),
                  code in "[A-Za-z]{0,20}", err_header in prop::option::of(any::<String>())) {
        let xml = format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>m</Message></Error>");
        for b in [body.as_slice(), xml.as_bytes()] {
            let e = ServiceError::from_response(status, Some("rid"), err_header.as_deref(), None, b);
            prop_assert!(!e.code.is_empty());
            prop_assert_eq!(e.status, status);
        }
        let e = ServiceError::from_response(status, None, None, None, xml.as_bytes());
        if !code.is_empty() {
            prop_assert_eq!(e.code, code);
        }
    }

    /// Report CSV rows: any fields (quotes, commas, newlines, any Unicode) read back the same.
    #[test]
    fn csv_rows(fields in prop::collection::vec(any::<String>(), 1..16)) {
        let row = csv_row(&fields);
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(row.as_slice());
        let back: Vec<String> = reader
            .records()
            .next()
            .expect("one row")
            .expect("valid CSV")
            .iter()
            .map(str::to_owned)
            .collect();
        prop_assert_eq!(back, fields);
    }
}
