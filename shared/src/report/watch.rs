//! The pause watch on AWS ([`PauseWatch`]): the sync function's event source mapping on the task
//! queue (Lambda `GetEventSourceMapping`, by the mapping's id, which the template passes), and
//! the queue's depth (SQS `GetQueueAttributes`) when its URL is known. `ctl pause` and `ctl
//! resume` switch that same mapping.

use super::pauses::{PauseWatch, Sighting};
use crate::errors::error_chain;
use aws_sdk_sqs::types::QueueAttributeName;
use time::OffsetDateTime;

/// Looks at the mapping from the task queue to the sync function.
#[derive(Debug, Clone)]
pub struct MappingWatch {
    /// Lambda client.
    pub lambda: aws_sdk_lambda::Client,
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The event source mapping's id (`SYNC_EVENT_SOURCE_MAPPING`).
    pub mapping: String,
    /// The task queue (`TASK_QUEUE_URL`), for the messages waiting; optional.
    pub queue_url: Option<String>,
}

impl MappingWatch {
    /// Messages waiting in the task queue; `None` when unknown (a failure is logged: the count is
    /// only a detail of the reason).
    async fn waiting(&self) -> Option<u64> {
        let url = self.queue_url.as_deref()?;
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await;
        match out {
            Ok(a) => a
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|n| n.parse().ok()),
            Err(e) => {
                tracing::warn!(queue_url = %url, error = %error_chain(&e), "the task queue's depth cannot be read");
                None
            }
        }
    }
}

impl PauseWatch for MappingWatch {
    async fn look(&self, at: OffsetDateTime) -> Result<Sighting, String> {
        let mapping = self
            .lambda
            .get_event_source_mapping()
            .uuid(&self.mapping)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "Lambda GetEventSourceMapping {}: {}",
                    self.mapping,
                    error_chain(&e)
                )
            })?;
        Ok(Sighting {
            at,
            state: mapping.state().unwrap_or("Unknown").to_owned(),
            changed_at: mapping
                .last_modified()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
            waiting: self.waiting().await,
        })
    }
}
