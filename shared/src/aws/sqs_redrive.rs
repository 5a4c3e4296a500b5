//! `ctl redrive`: the dead-letter queue's messages moved back to the task queue, each as a recheck
//! of the message that dead-lettered, a message deleted from the DLQ only once the task queue
//! took it.

use super::sqs::{delete_entries, SqsQueue};
use super::sqs_rechecks::SqsRechecks;
use crate::store::error::StoreError;
use crate::sync::recheck::{self, Recheck, RecheckQueue};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use std::time::Duration;

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Redriven {
    /// Messages sent back to the task queue and deleted from the DLQ.
    pub moved: u64,
    /// Messages sent back whose DLQ copy could not be deleted (they will be moved again, and
    /// the sync function skips what is already in OSS).
    pub not_deleted: u64,
}

/// Moves every message of `dlq` back to `queue`, bodies unchanged: each batch is sent to the task
/// queue first and a message is deleted from the DLQ only once the task queue took it, so a
/// failure at any point leaves a message in one queue or both, never in neither. Stops after
/// `max` messages.
///
/// A redriven message is a recheck of the message that dead-lettered (the `s3sync-recheck-of`
/// attribute: the one it already carried, else its own id, which SQS keeps when it moves a
/// message to the DLQ): its earlier deliveries may have written, unconfirmed, so markers written
/// for it are not trusted and the source is read again. It starts a fresh chain of deliveries.
pub async fn redrive(
    dlq: &SqsQueue,
    queue: &SqsQueue,
    max: Option<u64>,
    mut progress: impl FnMut(&Redriven),
) -> Result<Redriven, StoreError> {
    let mut done = Redriven::default();
    let mut empty_receives = 0;
    let rechecks = SqsRechecks::new(queue.client.clone(), Some(queue.url.clone()));
    while max.is_none_or(|m| done.moved + done.not_deleted < m) && empty_receives < 2 {
        let want = max
            .map(|m| (m - done.moved - done.not_deleted).min(10))
            .unwrap_or(10) as i32;
        let out = dlq
            .client
            .receive_message()
            .queue_url(&dlq.url)
            .max_number_of_messages(want)
            .wait_time_seconds(1)
            .visibility_timeout(120)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names(recheck::RECHECK_OF)
            .message_attribute_names(recheck::RANGE)
            .send()
            .await
            .map_err(|e| crate::aws::error::call_error("SQS", "ReceiveMessage", e))?;
        let messages = out.messages();
        if messages.is_empty() {
            empty_receives += 1;
            continue;
        }
        empty_receives = 0;
        let sends: Vec<Recheck> = messages.iter().map(redriven).collect();
        let sent = rechecks.send(&sends).await;
        let taken: Vec<&aws_sdk_sqs::types::Message> = messages
            .iter()
            .zip(&sent)
            .filter(|(_, r)| r.is_ok())
            .map(|(m, _)| m)
            .collect();
        if !taken.is_empty() {
            let entries = delete_entries(taken.iter().copied());
            let deleted = dlq
                .client
                .delete_message_batch()
                .queue_url(&dlq.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| crate::aws::error::call_error("SQS", "DeleteMessageBatch", e))?;
            done.moved += deleted.successful().len() as u64;
            done.not_deleted += (taken.len() - deleted.successful().len()) as u64;
        }
        progress(&done);
        if let Some(Err(why)) = sent.into_iter().find(Result::is_err) {
            // The messages not taken stay in the DLQ (visible again in 120 s).
            return Err(StoreError::call(
                "SQS",
                "SendMessageBatch",
                format!(
                    "{} of {} messages not moved: {why}",
                    messages.len() - taken.len(),
                    messages.len()
                ),
                true,
            ));
        }
    }
    Ok(done)
}

/// A dead-lettered message, sent back as a recheck of the message it stands for.
fn redriven(m: &aws_sdk_sqs::types::Message) -> Recheck {
    let carried = m
        .message_attributes()
        .and_then(|a| a.get(recheck::RECHECK_OF))
        .and_then(|v| v.string_value())
        .filter(|v| !v.trim().is_empty());
    // A range job stays one: redriven without its range it would copy the whole object.
    let range = m
        .message_attributes()
        .and_then(|a| a.get(recheck::RANGE))
        .and_then(|v| v.string_value())
        .map(str::to_owned);
    Recheck {
        body: m.body().unwrap_or_default().to_owned(),
        of: carried
            .or(m.message_id())
            .unwrap_or_default()
            .trim()
            .to_owned(),
        after: Duration::ZERO,
        queue_arn: None,
        attempts: 0,
        receipt: None,
        range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redriven_message_is_a_recheck_of_what_it_stood_for() {
        let plain = aws_sdk_sqs::types::Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body("{\"Records\":[]}")
            .build();
        let r = redriven(&plain);
        assert_eq!(
            (r.of.as_str(), r.body.as_str()),
            ("m-1", "{\"Records\":[]}")
        );
        assert_eq!((r.after, r.attempts, r.receipt), (Duration::ZERO, 0, None));
        let recheck = aws_sdk_sqs::types::Message::builder()
            .message_id("r-9")
            .message_attributes(
                recheck::RECHECK_OF,
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(" m-1 ")
                    .build()
                    .unwrap(),
            )
            .build();
        assert_eq!(redriven(&recheck).of, "m-1", "a recheck keeps its original");
    }
}
