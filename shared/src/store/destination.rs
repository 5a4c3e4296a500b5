//! The destination port: what the sync core needs from the destination bucket, as a small trait
//! so the core can be tested against an in-memory store and run against OSS
//! ([`crate::oss::destination::OssDestination`]).

use super::object::{ObjectHead, ObjectMetadata};
use super::upload::{
    AbandonedUploads, BodySource, ListedPart, PartPlan, PartUpload, UploadCompletion,
    UploadOutcome, UploadRequest,
};
use crate::oss::error::Error;
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

    /// Uploads one part; the CRC-64 the store reports for it must be the part's `crc`. Returns
    /// its ETag.
    fn upload_part(
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

    /// Completes an upload from its `(number, etag)` parts; the object's CRC-64 must be the
    /// completion's `crc`.
    fn complete(
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
