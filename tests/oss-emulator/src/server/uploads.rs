//! ListMultipartUploads: the uploads in progress in a bucket, paged by key and upload id, rolled
//! up by a delimiter. (The admin endpoint that ages uploads is in `admin`.)

use super::{encode_if, parse_bounded, Ctx, Handled, Parsed, Reply};
use crate::error::errors;
use crate::store::UploadEntry;
use crate::xml::{self, Doc};

impl Ctx<'_> {
    /// ListMultipartUploads: uploads in progress under `prefix`, by key then upload id, after
    /// `key-marker` (and, for that key, after `upload-id-marker`); with a delimiter, keys that
    /// contain it after the prefix are rolled up into `CommonPrefixes`.
    pub(super) fn list_uploads(&self, p: &Parsed) -> Handled {
        let prefix = p.q("prefix").unwrap_or_default();
        let delimiter = p.q("delimiter").unwrap_or_default();
        let key_marker = p.q("key-marker").unwrap_or_default();
        // As in S3: the upload-id marker means nothing without a key marker.
        let id_marker = p.q("upload-id-marker").filter(|_| !key_marker.is_empty());
        let max: usize = parse_bounded(p.q("max-uploads"), 1000, 1000, "max-uploads")?;
        if max == 0 {
            return Err(errors::invalid_argument("Argument max-uploads is invalid: 0").into());
        }
        let all = self.state.store().uploads_in(&p.bucket, prefix);
        let after = |u: &&UploadEntry| match id_marker {
            Some(id) if u.key == key_marker => u.upload_id.as_str() > id,
            _ => u.key.as_str() > key_marker,
        };
        let (mut uploads, mut common): (Vec<&UploadEntry>, Vec<String>) = (Vec::new(), Vec::new());
        let mut next: Option<(String, String)> = None;
        let mut truncated = false;
        for u in all.iter().filter(after) {
            let group = (!delimiter.is_empty())
                .then(|| u.key[prefix.len()..].find(delimiter))
                .flatten()
                .map(|i| u.key[..prefix.len() + i + delimiter.len()].to_owned());
            if let Some(g) = &group {
                if common.last() == Some(g) || g == key_marker {
                    continue;
                }
            }
            if uploads.len() + common.len() == max {
                truncated = true;
                break;
            }
            match group {
                Some(g) => {
                    next = Some((g.clone(), String::new()));
                    common.push(g);
                }
                None => {
                    next = Some((u.key.clone(), u.upload_id.clone()));
                    uploads.push(u);
                }
            }
        }
        let url = p.url_encoding();
        let (next_key, next_id) = next.unwrap_or_default();
        let mut d = Doc::new("ListMultipartUploadsResult");
        d.field("Bucket", &p.bucket)
            .field("KeyMarker", encode_if(key_marker, url))
            .field("UploadIdMarker", id_marker.unwrap_or_default())
            .field("NextKeyMarker", encode_if(&next_key, url))
            .field("NextUploadIdMarker", next_id)
            .field("Delimiter", encode_if(delimiter, url))
            .field("Prefix", encode_if(prefix, url))
            .field("MaxUploads", max)
            .field("IsTruncated", truncated);
        if url {
            d.field("EncodingType", "url");
        }
        for u in &uploads {
            d.group(
                "Upload",
                &[
                    ("Key", encode_if(&u.key, url)),
                    ("UploadId", u.upload_id.clone()),
                    ("StorageClass", "Standard".to_owned()),
                    ("Initiated", xml::iso8601(u.initiated)),
                ],
            );
        }
        for cp in &common {
            d.group("CommonPrefixes", &[("Prefix", encode_if(cp, url))]);
        }
        Ok(Reply::xml(d.finish()))
    }
}
