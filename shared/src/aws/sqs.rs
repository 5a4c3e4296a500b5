//! The task queue and its dead-letter queue through SQS: sending events, reading depths and
//! attributes, finding a queue from its ARN. Moving dead-lettered messages back is in
//! `aws::sqs_redrive` (built with the `control` feature, for `ctl` only).

use crate::retry::{RetryPolicy, Transient};
use crate::store::error::StoreError;
use crate::store::queue::EventQueue;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, QueueAttributeName, SendMessageBatchRequestEntry,
};
use std::collections::HashMap;

/// A queue: its client and URL.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    pub(crate) client: aws_sdk_sqs::Client,
    pub(crate) url: String,
    policy: RetryPolicy,
}

/// A queue's depths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Depths {
    /// Messages waiting.
    pub visible: u64,
    /// Messages received and not yet deleted (being handled).
    pub in_flight: u64,
    /// Messages sent with a delay not yet over.
    pub delayed: u64,
}

impl SqsQueue {
    /// The queue at `url`.
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            policy: RetryPolicy::default(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn attributes(
        &self,
        names: &[QueueAttributeName],
    ) -> Result<HashMap<QueueAttributeName, String>, StoreError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| crate::aws::error::call_error("SQS", "GetQueueAttributes", e))?;
        Ok(out.attributes().cloned().unwrap_or_default())
    }

    /// The queue's ARN.
    pub async fn arn(&self) -> Result<String, StoreError> {
        self.attributes(&[QueueAttributeName::QueueArn])
            .await?
            .remove(&QueueAttributeName::QueueArn)
            .ok_or_else(|| StoreError::Input(format!("queue {} has no QueueArn", self.url)))
    }

    /// Messages waiting, in flight and delayed.
    pub async fn depths(&self) -> Result<Depths, StoreError> {
        let a = self
            .attributes(&[
                QueueAttributeName::ApproximateNumberOfMessages,
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                QueueAttributeName::ApproximateNumberOfMessagesDelayed,
            ])
            .await?;
        let n = |k: QueueAttributeName| a.get(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Depths {
            visible: n(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    /// The dead-letter queue named by this queue's redrive policy, if it has one.
    pub async fn dead_letter_queue(&self) -> Result<Option<SqsQueue>, StoreError> {
        let a = self
            .attributes(&[QueueAttributeName::RedrivePolicy])
            .await?;
        let Some(policy) = a.get(&QueueAttributeName::RedrivePolicy) else {
            return Ok(None);
        };
        let arn = dead_letter_arn(policy)?;
        Ok(url_of_arn(&self.client, &arn)
            .await?
            .map(|u| SqsQueue::new(self.client.clone(), u)))
    }

    /// One SendMessageBatch attempt: the bodies SQS did not take, and whether SQS blamed them
    /// (too large, malformed: sending again will not help).
    async fn send_once(&self, bodies: &[String]) -> Result<Vec<usize>, StoreError> {
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(b)
                    .build()
                    .map_err(|e| StoreError::Input(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| crate::aws::error::call_error("SQS", "SendMessageBatch", e))?;
        if let Some(f) = out.failed().iter().find(|f| f.sender_fault()) {
            return Err(StoreError::call(
                "SQS",
                "SendMessageBatch",
                format!("{}: {}", f.code(), f.message().unwrap_or_default()),
                false,
            ));
        }
        Ok(out
            .failed()
            .iter()
            .filter_map(|f| f.id().parse().ok())
            .collect())
    }
}

impl EventQueue for SqsQueue {
    /// Sends the bodies, retrying with backoff both failed calls that may succeed later and the
    /// entries SQS did not take for its own reasons (throttling, internal errors).
    async fn send_batch(&self, bodies: Vec<String>) -> Result<(), StoreError> {
        let mut left = bodies;
        let max = self.policy.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let error = match self.send_once(&left).await {
                Ok(failed) if failed.is_empty() => return Ok(()),
                Ok(failed) => {
                    let n = left.len();
                    left = failed
                        .iter()
                        .filter_map(|i| left.get(*i).cloned())
                        .collect();
                    StoreError::call(
                        "SQS",
                        "SendMessageBatch",
                        format!("{} of {n} entries not accepted", left.len()),
                        true,
                    )
                }
                Err(e) => e,
            };
            if !error.is_transient() || attempt >= max {
                return Err(error);
            }
            let wait = self.policy.backoff(attempt);
            tracing::warn!(attempt, error = %crate::errors::error_chain(&error), backoff_ms = wait.as_millis() as u64, "SendMessageBatch: retrying");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn waiting(&self) -> Result<u64, StoreError> {
        Ok(self.depths().await?.visible)
    }
}

fn dead_letter_arn(policy: &str) -> Result<String, StoreError> {
    let v: serde_json::Value = serde_json::from_str(policy)
        .map_err(|e| StoreError::Input(format!("the queue's RedrivePolicy is not JSON: {e}")))?;
    v.get("deadLetterTargetArn")
        .and_then(|a| a.as_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            StoreError::Input("the queue's RedrivePolicy has no deadLetterTargetArn".into())
        })
}

/// A queue's URL from its ARN (GetQueueUrl with its name and owner).
pub async fn url_of_arn(
    client: &aws_sdk_sqs::Client,
    arn: &str,
) -> Result<Option<String>, StoreError> {
    let (account, name) = queue_name_of(arn)?;
    let out = client
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| crate::aws::error::call_error("SQS", "GetQueueUrl", e))?;
    Ok(out.queue_url().map(str::to_owned))
}

/// The account and name of an SQS queue ARN (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
pub fn queue_name_of(arn: &str) -> Result<(String, String), StoreError> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, account, name] if !name.is_empty() => {
            Ok(((*account).to_owned(), (*name).to_owned()))
        }
        _ => Err(StoreError::Input(format!(
            "{arn:?} is not an SQS queue ARN"
        ))),
    }
}

/// DeleteMessageBatch entries for received messages (ids are their positions; a message without
/// a receipt handle is left out).
pub(crate) fn delete_entries<'a>(
    messages: impl Iterator<Item = &'a aws_sdk_sqs::types::Message>,
) -> Vec<DeleteMessageBatchRequestEntry> {
    messages
        .enumerate()
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle()?)
                .build()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_queues_are_found_from_the_policy() {
        let arn = dead_letter_arn(
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:t-dlq","maxReceiveCount":"5"}"#,
        )
        .unwrap();
        assert_eq!(
            queue_name_of(&arn).unwrap(),
            ("123456789012".into(), "t-dlq".into())
        );
        assert!(dead_letter_arn("{}").is_err());
        assert!(dead_letter_arn("nope").is_err());
        assert!(queue_name_of("arn:aws:sns:us-east-1:1:x").is_err());
    }
}
