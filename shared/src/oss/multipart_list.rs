//! ListMultipartUploads: one page of the multipart uploads a bucket holds open (initiated, neither
//! completed nor aborted), for the sweep that aborts stale ones ([`crate::sweep`]).
//!
//! `GET /?uploads` with `prefix`, `key-marker`, `upload-id-marker`, `max-uploads` (1 to 1000) and
//! `encoding-type=url`; OSS answers `ListMultipartUploadsResult` with an `Upload` element per
//! upload (`Key`, `UploadId`, `Initiated`), in key order and, for one key, in order of initiation.
//! With `encoding-type=url` the keys, markers and prefix come back URL-encoded and are decoded
//! here.

use super::client::{Call, OssClient};
use super::error::Error;
use super::xml::decode;
use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Most uploads one page may hold.
pub const MAX_UPLOADS_PER_PAGE: u32 = 1000;

/// One multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    /// The object key, decoded.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// When it was initiated; `None` if OSS sent a time that could not be read.
    pub initiated: Option<OffsetDateTime>,
}

/// One page of ListMultipartUploads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadsPage {
    /// Uploads, in key order, then initiation order.
    pub uploads: Vec<MultipartUpload>,
    /// Where the next page starts (key-marker, upload-id-marker), if this one is truncated.
    pub next: Option<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct RawResult {
    #[serde(rename = "EncodingType", default)]
    encoding_type: Option<String>,
    #[serde(rename = "IsTruncated", default)]
    is_truncated: bool,
    #[serde(rename = "NextKeyMarker", default)]
    next_key_marker: Option<String>,
    #[serde(rename = "NextUploadIdMarker", default)]
    next_upload_id_marker: Option<String>,
    #[serde(rename = "Upload", default)]
    uploads: Vec<RawUpload>,
}

#[derive(Debug, Deserialize)]
struct RawUpload {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "UploadId")]
    upload_id: String,
    #[serde(rename = "Initiated", default)]
    initiated: String,
}

/// Parses a `ListMultipartUploadsResult`, decoding keys and markers if `EncodingType` is `url`.
/// A truncated page without a next key marker is an error: following it would loop.
pub fn parse_uploads(text: &str) -> Result<UploadsPage, String> {
    let raw: RawResult = quick_xml::de::from_str(text).map_err(|e| e.to_string())?;
    let url = raw.encoding_type.as_deref() == Some("url");
    let uploads = raw
        .uploads
        .into_iter()
        .map(|u| {
            Ok(MultipartUpload {
                key: decode(u.key, url)?,
                upload_id: u.upload_id,
                initiated: OffsetDateTime::parse(u.initiated.trim(), &Rfc3339).ok(),
            })
        })
        .collect::<Result<_, String>>()?;
    let next = if raw.is_truncated {
        let key = raw
            .next_key_marker
            .filter(|k| !k.is_empty())
            .ok_or("a truncated page has no NextKeyMarker")?;
        Some((
            decode(key, url)?,
            raw.next_upload_id_marker.unwrap_or_default(),
        ))
    } else {
        None
    };
    Ok(UploadsPage { uploads, next })
}

impl OssClient {
    /// One page of ListMultipartUploads: the uploads in progress under `prefix`, after
    /// `marker` (key-marker and upload-id-marker, from the previous page's `next`), at most
    /// `max_uploads` (1 to 1000).
    pub async fn list_multipart_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        marker: Option<(&str, &str)>,
        max_uploads: u32,
    ) -> Result<UploadsPage, Error> {
        if !(1..=MAX_UPLOADS_PER_PAGE).contains(&max_uploads) {
            return Err(Error::Config(format!(
                "max-uploads is 1 to {MAX_UPLOADS_PER_PAGE}, not {max_uploads}"
            )));
        }
        let mut call = Call::new("ListMultipartUploads", Method::GET, bucket, None)
            .query("uploads", "")
            .query("encoding-type", "url")
            .query("max-uploads", max_uploads.to_string());
        if !prefix.is_empty() {
            call = call.query("prefix", prefix);
        }
        if let Some((key, upload_id)) = marker {
            call = call.query("key-marker", key);
            if !upload_id.is_empty() {
                call = call.query("upload-id-marker", upload_id);
            }
        }
        let answer = self.exchange_retried(&call, Bytes::new()).await.result?;
        parse_uploads(&String::from_utf8_lossy(&answer.body)).map_err(|detail| Error::Protocol {
            op: "ListMultipartUploads",
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_page_with_url_encoding() {
        let page = parse_uploads(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <ListMultipartUploadsResult>
              <Bucket>b</Bucket><EncodingType>url</EncodingType>
              <KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
              <NextKeyMarker>a%20b%2Fc</NextKeyMarker><NextUploadIdMarker>U2</NextUploadIdMarker>
              <Delimiter></Delimiter><Prefix>a%20</Prefix><MaxUploads>2</MaxUploads>
              <IsTruncated>true</IsTruncated>
              <Upload><Key>a%20a</Key><UploadId>U1</UploadId>
                <Initiated>2026-11-01T10:20:30.000Z</Initiated></Upload>
              <Upload><Key>a%20b%2Fc</Key><UploadId>U2</UploadId>
                <Initiated>2026-11-02T00:00:00.000Z</Initiated></Upload>
            </ListMultipartUploadsResult>"#,
        )
        .unwrap();
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[1].key, "a b/c");
        assert_eq!(page.uploads[0].upload_id, "U1");
        assert_eq!(
            page.uploads[0].initiated,
            Some(time::macros::datetime!(2026-11-01 10:20:30 UTC))
        );
        assert_eq!(page.next, Some(("a b/c".into(), "U2".into())));
    }

    #[test]
    fn last_page_unencoded_and_unreadable_times() {
        let page = parse_uploads(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>\
             <Upload><Key>a%20b</Key><UploadId>U</UploadId><Initiated>yesterday</Initiated></Upload>\
             </ListMultipartUploadsResult>",
        )
        .unwrap();
        assert_eq!(page.uploads[0].key, "a%20b");
        assert_eq!(page.uploads[0].initiated, None);
        assert_eq!(page.next, None);
        let empty = parse_uploads(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert!(empty.uploads.is_empty());
    }

    #[test]
    fn malformed_pages_are_errors() {
        assert!(parse_uploads("<ListMultipartUploadsResult><Upload>").is_err());
        assert!(parse_uploads(
            "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated></ListMultipartUploadsResult>"
        )
        .is_err());
    }
}
