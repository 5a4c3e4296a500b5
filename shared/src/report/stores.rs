//! The report's real stores: the results store read from S3, reports written to the OSS
//! destination bucket (and optionally copied to S3).

use super::lease::{Condition, LeaseStore, LeaseWrite};
use super::ports::{Listing, RecordSource, ReportError, ReportStore};
use crate::aws::error::is_transient;
use crate::aws::s3_results::S3ResultsStore;
use crate::oss::destination::OssDestination;
use crate::store::destination::DestinationStore;
use crate::store::object::ObjectMetadata;
use crate::store::upload::{BytesSource, UploadRequest};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use bytes::Bytes;
use md5::{Digest, Md5};
use std::future::Future;

/// Keys and common prefixes (with the delimiter `/`, when `delimiter`) under a prefix, every
/// page: how both real stores list, and so how they are a [`Listing`].
pub trait ListsAll: Send + Sync {
    /// `(keys, common prefixes)` under `prefix`.
    fn list_all(
        &self,
        prefix: &str,
        delimiter: bool,
    ) -> impl Future<Output = KeysAndPrefixes> + Send;
}

/// What [`ListsAll::list_all`] answers: the keys and the common prefixes.
pub type KeysAndPrefixes = Result<(Vec<String>, Vec<String>), ReportError>;

impl<T: ListsAll> Listing for T {
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        Ok(self.list_all(prefix, false).await?.0)
    }

    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        Ok(self.list_all(prefix, true).await?.1)
    }
}

/// The results store, read back: the same [`S3ResultsStore`] the sync function writes to.
impl ListsAll for S3ResultsStore {
    async fn list_all(&self, prefix: &str, delimiter: bool) -> KeysAndPrefixes {
        let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
        let mut pages = self
            .client()
            .list_objects_v2()
            .bucket(self.bucket())
            .prefix(prefix)
            .set_delimiter(delimiter.then(|| "/".to_owned()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                let transient = is_transient(&e);
                ReportError::results(format!("ListObjectsV2 {prefix}"), e, transient)
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
        }
        Ok((keys, prefixes))
    }
}

/// GetObject of `key` in the results bucket.
async fn get_object(
    store: &S3ResultsStore,
    key: &str,
) -> Result<GetObjectOutput, SdkError<GetObjectError, HttpResponse>> {
    let get = store.client().get_object().bucket(store.bucket()).key(key);
    get.send().await
}

impl RecordSource for S3ResultsStore {
    async fn get(&self, key: &str) -> Result<Bytes, ReportError> {
        let what = || format!("GetObject {key}");
        let out = get_object(self, key).await.map_err(|e| {
            let transient = is_transient(&e);
            ReportError::results(what(), e, transient)
        })?;
        Ok(out
            .body
            .collect()
            .await
            .map_err(|e| ReportError::results(what(), e, true))?
            .into_bytes())
    }
}

/// The report lease is kept in the results bucket, written with S3's conditional writes.
impl LeaseStore for S3ResultsStore {
    async fn read_lease(&self, key: &str) -> Result<Option<(Bytes, String)>, ReportError> {
        let what = || format!("GetObject {key} (the report lease)");
        let out = match get_object(self, key).await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                let transient = is_transient(&e);
                return Err(ReportError::results(what(), e, transient));
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_owned();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| ReportError::results(what(), e, true))?;
        Ok(Some((body.into_bytes(), etag)))
    }

    async fn put_lease(&self, key: &str, body: Bytes, condition: &Condition) -> LeaseWrite {
        let put = self
            .client()
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type("application/json")
            .body(body.into());
        let put = match condition {
            Condition::Absent => put.if_none_match("*"),
            Condition::Unchanged(etag) => put.if_match(etag),
        };
        match put.send().await {
            Ok(out) => Ok(Some(out.e_tag().unwrap_or_default().to_owned())),
            // 412: the condition failed (another run wrote or holds it); 404: the object read
            // has since been deleted; 409: another conditional write at the same moment won.
            // Each means another run got there first: the caller reads the lease again.
            Err(e)
                if e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 404 | 409 | 412)) =>
            {
                Ok(None)
            }
            Err(e) => {
                let transient = is_transient(&e);
                let what = format!("PutObject {key} (the report lease)");
                Err(ReportError::results(what, e, transient))
            }
        }
    }

    async fn delete_lease(&self, key: &str) -> Result<(), ReportError> {
        self.client()
            .delete_object()
            .bucket(self.bucket())
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let transient = is_transient(&e);
                let what = format!("DeleteObject {key} (the report lease)");
                ReportError::results(what, e, transient)
            })
    }
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".csv") {
        "text/csv; charset=utf-8"
    } else if key.ends_with(".json") {
        "application/json"
    } else if key.ends_with(".html") {
        // So a browser shows the page rather than its source.
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// Reports go to the same [`OssDestination`] the sync function copies into.
impl ListsAll for OssDestination {
    async fn list_all(&self, prefix: &str, delimiter: bool) -> KeysAndPrefixes {
        let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client()
                .list_objects_v2(
                    self.bucket(),
                    prefix,
                    delimiter.then_some("/"),
                    token.as_deref(),
                    1000,
                )
                .await
                .map_err(|e| ReportError::Destination(Box::new(e)))?;
            keys.extend(page.objects.into_iter().map(|o| o.key));
            prefixes.extend(page.prefixes);
            match page.next_token {
                Some(t) => token = Some(t),
                None => return Ok((keys, prefixes)),
            }
        }
    }
}

