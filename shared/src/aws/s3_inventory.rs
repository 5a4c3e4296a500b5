//! Backfill from an S3 Inventory report instead of listing the bucket: for buckets with many
//! millions of objects, reading the daily inventory is cheaper and faster than ListObjectsV2.
//! Only CSV inventories are read; each data file is checked against the manifest's MD5 before use.

use crate::store::error::StoreError;
use crate::store::listing::{Listed, ObjectLister, Page, Position};
use bytes::Bytes;
use md5::{Digest, Md5};
use serde::Deserialize;
use std::io::Read;
use time::OffsetDateTime;

/// Rows per page handed to the backfill.
const PAGE_ROWS: usize = 1000;

/// An inventory `manifest.json`: the fields backfill reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The bucket the inventory lists.
    pub source_bucket: String,
    /// The bucket holding the data files, as an ARN.
    pub destination_bucket: String,
    /// `CSV`, `ORC` or `Parquet`.
    pub file_format: String,
    /// The columns, comma-separated.
    pub file_schema: String,
    /// The data files.
    pub files: Vec<ManifestFile>,
}

/// One data file of an inventory.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestFile {
    /// Its key in the destination bucket.
    pub key: String,
    /// Its MD5, hex.
    #[serde(rename = "MD5checksum")]
    pub md5: String,
}

/// Where each needed column is in a row.
#[derive(Debug, Clone, Copy)]
struct Columns {
    bucket: Option<usize>,
    key: usize,
    size: Option<usize>,
    last_modified: Option<usize>,
    etag: Option<usize>,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
}

impl Manifest {
    /// Parses and checks a manifest for `source_bucket`.
    pub fn parse(body: &[u8], source_bucket: &str) -> Result<Self, StoreError> {
        let m: Manifest = serde_json::from_slice(body)
            .map_err(|e| StoreError::Input(format!("inventory manifest.json: {e}")))?;
        if m.source_bucket != source_bucket {
            return Err(StoreError::Input(format!(
                "the inventory lists bucket {:?}, not the task's source bucket {source_bucket:?}",
                m.source_bucket
            )));
        }
        if !m.file_format.eq_ignore_ascii_case("CSV") {
            return Err(StoreError::Input(format!(
                "the inventory is {}; backfill reads CSV inventories only",
                m.file_format
            )));
        }
        m.columns()?;
        m.files_bucket()?;
        Ok(m)
    }

    fn columns(&self) -> Result<Columns, StoreError> {
        let names: Vec<&str> = self.file_schema.split(',').map(str::trim).collect();
        let at = |n: &str| names.iter().position(|c| c.eq_ignore_ascii_case(n));
        Ok(Columns {
            bucket: at("Bucket"),
            key: at("Key").ok_or_else(|| {
                StoreError::Input(format!(
                    "the inventory's fileSchema {:?} has no Key column",
                    self.file_schema
                ))
            })?,
            size: at("Size"),
            last_modified: at("LastModifiedDate"),
            etag: at("ETag"),
            is_latest: at("IsLatest"),
            is_delete_marker: at("IsDeleteMarker"),
        })
    }

    /// The bucket the data files are in.
    pub fn files_bucket(&self) -> Result<String, StoreError> {
        let b = self
            .destination_bucket
            .strip_prefix("arn:aws:s3:::")
            .or_else(|| self.destination_bucket.strip_prefix("arn:aws-cn:s3:::"))
            .unwrap_or(&self.destination_bucket);
        if b.is_empty() || b.contains('/') {
            return Err(StoreError::Input(format!(
                "the inventory's destinationBucket {:?} is not a bucket ARN",
                self.destination_bucket
            )));
        }
        Ok(b.to_owned())
    }
}

/// `s3://bucket/key` split in two.
pub fn parse_s3_url(url: &str) -> Result<(String, String), StoreError> {
    url.strip_prefix("s3://")
        .and_then(|r| r.split_once('/'))
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .map(|(b, k)| (b.to_owned(), k.to_owned()))
        .ok_or_else(|| {
            StoreError::Input(format!(
                "{url:?} is not s3://bucket/key of an inventory manifest.json"
            ))
        })
}

