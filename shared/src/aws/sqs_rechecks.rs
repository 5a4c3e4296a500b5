//! Rechecks through SQS ([`SqsRechecks`]): the sync core's [`RecheckQueue`] as SendMessageBatch
//! requests to the task queue, delayed by SQS (up to 900 s a hop), with the recheck's attributes.

use crate::errors::error_chain;
use crate::sync::recheck::{
    hop, Recheck, RecheckQueue, RANGE, RECHECK_ATTEMPTS, RECHECK_OF, RECHECK_WAIT,
};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, SendMessageBatchRequestEntry,
};
use std::sync::Mutex;

/// SQS's limit on one SendMessageBatch request, all bodies together (kept below it).
const BATCH_BYTES: usize = 200 * 1024;

/// The task queue, by its URL (set, or found from the messages' `eventSourceARN`).
#[derive(Debug)]
pub struct SqsRechecks {
    client: aws_sdk_sqs::Client,
    url: Mutex<Option<String>>,
}

impl SqsRechecks {
    /// Rechecks to the queue at `url`, or (`None`) to the queue each message came from.
    pub fn new(client: aws_sdk_sqs::Client, url: Option<String>) -> Self {
        Self {
            client,
            url: Mutex::new(url),
        }
    }

    /// Sets the queue's URL (the local poller knows it).
    pub fn set_url(&self, url: &str) {
        if let Ok(mut u) = self.url.lock() {
            *u = Some(url.to_owned());
        }
    }

    async fn url(&self, arn: Option<&str>) -> Result<String, String> {
        if let Some(u) = self.url.lock().ok().and_then(|u| u.clone()) {
            return Ok(u);
        }
        let url = super::sqs::url_of_arn(&self.client, arn.unwrap_or_default())
            .await
            .map_err(|e| format!("no queue URL is set, and {}", error_chain(&e)))?
            .ok_or("SQS GetQueueUrl answered no URL")?;
        self.set_url(&url);
        Ok(url)
    }
}

impl SqsRechecks {
    /// Deletes the messages handed over whose rechecks were sent (best effort: one that stays
    /// comes again and is handed over again, which is safe).
    async fn delete_handed_over(&self, url: &str, sent: &[&Recheck]) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = sent
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r.receipt.as_deref()?)
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        match self
            .client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) if out.failed().is_empty() => {}
            Ok(out) => tracing::warn!(
                failed = out.failed().len(),
                "messages handed over to rechecks could not all be deleted; they come again"
            ),
            Err(e) => tracing::warn!(
                error = %error_chain(&e),
                "messages handed over to rechecks could not be deleted; they come again"
            ),
        }
    }
}

fn entry(i: usize, r: &Recheck) -> Result<SendMessageBatchRequestEntry, String> {
    let (now, later) = hop(r.after);
    let text = |v: String| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .map_err(|e| e.to_string())
    };
    let mut b = SendMessageBatchRequestEntry::builder()
        .id(i.to_string())
        .message_body(&r.body)
        .delay_seconds(now as i32)
        .message_attributes(RECHECK_ATTEMPTS, text(r.attempts.to_string())?);
    // SQS refuses an empty attribute value; a message without an id stands for nothing else.
    if !r.of.is_empty() {
        b = b.message_attributes(RECHECK_OF, text(r.of.clone())?);
    }
    if later > 0 {
        b = b.message_attributes(RECHECK_WAIT, text(later.to_string())?);
    }
    if let Some(range) = r.range.as_deref().filter(|v| !v.is_empty()) {
        b = b.message_attributes(RANGE, text(range.to_owned())?);
    }
    b.build().map_err(|e| e.to_string())
}

impl SqsRechecks {
    /// Sends one request's worth of rechecks: a result for each.
    async fn send_chunk(&self, chunk: &[Recheck]) -> Vec<Result<(), String>> {
        let all = |why: String| vec![Err(why); chunk.len()];
        let url = match self.url(chunk[0].queue_arn.as_deref()).await {
            Ok(u) => u,
            Err(why) => return all(why),
        };
        let entries = match chunk
            .iter()
            .enumerate()
            .map(|(i, r)| entry(i, r))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(e) => e,
            Err(why) => return all(why),
        };
        let out = match self
            .client
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => return all(format!("SQS SendMessageBatch: {}", error_chain(&e))),
        };
        let mut results: Vec<Result<(), String>> = vec![Ok(()); chunk.len()];
        for f in out.failed() {
            if let Some(r) = f
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            {
                *r = Err(format!(
                    "SQS SendMessageBatch refused the recheck: {} {}",
                    f.code(),
                    f.message().unwrap_or_default()
                ));
            }
        }
        let sent: Vec<&Recheck> = chunk
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(c, _)| c)
            .collect();
        self.delete_handed_over(&url, &sent).await;
        results
    }
}

impl RecheckQueue for SqsRechecks {
    async fn send(&self, rechecks: &[Recheck]) -> Vec<Result<(), String>> {
        // The requests go at once: a batch's write-aheads wait for the slowest, not the sum.
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < rechecks.len() {
            // Up to ten entries and BATCH_BYTES of bodies per request (at least one entry).
            let mut end = start + 1;
            let mut bytes = rechecks[start].body.len();
            while end < rechecks.len()
                && end - start < 10
                && bytes + rechecks[end].body.len() <= BATCH_BYTES
            {
                bytes += rechecks[end].body.len();
                end += 1;
            }
            chunks.push(self.send_chunk(&rechecks[start..end]));
            start = end;
        }
        futures_util::future::join_all(chunks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn entries_carry_the_hop_and_the_original() {
        let r = Recheck {
            body: "{}".into(),
            of: "m-1".into(),
            after: Duration::from_secs(1000),
            queue_arn: None,
            attempts: 3,
            receipt: None,
            range: Some("5-8 U".into()),
        };
        let e = entry(3, &r).unwrap();
        assert_eq!(e.id(), "3");
        assert_eq!(e.delay_seconds(), Some(900));
        let attrs = e.message_attributes().unwrap();
        assert_eq!(attrs[RECHECK_OF].string_value(), Some("m-1"));
        assert_eq!(attrs[RECHECK_WAIT].string_value(), Some("100"));
        assert_eq!(attrs[RECHECK_ATTEMPTS].string_value(), Some("3"));
        assert_eq!(attrs[RANGE].string_value(), Some("5-8 U"));
        let short = entry(
            0,
            &Recheck {
                after: Duration::from_secs(30),
                ..r
            },
        )
        .unwrap();
        assert!(!short
            .message_attributes()
            .unwrap()
            .contains_key(RECHECK_WAIT));
    }
}