/// Reports read back (`ctl retry-failed` reads a day's failed list from them).
impl RecordSource for OssDestination {
    async fn get(&self, key: &str) -> Result<Bytes, ReportError> {
        use futures_util::TryStreamExt;
        let what = || format!("GetObject {key}");
        let (_, stream) = self
            .client()
            .get_object(self.bucket(), key, None)
            .await
            .map_err(|e| {
                let transient = e.is_transient();
                ReportError::destination(what(), e, transient)
            })?;
        let parts: Vec<Bytes> = stream
            .try_collect()
            .await
            .map_err(|e| ReportError::destination(what(), e, true))?;
        Ok(parts.concat().into())
    }
}

impl ReportStore for OssDestination {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), ReportError> {
        let metadata = ObjectMetadata {
            content_type: Some(content_type(key).to_owned()),
            ..ObjectMetadata::default()
        };
        let req = UploadRequest {
            bucket: self.bucket(),
            key,
            size: body.len() as u64,
            metadata: &metadata,
            content_md5: Some(Md5::digest(&body).into()),
        };
        DestinationStore::upload(self, &req, &BytesSource(body))
            .await
            .map(|_| ())
            .map_err(|e| ReportError::Destination(Box::new(e)))
    }

    async fn exists(&self, key: &str) -> Result<bool, ReportError> {
        DestinationStore::head(self, key)
            .await
            .map(|h| h.is_some())
            .map_err(|e| ReportError::Destination(Box::new(e)))
    }

    async fn delete(&self, key: &str) -> Result<(), ReportError> {
        DestinationStore::delete(self, key)
            .await
            .map_err(|e| ReportError::Destination(Box::new(e)))
    }
}

/// Writes every report file to two stores: the primary (OSS), whose contents decide what is
/// complete, and a copy (an S3 bucket).
#[derive(Debug, Clone)]
pub struct WithCopy<P> {
    /// The primary store.
    pub primary: P,
    /// The S3 copy.
    pub copy: aws_sdk_s3::Client,
    /// The copy's bucket.
    pub copy_bucket: String,
}

impl<P: ReportStore> Listing for WithCopy<P> {
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        self.primary.list_keys(prefix).await
    }
    async fn list_prefixes(&self, prefix: &str) -> Result<Vec<String>, ReportError> {
        self.primary.list_prefixes(prefix).await
    }
}

/// Reads come from the primary.
impl<P: ReportStore> RecordSource for WithCopy<P> {
    async fn get(&self, key: &str) -> Result<Bytes, ReportError> {
        self.primary.get(key).await
    }
}

/// A failed write to the S3 copy of `key`, transient as the SDK's error says.
fn copy_failed<E>(key: &str, e: SdkError<E, HttpResponse>) -> ReportError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = is_transient(&e);
    ReportError::destination(format!("S3 copy {key}"), e, transient)
}

impl<P: ReportStore> ReportStore for WithCopy<P> {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), ReportError> {
        // The copy first, so the primary's manifest is never ahead of it.
        self.copy
            .put_object()
            .bucket(&self.copy_bucket)
            .key(key)
            .content_type(content_type(key))
            .body(body.clone().into())
            .send()
            .await
            .map_err(|e| copy_failed(key, e))?;
        self.primary.put(key, body).await
    }
    async fn exists(&self, key: &str) -> Result<bool, ReportError> {
        self.primary.exists(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), ReportError> {
        self.copy
            .delete_object()
            .bucket(&self.copy_bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| copy_failed(key, e))?;
        self.primary.delete(key).await
    }
}

#[cfg(test)]
mod tests {
    use super::content_type;

    #[test]
    fn report_files_carry_their_content_type() {
        let types = [
            "a/part-00001.csv",
            "summary.json",
            "report.html",
            "manifest.checksum",
        ]
        .map(content_type);
        assert_eq!(
            types,
            [
                "text/csv; charset=utf-8",
                "application/json",
                "text/html; charset=utf-8",
                "text/plain; charset=utf-8"
            ]
        );
    }
}
