//! Rechecks: a message's events sent again, delayed until the deliveries that may still be
//! writing for it are over, and then handled like a redelivery of it (markers written for it are
//! not trusted; the source is read; a stale write is repaired).
//!
//! SQS delivers at least once: now and then a message goes to a second invocation while the first
//! still holds it (and Lambda's poller may invoke one batch twice, with the same receive count).
//! If both worked on it, one could confirm the key and acknowledge the message while the other's
//! write, made for a version that has since been replaced, is still to land; if that other is
//! then killed (a timeout, a crash) before it can check and repair, nothing is left to bring the
//! key back. Two kinds of recheck close that gap (the argument is in [`crate::sync::copy`]):
//!
//! - **Write-ahead**: before a job's first write (a copy or a delete), the handler sends the job's
//!   message as a recheck, once per message and invocation. The message itself is acknowledged or
//!   not by how its jobs end. If the recheck cannot be sent, the job writes nothing and fails.
//! - **Hand-over**: a later delivery of a message (`ApproximateReceiveCount` above 1: a retry
//!   after a failure, a timeout or a kill, or a second delivery while the first runs) does not
//!   work on it; it sends the events as a recheck and acknowledges the message without writing
//!   (its receipt is deleted at once, so a crash later in the invocation does not bring it back).
//!   If the recheck cannot be sent, the message is not acknowledged (it comes again).
//!
//! The delay is how long an invocation may still run: the function's timeout, plus the time a
//! batch may wait before its invocation starts (the batching window), plus [`SLACK`] for requests
//! that land after their sender stopped.
//!
//! SQS delays a message by 900 s at most; a longer wait is made in hops (the recheck arrives with
//! the seconds still to wait and is sent on again). A recheck carries the number of deliveries
//! its chain has had; at `maxReceiveCount` (or [`CHAIN_LIMIT`] if that is not known) the chain
//! stops handing over, so a message that keeps failing still ends in the DLQ.
//!
//! Cost: one SQS message per message that writes and per redelivery; a recheck that finds the
//! key current costs a HEAD of each side.

use aws_lambda_events::event::sqs::{SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, SendMessageBatchRequestEntry,
};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// Message attribute naming the message a recheck stands for (the first message of the chain).
pub const RECHECK_OF: &str = "s3sync-recheck-of";
/// Message attribute: seconds the recheck must still wait before it runs (a later hop).
pub const RECHECK_WAIT: &str = "s3sync-recheck-wait";
/// Message attribute: deliveries the chain of messages before this recheck had (its original's
/// and earlier rechecks'), so a message that keeps failing still ends in the DLQ.
pub const RECHECK_ATTEMPTS: &str = "s3sync-recheck-attempts";
/// Message attribute of a range job ([`crate::sync::resume`], fan-out): `"<first>-<last> <upload id>"`,
/// the part numbers the job uploads into that upload.
pub const RANGE: &str = "s3sync-range";
/// The longest delay SQS gives one message (`DelaySeconds`).
pub const MAX_DELAY_SECS: u64 = 900;
/// Deliveries after which a chain of rechecks stops handing over when the queue's
/// `maxReceiveCount` is not known (`SQS_MAX_RECEIVE_COUNT` unset): without a bound, a message
/// that always fails would be handed on for ever instead of reaching the DLQ.
pub const CHAIN_LIMIT: u32 = 5;
/// Slack added to the longest invocation, for cold starts and clocks.
pub const SLACK: Duration = Duration::from_secs(15);

/// One recheck to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recheck {
    /// The original message's body (its S3 event records).
    pub body: String,
    /// The message this recheck stands for.
    pub of: String,
    /// How long from now it must not run.
    pub after: Duration,
    /// The queue the original came from (`eventSourceARN`), to find its URL if none is set.
    pub queue_arn: Option<String>,
    /// Deliveries of the chain before this recheck.
    pub attempts: u32,
    /// The receipt handle of the delivery handing over: once the recheck is sent, that message is
    /// deleted at once, so a crash later in the invocation does not bring it back to be handed
    /// over again.
    pub receipt: Option<String>,
    /// For a range job (and its hand-overs and continuations): its [`RANGE`] attribute.
    pub range: Option<String>,
}

/// How a delay is sent: the `DelaySeconds` of this hop and what is left for later hops.
pub fn hop(after: Duration) -> (u64, u64) {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    let now = secs.min(MAX_DELAY_SECS);
    (now, secs - now)
}

/// How long an earlier delivery of a message may still run: the function's timeout, plus the
/// batching window, plus [`SLACK`].
pub fn lifetime(timeout: Duration, batching_window: Duration) -> Duration {
    timeout + batching_window + SLACK
}