/// Which rows of an inventory are events, and what they say.
fn row_to_listed(
    row: &csv::StringRecord,
    cols: Columns,
    source_bucket: &str,
    prefix: &str,
    position: Position,
) -> Result<Option<Listed>, StoreError> {
    let get = |i: Option<usize>| i.and_then(|i| row.get(i)).unwrap_or_default();
    if cols.bucket.is_some() && get(cols.bucket) != source_bucket {
        return Ok(None);
    }
    if get(cols.is_latest).eq_ignore_ascii_case("false")
        || get(cols.is_delete_marker).eq_ignore_ascii_case("true")
    {
        return Ok(None);
    }
    let raw = get(Some(cols.key));
    let key = crate::event::decode_form_key(raw)
        .map_err(|e| StoreError::Input(format!("an inventory row's key {raw:?}: {e}")))?;
    if !key.starts_with(prefix) || key.is_empty() {
        return Ok(None);
    }
    let size = get(cols.size);
    let modified = get(cols.last_modified);
    Ok(Some(Listed {
        key,
        size: size.parse().ok(),
        etag: Some(get(cols.etag).trim_matches('"').to_owned()).filter(|e| !e.is_empty()),
        last_modified: OffsetDateTime::parse(
            modified,
            &time::format_description::well_known::Rfc3339,
        )
        .ok(),
        position,
        removed: false,
    }))
}

/// Reads the gzipped CSV data files an inventory manifest names, from a position.
pub struct InventoryLister {
    client: aws_sdk_s3::Client,
    manifest: Manifest,
    files_bucket: String,
    cols: Columns,
    source_bucket: String,
    prefix: String,
    file: usize,
    skip: u64,
    reader: Option<(csv::Reader<Box<dyn Read + Send>>, u64)>,
}

impl InventoryLister {
    /// Reads the manifest at `s3://bucket/key` and starts at `position`.
    pub async fn open(
        client: aws_sdk_s3::Client,
        manifest_url: &str,
        source_bucket: &str,
        prefix: &str,
        position: &Position,
    ) -> Result<Self, StoreError> {
        let (file, skip) =
            match position {
                Position::Start => (0, 0),
                Position::Inventory { file, rows } => (*file, *rows),
                Position::AfterKey { .. } => return Err(StoreError::Input(
                    "the checkpoint is a listing backfill's; run without --inventory or --restart"
                        .into(),
                )),
            };
        let (bucket, key) = parse_s3_url(manifest_url)?;
        let body = get_object(&client, &bucket, &key).await?;
        let manifest = Manifest::parse(&body, source_bucket)?;
        Ok(Self {
            files_bucket: manifest.files_bucket()?,
            cols: manifest.columns()?,
            manifest,
            client,
            source_bucket: source_bucket.to_owned(),
            prefix: prefix.to_owned(),
            file,
            skip,
            reader: None,
        })
    }

    /// Opens the current data file: streamed to a temporary file while its MD5 is computed, checked
    /// against the manifest, then read through gunzip. Data files can be large; none is held in
    /// memory.
    async fn open_file(&mut self) -> Result<(), StoreError> {
        let f = &self.manifest.files[self.file];
        let file = download_checked(&self.client, &self.files_bucket, &f.key, &f.md5).await?;
        let file = std::io::BufReader::new(file);
        let input: Box<dyn Read + Send> = if f.key.ends_with(".gz") {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        self.reader = Some((reader, 0));
        Ok(())
    }
}

/// An S3 object streamed into an unnamed temporary file, its MD5 checked against `md5` (hex);
/// the file is returned rewound.
async fn download_checked(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    md5: &str,
) -> Result<std::fs::File, StoreError> {
    use std::io::{Seek, Write};
    let spool_failed = |e: std::io::Error| StoreError::Input(format!("inventory file {key}: {e}"));
    let mut body = open_body(client, bucket, key).await?;
    let mut file = tempfile::tempfile().map_err(spool_failed)?;
    let mut hash = Md5::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| body_failed(bucket, key, e))?;
        hash.update(&chunk);
        file.write_all(&chunk).map_err(spool_failed)?;
    }
    let got = hex::encode(hash.finalize());
    if !got.eq_ignore_ascii_case(md5) {
        return Err(StoreError::Input(format!(
            "inventory file {key} has MD5 {got}, the manifest says {md5}"
        )));
    }
    file.rewind().map_err(spool_failed)?;
    Ok(file)
}

/// GetObject's body, not yet read.
async fn open_body(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<aws_sdk_s3::primitives::ByteStream, StoreError> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| crate::aws::error::call_error("S3", "GetObject", e))?;
    Ok(out.body)
}

/// A body cut off while read: trying again may help.
fn body_failed(
    bucket: &str,
    key: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    let cause = crate::errors::Context::new(format!("s3://{bucket}/{key}"), e).transient(true);
    StoreError::call("S3", "GetObject", cause, true)
}

/// A small object (the manifest) whole.
async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Bytes, StoreError> {
    Ok(open_body(client, bucket, key)
        .await?
        .collect()
        .await
        .map_err(|e| body_failed(bucket, key, e))?
        .into_bytes())
}

