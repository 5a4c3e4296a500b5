//! Pause and resume: the sync function's Lambda event source mapping on the task queue, switched
//! off and on. While it is disabled, messages wait in the queue (up to its retention period) and
//! nothing is delivered; enabling it again delivers them.

use crate::store::error::StoreError;

/// The event source mapping from the task queue to the sync function.
#[derive(Debug, Clone)]
pub struct EventSourceMapping {
    client: aws_sdk_lambda::Client,
    uuid: String,
}

/// Whether a mapping in this state delivers messages (or is about to).
pub fn delivers(state: &str) -> bool {
    matches!(state, "Enabled" | "Enabling" | "Updating" | "Creating")
}

impl EventSourceMapping {
    /// The one mapping from `queue_arn` to `function`. None, or more than one, is an input error:
    /// pausing must switch exactly the mapping that feeds the task.
    pub async fn find(
        client: aws_sdk_lambda::Client,
        function: &str,
        queue_arn: &str,
    ) -> Result<Self, StoreError> {
        let mut uuids = Vec::new();
        let mut pages = client
            .list_event_source_mappings()
            .function_name(function)
            .event_source_arn(queue_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                crate::aws::error::call_error("Lambda", "ListEventSourceMappings", e)
            })?;
            uuids.extend(
                page.event_source_mappings()
                    .iter()
                    // Some servers ignore one of the filters; check both again.
                    .filter(|m| m.event_source_arn() == Some(queue_arn))
                    .filter(|m| {
                        m.function_arn().is_none_or(|arn| {
                            arn == function
                                || arn.ends_with(&format!(":function:{function}"))
                                || arn.contains(&format!(":function:{function}:"))
                        })
                    })
                    .filter_map(|m| m.uuid().map(str::to_owned)),
            );
        }
        match uuids.len() {
            1 => Ok(Self {
                client,
                uuid: uuids.remove(0),
            }),
            0 => Err(StoreError::Input(format!(
                "no event source mapping from {queue_arn} to the function {function}"
            ))),
            n => Err(StoreError::Input(format!(
                "{n} event source mappings from {queue_arn} to {function} ({}); expected one",
                uuids.join(", ")
            ))),
        }
    }

    /// The mapping from the queue at `queue_url` to `function`, with clients built from `sdk`.
    pub async fn for_queue(
        sdk: &aws_config::SdkConfig,
        function: &str,
        queue_url: &str,
    ) -> Result<Self, StoreError> {
        let queue = super::sqs::SqsQueue::new(aws_sdk_sqs::Client::new(sdk), queue_url);
        let arn = queue.arn().await?;
        Self::find(aws_sdk_lambda::Client::new(sdk), function, &arn).await
    }

    /// The mapping's id.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The mapping's state (`Enabled`, `Disabled`, `Enabling`, `Disabling`, ...).
    pub async fn state(&self) -> Result<String, StoreError> {
        let out = self
            .client
            .get_event_source_mapping()
            .uuid(&self.uuid)
            .send()
            .await
            .map_err(|e| crate::aws::error::call_error("Lambda", "GetEventSourceMapping", e))?;
        Ok(out.state().unwrap_or("Unknown").to_owned())
    }

    /// Enables or disables the mapping, then waits (up to `wait`) for it to settle in `Enabled`
    /// or `Disabled`. Returns the state it ended in; one still changing after `wait` is returned
    /// as it is, for the caller to report. Only `ctl` (pause and resume) switches it: the
    /// Lambda functions build without it.
    #[cfg(feature = "control")]
    pub async fn set_enabled(
        &self,
        enabled: bool,
        wait: std::time::Duration,
    ) -> Result<String, StoreError> {
        self.client
            .update_event_source_mapping()
            .uuid(&self.uuid)
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| crate::aws::error::call_error("Lambda", "UpdateEventSourceMapping", e))?;
        let target = if enabled { "Enabled" } else { "Disabled" };
        let started = std::time::Instant::now();
        loop {
            let state = self.state().await?;
            if state == target || started.elapsed() >= wait {
                return Ok(state);
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivering_states() {
        for s in ["Enabled", "Enabling", "Updating", "Creating"] {
            assert!(delivers(s), "{s}");
        }
        for s in ["Disabled", "Disabling", "Deleting", "Unknown", ""] {
            assert!(!delivers(s), "{s}");
        }
    }
}