fn attribute<'a>(m: &'a SqsMessage, name: &str) -> Option<&'a str> {
    m.message_attributes
        .get(name)
        .and_then(|a| a.string_value.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The message a delivered recheck stands for, if it is one.
pub fn recheck_of(m: &SqsMessage) -> Option<&str> {
    attribute(m, RECHECK_OF)
}

/// The [`RANGE`] attribute of a delivered range job.
pub fn range_of(m: &SqsMessage) -> Option<&str> {
    attribute(m, RANGE)
}

/// Seconds a delivered recheck must still wait (0 when it may run now, or is not a recheck).
pub fn still_to_wait(m: &SqsMessage) -> u64 {
    attribute(m, RECHECK_WAIT)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Deliveries of a delivered recheck's chain before it (0 for a message that is not one).
pub fn attempts_before(m: &SqsMessage) -> u32 {
    attribute(m, RECHECK_ATTEMPTS)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A message attribute as Lambda's event carries it (for tests and local event sources).
pub fn string_attribute(value: &str) -> SqsMessageAttribute {
    let mut attribute = SqsMessageAttribute::default();
    attribute.string_value = Some(value.to_owned());
    attribute.data_type = Some("String".to_owned());
    attribute
}

/// Where rechecks go: the task's queue.
pub trait RecheckQueue: Send + Sync {
    /// Sends the rechecks: one result per recheck, in order. An error means the recheck may not
    /// have been sent and must not be relied on (if it was sent after all, it only checks again).
    fn send(&self, rechecks: &[Recheck]) -> impl Future<Output = Vec<Result<(), String>>> + Send;
}

/// Rechecks kept in memory (tests, and handlers run without a queue to send to).
#[derive(Debug, Default)]
pub struct HeldRechecks {
    /// Every recheck sent, in order.
    pub sent: Mutex<Vec<Recheck>>,
    /// When set, every send fails with this reason.
    pub fail_with: Option<String>,
    /// Calls to `send` (each would be one request per ten rechecks).
    pub sends: std::sync::atomic::AtomicU32,
    /// The next this-many calls to `send` fail (a refused request).
    pub fail_calls: std::sync::atomic::AtomicU32,
}

impl HeldRechecks {
    /// The rechecks sent so far.
    pub fn sent(&self) -> Vec<Recheck> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl RecheckQueue for HeldRechecks {
    async fn send(&self, rechecks: &[Recheck]) -> Vec<Result<(), String>> {
        use std::sync::atomic::Ordering::Relaxed;
        self.sends.fetch_add(1, Relaxed);
        if let Some(why) = &self.fail_with {
            return vec![Err(why.clone()); rechecks.len()];
        }
        if self
            .fail_calls
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return vec![Err("the request was refused".to_owned()); rechecks.len()];
        }
        if let Ok(mut s) = self.sent.lock() {
            s.extend_from_slice(rechecks);
        }
        vec![Ok(()); rechecks.len()]
    }
}

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
        let url = crate::aws::sqs::url_of_arn(&self.client, arn.unwrap_or_default())
            .await
            .map_err(|e| {
                format!(
                    "no queue URL is set, and {}",
                    crate::errors::error_chain(&e)
                )
            })?
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
                error = %crate::errors::error_chain(&e),
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
            Err(e) => {
                return all(format!(
                    "SQS SendMessageBatch: {}",
                    crate::errors::error_chain(&e)
                ))
            }
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

    #[test]
    fn hops_of_a_long_delay() {
        assert_eq!(hop(Duration::from_secs(0)), (0, 0));
        assert_eq!(hop(Duration::from_millis(1500)), (2, 0));
        assert_eq!(hop(Duration::from_secs(900)), (900, 0));
        assert_eq!(hop(Duration::from_secs(1215)), (900, 315));
        assert_eq!(hop(Duration::from_secs(2000)), (900, 1100));
    }

    #[test]
    fn lifetime_covers_timeout_window_and_slack() {
        assert_eq!(
            lifetime(Duration::from_secs(900), Duration::from_secs(300)),
            Duration::from_secs(1215)
        );
    }

    #[test]
    fn attributes_are_read_trimmed_and_tolerant() {
        let mut m = SqsMessage::default();
        assert_eq!(recheck_of(&m), None);
        assert_eq!(still_to_wait(&m), 0);
        m.message_attributes
            .insert(RECHECK_OF.into(), string_attribute(" m-1 "));
        m.message_attributes
            .insert(RECHECK_WAIT.into(), string_attribute("315"));
        assert_eq!(recheck_of(&m), Some("m-1"));
        assert_eq!(still_to_wait(&m), 315);
        m.message_attributes
            .insert(RECHECK_WAIT.into(), string_attribute("soon"));
        assert_eq!(still_to_wait(&m), 0);
        m.message_attributes
            .insert(RECHECK_OF.into(), string_attribute(""));
        assert_eq!(recheck_of(&m), None);
    }

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
