//! The multipart uploads a client left open (a job dropped mid-way, an abort that failed), kept
//! for [`super::OssClient::abort_abandoned_uploads`]; and the guard that puts an upload on that
//! list unless it was completed or aborted.

use crate::store::upload::OpenUpload;
use std::sync::Mutex;

/// Uploads left open by a job that was dropped mid-way or whose abort failed.
#[derive(Debug, Default)]
pub(crate) struct AbandonedList(Mutex<Vec<OpenUpload>>);

impl AbandonedList {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Vec<OpenUpload>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Holds an open upload; dropped before [`Self::closed`] (a dropped job, a failed abort), it puts
/// the upload on the abandoned list.
pub(crate) struct OpenGuard<'a> {
    list: &'a AbandonedList,
    pub(crate) upload: Option<OpenUpload>,
}

impl<'a> OpenGuard<'a> {
    pub(crate) fn new(list: &'a AbandonedList, upload: OpenUpload) -> Self {
        Self {
            list,
            upload: Some(upload),
        }
    }

    /// The upload was completed or aborted: nothing to remember.
    pub(crate) fn closed(mut self) {
        self.upload = None;
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        if let Some(u) = self.upload.take() {
            tracing::warn!(
                key = u.key,
                upload_id = u.upload_id,
                "multipart upload left open; kept for abort_abandoned_uploads"
            );
            self.list.lock().push(u);
        }
    }
}
