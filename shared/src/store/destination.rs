//! The destination port: what the sync core needs from the destination bucket, as a small trait
//! so the core can be tested against an in-memory store and run against OSS
//! ([`crate::oss::destination::OssDestination`]).

use super::object::{ObjectHead, ObjectMetadata};
use super::upload::{
    AbandonedUploads, BodySource, ListedPart, PartPlan, PartUpload, UploadCompletion,
    UploadOutcome, UploadRequest,
};
use crate::oss::error::Error;
use bytes::Bytes;
use std::future::Future;

fn no_parts() -> Error {
    Error::Config("this destination store does not take multipart uploads".into())
}

/// One bucket of the destination, as the sync core sees it.
pub trait DestinationStore: Send + Sync {
    /// The object's head, or `None` if it does not exist.
    fn head(&self, key: &str) -> impl Future<Output = Result<Option<ObjectHead>, Error>> + Send;

    /// Writes an object of known size from a source, checking every byte arrived.
    fn upload(
        &self,
        req: &UploadRequest<'_>,
        source: &dyn BodySource,
    ) -> impl Future<Output = Result<UploadOutcome, Error>> + Send;

    /// Deletes an object; succeeds when it is already absent.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// The bucket written to.
    fn bucket(&self) -> &str;

    /// Aborts the uploads left open by jobs dropped mid-upload (at a deadline, or by an earlier
    /// invocation's kill, when the store outlives it) and by aborts that failed. Stores without
    /// multipart uploads have nothing to do.
    fn abort_abandoned_uploads(&self) -> impl Future<Output = AbandonedUploads> + Send {
        async { AbandonedUploads::default() }
    }

    /// How large objects are copied in parts, resumably ([`crate::sync::resume`]); `None` (the
    /// default) copies every object in one go with [`Self::upload`].
    fn part_plan(&self) -> Option<PartPlan> {
        None
    }

    /// Starts a multipart upload with the object's metadata; returns its id.
    fn initiate(
        &self,
        _key: &str,
        _metadata: &ObjectMetadata,
    ) -> impl Future<Output = Result<String, Error>> + Send {
        async { Err(no_parts()) }
    }

    /// Uploads one part; the CRC-64 the store reports for it must be `crc`. Returns its ETag.
    /// Stores implement [`Self::put_part`], which this calls.
    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
        crc: u64,
    ) -> impl Future<Output = Result<String, Error>> + Send {
        async move {
            let part = PartUpload {
                key,
                upload_id,
                number,
                data,
                crc,
            };
            self.put_part(part).await
        }
    }

    /// [`Self::upload_part`] with its arguments in one [`PartUpload`]: what a store with
    /// multipart uploads implements.
    fn put_part(
        &self,
        _part: PartUpload<'_>,
    ) -> impl Future<Output = Result<String, Error>> + Send {
        async { Err(no_parts()) }
    }

    /// Every part of an open upload, or `None` when the upload no longer exists.
    fn list_parts(
        &self,
        _key: &str,
        _upload_id: &str,
    ) -> impl Future<Output = Result<Option<Vec<ListedPart>>, Error>> + Send {
        async { Err(no_parts()) }
    }

    /// Completes an upload from `(number, etag)` parts; the object's CRC-64 must be `crc`.
    /// Stores implement [`Self::complete_upload`], which this calls.
    fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
        crc: u64,
    ) -> impl Future<Output = Result<UploadOutcome, Error>> + Send {
        async move {
            let completion = UploadCompletion {
                key,
                upload_id,
                parts,
                crc,
            };
            self.complete_upload(completion).await
        }
    }

    /// [`Self::complete`] with its arguments in one [`UploadCompletion`]: what a store with
    /// multipart uploads implements.
    fn complete_upload(
        &self,
        _completion: UploadCompletion<'_>,
    ) -> impl Future<Output = Result<UploadOutcome, Error>> + Send {
        async { Err(no_parts()) }
    }

    /// Aborts an upload; succeeds when it is already gone.
    fn abort(
        &self,
        _key: &str,
        _upload_id: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        async { Err(no_parts()) }
    }
}
