//! ListObjectsV2: prefix, delimiter, max-keys, start-after, URL encoding, and the continuation
//! tokens that resume a listing.

use super::{encode_if, parse_bounded, Ctx, Handled, Parsed, Reply};
use crate::error::{errors, OssError};
use crate::store::ObjectMeta;
use crate::xml::{self, Doc};
use base64::Engine;

impl Ctx<'_> {
    pub(super) fn list_v2(&self, p: &Parsed) -> Handled {
        let prefix = p.q("prefix").unwrap_or_default();
        let delimiter = p.q("delimiter").unwrap_or_default();
        let max: usize = parse_bounded(p.q("max-keys"), 100, 1000, "max-keys")?;
        let start_after = p.q("start-after").unwrap_or_default();
        let token = p.q("continuation-token").filter(|t| !t.is_empty());
        let resume = match token {
            Some(t) => Some(decode_token(t)?),
            None => None,
        };
        let from = match &resume {
            Some(Resume::After(k)) | Some(Resume::PastPrefix(k)) => k.as_str().max(start_after),
            None => start_after,
        }
        .max(prefix);
        let store = self.state.store();
        let mut contents: Vec<(String, ObjectMeta)> = Vec::new();
        let mut common: Vec<String> = Vec::new();
        let mut last: Option<Resume> = None;
        let mut truncated = false;
        for (key, object) in store.range(&p.bucket, from) {
            if !key.starts_with(prefix) {
                if key.as_str() > prefix {
                    break;
                }
                continue;
            }
            if key.as_str() == start_after || matches!(&resume, Some(Resume::After(k)) if k == key)
            {
                continue;
            }
            if let Some(Resume::PastPrefix(cp)) = &resume {
                if key.starts_with(cp.as_str()) {
                    continue;
                }
            }
            let group = (!delimiter.is_empty())
                .then(|| key[prefix.len()..].find(delimiter))
                .flatten()
                .map(|i| key[..prefix.len() + i + delimiter.len()].to_owned());
            if let (Some(g), Some(Resume::PastPrefix(prev))) = (&group, &last) {
                if g == prev {
                    continue;
                }
            }
            if contents.len() + common.len() == max {
                truncated = true;
                break;
            }
            match group {
                Some(g) => {
                    last = Some(Resume::PastPrefix(g.clone()));
                    common.push(g);
                }
                None => {
                    last = Some(Resume::After(key.clone()));
                    contents.push((key.clone(), object.meta.clone()));
                }
            }
        }
        drop(store);
        let url = p.url_encoding();
        let mut d = Doc::new("ListBucketResult");
        d.field("Name", &p.bucket)
            .field("Prefix", encode_if(prefix, url))
            .field("MaxKeys", max)
            .field("Delimiter", encode_if(delimiter, url));
        if !start_after.is_empty() {
            d.field("StartAfter", encode_if(start_after, url));
        }
        if let Some(t) = token {
            d.field("ContinuationToken", t);
        }
        if url {
            d.field("EncodingType", "url");
        }
        d.field("IsTruncated", truncated);
        if truncated {
            if let Some(l) = &last {
                d.field("NextContinuationToken", encode_token(l));
            }
        }
        d.field("KeyCount", contents.len() + common.len());
        for (key, meta) in &contents {
            d.group(
                "Contents",
                &[
                    ("Key", encode_if(key, url)),
                    ("LastModified", xml::iso8601(meta.last_modified)),
                    ("ETag", meta.etag.clone()),
                    ("Type", meta.object_type.as_str().to_owned()),
                    ("Size", meta.size.to_string()),
                    ("StorageClass", meta.storage_class.clone()),
                ],
            );
        }
        for cp in &common {
            d.group("CommonPrefixes", &[("Prefix", encode_if(cp, url))]);
        }
        Ok(Reply::xml(d.finish()))
    }
}

/// Where a continued listing resumes.
enum Resume {
    /// After this key.
    After(String),
    /// After every key under this common prefix.
    PastPrefix(String),
}

fn encode_token(r: &Resume) -> String {
    let raw = match r {
        Resume::After(k) => format!("k{k}"),
        Resume::PastPrefix(p) => format!("p{p}"),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_token(t: &str) -> Result<Resume, OssError> {
    let bad = || errors::invalid_argument("The continuation token provided is incorrect");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    match raw.split_at_checked(1) {
        Some(("k", k)) => Ok(Resume::After(k.to_owned())),
        Some(("p", p)) => Ok(Resume::PastPrefix(p.to_owned())),
        _ => Err(bad()),
    }
}
