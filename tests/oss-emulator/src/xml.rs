//! The XML documents of the OSS API that the emulator writes and reads.

use crate::error::escape;
use serde::Deserialize;
use std::fmt::Write;
use std::time::SystemTime;
use time::{macros::format_description, OffsetDateTime};

const XML_HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// ISO 8601 with milliseconds, as OSS writes times in XML (`2012-02-23T07:01:34.000Z`).
pub fn iso8601(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default()
}

/// A document under construction: `<Root>` ... `</Root>` with escaped text elements.
pub struct Doc {
    out: String,
    root: &'static str,
}

impl Doc {
    /// Opens the root element.
    pub fn new(root: &'static str) -> Self {
        Self {
            out: format!("{XML_HEAD}<{root}>\n"),
            root,
        }
    }

    /// Adds `<name>text</name>`.
    pub fn field(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        let text = escape(&value.to_string());
        let _ = writeln!(self.out, "  <{name}>{text}</{name}>");
        self
    }

    /// Adds `<name>` with the given fields inside.
    pub fn group(&mut self, name: &str, fields: &[(&str, String)]) -> &mut Self {
        let _ = writeln!(self.out, "  <{name}>");
        for (n, v) in fields {
            let _ = writeln!(self.out, "    <{n}>{}</{n}>", escape(v));
        }
        let _ = writeln!(self.out, "  </{name}>");
        self
    }

    /// Closes the root and returns the text.
    pub fn finish(mut self) -> String {
        let _ = writeln!(self.out, "</{}>", self.root);
        self.out
    }
}

/// The body of CompleteMultipartUpload.
#[derive(Debug, Deserialize)]
pub struct CompleteMultipartUpload {
    /// The parts to join, as the client lists them.
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletePart>,
}

/// One part named in CompleteMultipartUpload.
#[derive(Debug, Deserialize)]
pub struct CompletePart {
    /// Part number.
    #[serde(rename = "PartNumber")]
    pub number: u32,
    /// The ETag UploadPart returned.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// Parses a CompleteMultipartUpload body.
pub fn parse_complete(body: &[u8]) -> Result<CompleteMultipartUpload, String> {
    let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
    quick_xml::de::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_complete_body() {
        let body = br#"<?xml version="1.0"?><CompleteMultipartUpload>
            <Part><PartNumber>1</PartNumber><ETag>"AB"</ETag></Part>
            <Part><ETag>"CD"</ETag><PartNumber>2</PartNumber></Part>
        </CompleteMultipartUpload>"#;
        let c = parse_complete(body).unwrap();
        assert_eq!(c.parts.len(), 2);
        assert_eq!((c.parts[1].number, c.parts[1].etag.as_str()), (2, "\"CD\""));
        assert!(parse_complete(b"<CompleteMultipartUpload><Part><PartNumber>x").is_err());
    }

    #[test]
    fn doc_escapes() {
        let mut d = Doc::new("R");
        d.field("Key", "a&b");
        d.group("G", &[("P", "<x>".into())]);
        let s = d.finish();
        assert!(s.contains("<Key>a&amp;b</Key>"));
        assert!(s.contains("<P>&lt;x&gt;</P>"));
        assert!(s.ends_with("</R>\n"));
    }

    #[test]
    fn iso8601_has_millis() {
        assert_eq!(iso8601(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
