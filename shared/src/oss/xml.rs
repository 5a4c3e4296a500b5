//! The OSS XML documents the client reads (list, initiate, complete) and writes (complete).

use percent_encoding::percent_decode_str;
use serde::Deserialize;
use std::fmt::Write;

/// `InitiateMultipartUploadResult`.
#[derive(Debug, Deserialize)]
pub struct InitiateResult {
    /// The upload id.
    #[serde(rename = "UploadId")]
    pub upload_id: String,
}

/// `CompleteMultipartUploadResult`.
#[derive(Debug, Deserialize)]
pub struct CompleteResult {
    /// ETag of the whole object.
    #[serde(rename = "ETag", default)]
    pub etag: String,
}

/// `ListBucketResult` of ListObjectsV2, as sent (keys possibly URL-encoded).
#[derive(Debug, Deserialize)]
struct RawList {
    #[serde(rename = "IsTruncated", default)]
    is_truncated: bool,
    #[serde(rename = "NextContinuationToken", default)]
    next_token: Option<String>,
    #[serde(rename = "EncodingType", default)]
    encoding_type: Option<String>,
    #[serde(rename = "Contents", default)]
    contents: Vec<RawEntry>,
    #[serde(rename = "CommonPrefixes", default)]
    common_prefixes: Vec<RawPrefix>,
}

#[derive(Debug, Deserialize)]
struct RawEntry {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Size", default)]
    size: u64,
    #[serde(rename = "ETag", default)]
    etag: String,
    #[serde(rename = "LastModified", default)]
    last_modified: String,
    #[serde(rename = "StorageClass", default)]
    storage_class: String,
}

#[derive(Debug, Deserialize)]
struct RawPrefix {
    #[serde(rename = "Prefix")]
    prefix: String,
}

/// One object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Key, decoded.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag, quoted.
    pub etag: String,
    /// Last modified, ISO 8601.
    pub last_modified: String,
    /// Storage class.
    pub storage_class: String,
}

/// One page of ListObjectsV2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ListEntry>,
    /// Common prefixes (with a delimiter), decoded.
    pub prefixes: Vec<String>,
    /// Token for the next page, if truncated.
    pub next_token: Option<String>,
}

pub(crate) fn decode(s: String, url: bool) -> Result<String, String> {
    if !url {
        return Ok(s);
    }
    percent_decode_str(&s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|e| format!("listed key is not UTF-8 after decoding: {e}"))
}

/// Parses a ListObjectsV2 page, decoding keys if `EncodingType` is `url`.
pub fn parse_list(text: &str) -> Result<ListPage, String> {
    let raw: RawList = quick_xml::de::from_str(text).map_err(|e| e.to_string())?;
    let url = raw.encoding_type.as_deref() == Some("url");
    let objects = raw
        .contents
        .into_iter()
        .map(|e| {
            Ok(ListEntry {
                key: decode(e.key, url)?,
                size: e.size,
                etag: e.etag,
                last_modified: e.last_modified,
                storage_class: e.storage_class,
            })
        })
        .collect::<Result<_, String>>()?;
    let prefixes = raw
        .common_prefixes
        .into_iter()
        .map(|p| decode(p.prefix, url))
        .collect::<Result<_, String>>()?;
    Ok(ListPage {
        objects,
        prefixes,
        next_token: raw.next_token.filter(|t| raw.is_truncated && !t.is_empty()),
    })
}

#[derive(Debug, Deserialize)]
struct RawParts {
    #[serde(rename = "IsTruncated", default)]
    is_truncated: bool,
    #[serde(rename = "NextPartNumberMarker", default)]
    next_marker: Option<u32>,
    #[serde(rename = "Part", default)]
    parts: Vec<RawPart>,
}

#[derive(Debug, Deserialize)]
struct RawPart {
    #[serde(rename = "PartNumber")]
    number: u32,
    #[serde(rename = "ETag", default)]
    etag: String,
    #[serde(rename = "Size", default)]
    size: u64,
    #[serde(rename = "HashCrc64ecma", default)]
    crc64: Option<String>,
}