impl ObjectLister for InventoryLister {
    async fn next_page(&mut self) -> Result<Option<Page>, StoreError> {
        if self.file >= self.manifest.files.len() {
            return Ok(None);
        }
        if self.reader.is_none() {
            self.open_file().await?;
        }
        let (file, cols) = (self.file, self.cols);
        let (reader, read) = self.reader.as_mut().expect("opened above");
        let mut page = Page::default();
        let mut record = csv::StringRecord::new();
        let mut rows = 0;
        while rows < PAGE_ROWS {
            let more = reader.read_record(&mut record).map_err(|e| {
                StoreError::Input(format!(
                    "inventory file {}: {e}",
                    self.manifest.files[file].key
                ))
            })?;
            if !more {
                // The end of this file: the next page starts the next one.
                self.reader = None;
                self.file += 1;
                self.skip = 0;
                page.end = Some(Position::Inventory {
                    file: self.file,
                    rows: 0,
                });
                break;
            }
            *read += 1;
            if *read <= self.skip {
                continue;
            }
            rows += 1;
            let position = Position::Inventory { file, rows: *read };
            match row_to_listed(&record, cols, &self.source_bucket, &self.prefix, position)? {
                Some(l) => page.objects.push(l),
                None => page.not_current += 1,
            }
        }
        if page.end.is_none() {
            // Past every row read, rows left out included.
            page.end = Some(Position::Inventory {
                file,
                rows: self.reader.as_ref().map_or(0, |r| r.1),
            });
        }
        Ok(Some(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"{
      "sourceBucket": "src",
      "destinationBucket": "arn:aws:s3:::inv",
      "version": "2016-11-30",
      "creationTimestamp": "1514944800000",
      "fileFormat": "CSV",
      "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
      "files": [{"key": "inv/src/data/a.csv.gz", "size": 10, "MD5checksum": "00"}]
    }"#;

    #[test]
    fn manifest_checks() {
        let m = Manifest::parse(MANIFEST.as_bytes(), "src").unwrap();
        assert_eq!(m.files_bucket().unwrap(), "inv");
        assert_eq!(m.files.len(), 1);
        let e = Manifest::parse(MANIFEST.as_bytes(), "other").unwrap_err();
        assert!(
            e.to_string().contains("not the task's source bucket"),
            "{e}"
        );
        let orc = MANIFEST.replace("\"CSV\"", "\"ORC\"");
        let e = Manifest::parse(orc.as_bytes(), "src").unwrap_err();
        assert!(e.to_string().contains("CSV inventories only"), "{e}");
        let nokey = MANIFEST.replace(" Key,", "");
        let e = Manifest::parse(nokey.as_bytes(), "src").unwrap_err();
        assert!(e.to_string().contains("no Key column"), "{e}");
        let e = Manifest::parse(b"{", "src").unwrap_err();
        assert!(e.to_string().contains("manifest.json"), "{e}");
    }

    #[test]
    fn rows_decode_keys_and_leave_out_old_versions_and_other_prefixes() {
        let m = Manifest::parse(MANIFEST.as_bytes(), "src").unwrap();
        let cols = m.columns().unwrap();
        let row = |fields: &[&str]| csv::StringRecord::from(fields.to_vec());
        let pos = Position::Inventory { file: 0, rows: 1 };
        let l = row_to_listed(
            &row(&[
                "src",
                "logs/a+b%2Bc.txt",
                "v1",
                "true",
                "false",
                "12",
                "2026-11-01T10:00:00.000Z",
                "abc",
            ]),
            cols,
            "src",
            "logs/",
            pos.clone(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(l.key, "logs/a b+c.txt");
        assert_eq!((l.size, l.etag.as_deref()), (Some(12), Some("abc")));
        assert_eq!(l.last_modified.unwrap().unix_timestamp(), 1_793_527_200);
        for r in [
            ["src", "logs/a", "v0", "false", "false", "1", "", ""],
            ["src", "logs/a", "v2", "true", "true", "0", "", ""],
            ["src", "other/a", "v1", "true", "false", "1", "", ""],
            ["xxx", "logs/a", "v1", "true", "false", "1", "", ""],
        ] {
            assert!(row_to_listed(&row(&r), cols, "src", "logs/", pos.clone())
                .unwrap()
                .is_none());
        }
        let bad = row(&["src", "logs/%zz", "", "true", "false", "1", "", ""]);
        assert!(row_to_listed(&bad, cols, "src", "logs/", pos).is_err());
    }

    #[test]
    fn s3_urls() {
        assert_eq!(
            parse_s3_url("s3://b/k/manifest.json").unwrap(),
            ("b".into(), "k/manifest.json".into())
        );
        for bad in ["b/k", "s3://b", "s3:///k", "s3://b/"] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }
}