/// One page of ListParts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartsPage {
    /// Parts, in part order.
    pub parts: Vec<crate::store::upload::ListedPart>,
    /// The `part-number-marker` of the next page, if this one is truncated.
    pub next_marker: Option<u32>,
}

/// Parses a `ListPartsResult` page.
pub fn parse_parts(text: &str) -> Result<PartsPage, String> {
    let raw: RawParts = quick_xml::de::from_str(text).map_err(|e| e.to_string())?;
    let parts = raw
        .parts
        .into_iter()
        .map(|p| crate::store::upload::ListedPart {
            number: p.number,
            etag: p.etag,
            size: p.size,
            crc64: p.crc64.and_then(|c| c.trim().parse().ok()),
        })
        .collect();
    Ok(PartsPage {
        parts,
        next_marker: raw.next_marker.filter(|_| raw.is_truncated),
    })
}

/// The CompleteMultipartUpload body for parts `(number, etag)` in order.
pub fn complete_body(parts: &[(u32, String)]) -> String {
    let mut x =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload>\n");
    for (n, etag) in parts {
        let etag = quick_xml::escape::escape(etag.as_str());
        let _ = writeln!(
            x,
            "  <Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
        );
    }
    x.push_str("</CompleteMultipartUpload>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_with_url_encoding() {
        let page = parse_list(
            r#"<?xml version="1.0"?><ListBucketResult><Name>b</Name><EncodingType>url</EncodingType>
            <IsTruncated>true</IsTruncated><NextContinuationToken>T</NextContinuationToken>
            <Contents><Key>a%20b%2Fc</Key><Size>3</Size><ETag>&quot;E&quot;</ETag>
            <LastModified>2026-01-01T00:00:00.000Z</LastModified><StorageClass>IA</StorageClass></Contents>
            <CommonPrefixes><Prefix>d%2F</Prefix></CommonPrefixes></ListBucketResult>"#,
        )
        .unwrap();
        assert_eq!(page.objects[0].key, "a b/c");
        assert_eq!(page.objects[0].etag, "\"E\"");
        assert_eq!(page.prefixes, ["d/"]);
        assert_eq!(page.next_token.as_deref(), Some("T"));
    }

    #[test]
    fn list_without_encoding_and_last_page() {
        let page = parse_list(
            "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a%20b</Key></Contents></ListBucketResult>",
        )
        .unwrap();
        assert_eq!(page.objects[0].key, "a%20b");
        assert_eq!(page.next_token, None);
        assert!(parse_list("<ListBucketResult><Contents>").is_err());
    }

    #[test]
    fn parts_pages() {
        let page = parse_parts(
            r#"<ListPartsResult><UploadId>u</UploadId><NextPartNumberMarker>2</NextPartNumberMarker>
            <IsTruncated>true</IsTruncated><Part><PartNumber>1</PartNumber><ETag>&quot;A&quot;</ETag>
            <HashCrc64ecma>18446744073709551615</HashCrc64ecma><Size>5</Size></Part>
            <Part><PartNumber>2</PartNumber><ETag>"B"</ETag><Size>3</Size></Part></ListPartsResult>"#,
        )
        .unwrap();
        assert_eq!(page.next_marker, Some(2));
        assert_eq!(page.parts[0].crc64, Some(u64::MAX));
        assert_eq!((page.parts[1].size, page.parts[1].crc64), (3, None));
        let last =
            parse_parts("<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>");
        assert_eq!(last.unwrap(), PartsPage::default());
    }

    #[test]
    fn complete_body_escapes_etags() {
        let x = complete_body(&[(1, "\"A\"".into()), (2, "\"B\"".into())]);
        assert!(x.contains("<Part><PartNumber>1</PartNumber><ETag>&quot;A&quot;</ETag></Part>"));
        assert!(x.find("<PartNumber>1<").unwrap() < x.find("<PartNumber>2<").unwrap());
    }
}
