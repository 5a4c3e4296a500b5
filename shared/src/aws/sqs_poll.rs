//! The local event source: long-polls an SQS queue and hands real `SqsEvent` batches to the same
//! handler Lambda calls, then deletes only the messages not reported failed. Failed messages are
//! left alone, so they come back when their visibility timeout ends and move to the DLQ after
//! `maxReceiveCount`: the contract of Lambda's SQS event source mapping.
//!
//! Like Lambda's pollers it can pipeline: with [`PollOptions::batches_in_flight`] above 1, the
//! next receive is in flight while batches are handled, and up to that many batches are handled
//! at once (Lambda starts an SQS mapping with five), so a local run or a backfill is not bounded
//! by one batch at a time. The default is one batch at a time, as one function instance works:
//! batches in flight together must finish within the queue's visibility timeout, or their
//! messages are delivered again (Lambda asks for a visibility timeout of six function timeouts;
//! short ones, as the local tests use, only suit one batch at a time).

use crate::aws::lambda_mapping::EventSourceMapping;
use crate::errors::BoxError;
use crate::sync::handler::failed_ids;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// How to poll.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// The queue.
    pub queue_url: String,
    /// Messages per batch (1–10).
    pub batch_size: i32,
    /// Stop once the queue holds no message, visible or in flight.
    pub until_empty: bool,
    /// Stop after this long, whatever is left.
    pub max_duration: Option<Duration>,
    /// Long-poll wait per receive (seconds, 0–20).
    pub wait_seconds: i32,
    /// The sync function's event source mapping: when given, nothing is received while it is
    /// disabled, as Lambda delivers nothing then (`ctl pause` / `ctl resume` switch it).
    pub mapping: Option<EventSourceMapping>,
    /// How long each batch may take, as a Lambda function's timeout does; `None` for the queue's
    /// visibility timeout ÷ 6 (the ratio AWS recommends between the two).
    pub invocation_timeout: Option<Duration>,
    /// Batches handled at once (at least 1): a receive is in flight whenever fewer are.
    pub batches_in_flight: usize,
}

/// Batches in flight by default: one, as one function instance handles them.
pub const DEFAULT_BATCHES_IN_FLIGHT: usize = 1;

/// How often the mapping's state is read again.
const MAPPING_RECHECK: Duration = Duration::from_secs(1);

/// Whether the mapping lets messages through, read at most once per [`MAPPING_RECHECK`]. A state
/// that cannot be read keeps the last one known.
struct Gate<'a> {
    mapping: Option<&'a EventSourceMapping>,
    open: bool,
    checked: Option<Instant>,
}

impl Gate<'_> {
    async fn open(&mut self) -> bool {
        let Some(m) = self.mapping else {
            return true;
        };
        if self.checked.is_some_and(|t| t.elapsed() < MAPPING_RECHECK) {
            return self.open;
        }
        self.checked = Some(Instant::now());
        match m.state().await {
            Ok(state) => {
                let open = crate::aws::lambda_mapping::delivers(&state);
                if open != self.open {
                    if open {
                        tracing::info!(mapping = m.uuid(), %state, "delivery resumed");
                    } else {
                        tracing::info!(mapping = m.uuid(), %state, "delivery paused: the event source mapping is disabled");
                    }
                }
                self.open = open;
            }
            Err(e) => {
                tracing::warn!(mapping = m.uuid(), error = %crate::errors::error_chain(&e), "could not read the event source mapping's state; keeping the last one");
            }
        }
        self.open
    }
}

/// What a polling run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollSummary {
    /// Batches handed to the handler.
    pub batches: u64,
    /// Messages received (a message received twice counts twice).
    pub received: u64,
    /// Messages deleted (acknowledged).
    pub deleted: u64,
    /// Messages reported failed and left for redelivery.
    pub failed: u64,
}

/// Why polling stopped early.
#[derive(Debug, thiserror::Error)]
#[error("SQS {op} on {queue_url} failed: {source}")]
pub struct PollError {
    /// The operation.
    pub op: &'static str,
    /// The queue.
    pub queue_url: String,
    /// The cause.
    #[source]
    pub source: BoxError,
}

/// A Lambda SQS event of these messages, as Lambda's poller hands it over (the event types are
/// `#[non_exhaustive]`, so they are built here, for local event sources and tests).
pub fn lambda_event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

/// A message as Lambda delivers it: id, body and its `ApproximateReceiveCount`; the rest as
/// the caller sets it.
pub fn lambda_message(id: &str, body: &str, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(id.to_owned());
    m.receipt_handle = Some(id.to_owned());
    m.body = Some(body.to_owned());
    m.event_source = Some("aws:sqs".into());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

fn to_lambda_message(m: &aws_sdk_sqs::types::Message, queue_arn: &str, region: &str) -> SqsMessage {
    // Lambda's event types are `#[non_exhaustive]`: built from their default, field by field.
    let mut out = SqsMessage::default();
    out.message_id = m.message_id().map(str::to_owned);
    out.receipt_handle = m.receipt_handle().map(str::to_owned);
    out.body = m.body().map(str::to_owned);
    out.md5_of_body = m.md5_of_body().map(str::to_owned);
    out.event_source = Some("aws:sqs".into());
    out.event_source_arn = Some(queue_arn.to_owned());
    out.aws_region = Some(region.to_owned());
    if let Some(attrs) = m.attributes() {
        for (k, v) in attrs {
            out.attributes.insert(k.as_str().to_owned(), v.clone());
        }
    }
    if let Some(attrs) = m.message_attributes() {
        for (k, v) in attrs {
            if let Some(text) = v.string_value() {
                out.message_attributes
                    .insert(k.clone(), crate::sync::recheck::string_attribute(text));
            }
        }
    }
    out
}

/// The queue's `maxReceiveCount`, from its redrive policy; `None` without one.
pub async fn max_receive_count(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<Option<u32>, PollError> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| PollError {
            op: "GetQueueAttributes",
            queue_url: queue_url.to_owned(),
            source: e.into(),
        })?;
    Ok(attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .and_then(|p| redrive_max_receive_count(p)))
}

/// `maxReceiveCount` from a redrive policy's JSON (a number, or a string as some tools write it).
fn redrive_max_receive_count(policy: &str) -> Option<u32> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    match v.get("maxReceiveCount")? {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Polls until told to stop, calling `handler` with each batch and the deadline it must meet.
pub async fn poll<F, Fut>(
    sqs: &aws_sdk_sqs::Client,
    opts: &PollOptions,
    handler: F,
) -> Result<PollSummary, PollError>
where
    F: Fn(SqsEvent, tokio::time::Instant) -> Fut,
    Fut: Future<Output = SqsBatchResponse>,
{
    let err = |op: &'static str, source: BoxError| PollError {
        op,
        queue_url: opts.queue_url.clone(),
        source,
    };
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&opts.queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| err("GetQueueAttributes", e.into()))?;
    let attr = |name: QueueAttributeName| {
        attrs
            .attributes()
            .and_then(|a| a.get(&name))
            .cloned()
            .unwrap_or_default()
    };
    let queue_arn = attr(QueueAttributeName::QueueArn);
    let visibility = Duration::from_secs(
        attr(QueueAttributeName::VisibilityTimeout)
            .parse()
            .unwrap_or(30),
    );
    let region = queue_arn.split(':').nth(3).unwrap_or_default().to_owned();
    let invocation_timeout = opts
        .invocation_timeout
        .unwrap_or(visibility / 6)
        .max(Duration::from_secs(1));
    let started = Instant::now();
    let mut summary = PollSummary::default();
    // With a mapping to follow, short waits, so a pause takes effect within about two seconds.
    let wait_seconds = match opts.mapping {
        Some(_) => opts.wait_seconds.clamp(0, 1),
        None => opts.wait_seconds.clamp(0, 20),
    };
    // The gate travels with the receive that reads it, so the batches in flight keep running
    // (and meet their deadlines) while the mapping's state is read.
    let mut gate = Some(Gate {
        mapping: opts.mapping.as_ref(),
        open: true,
        checked: None,
    });
    let max_batches = opts.batches_in_flight.max(1);
    let ctx = BatchContext {
        sqs,
        queue_url: &opts.queue_url,
        visibility,
    };
    let handler = &handler;
    let ctx = &ctx;
    let mut in_flight = FuturesUnordered::new();
    let mut receiving: Option<Pin<Box<dyn Future<Output = Received<'_>> + '_>>> = None;
    // The first error, returned once the batches in flight are done.
    let mut failure: Option<PollError> = None;
    loop {
        let stopping =
            failure.is_some() || opts.max_duration.is_some_and(|d| started.elapsed() >= d);
        if stopping {
            if failure.is_none() {
                tracing::warn!(queue_url = %opts.queue_url, "polling stopped: time limit reached");
            }
            receiving = None;
            if in_flight.is_empty() {
                return match failure {
                    Some(e) => Err(e),
                    None => Ok(summary),
                };
            }
        } else if receiving.is_none() && in_flight.len() < max_batches {
            if let Some(mut g) = gate.take() {
                let receive = sqs
                    .receive_message()
                    .queue_url(&opts.queue_url)
                    .max_number_of_messages(opts.batch_size.clamp(1, 10))
                    .wait_time_seconds(wait_seconds)
                    .message_system_attribute_names(MessageSystemAttributeName::All)
                    .message_attribute_names("All");
                receiving = Some(Box::pin(async move {
                    if !g.open().await {
                        // Paused: nothing is received; look again after a while.
                        tokio::time::sleep(MAPPING_RECHECK).await;
                        return (g, Ok(None));
                    }
                    let got = receive
                        .send()
                        .await
                        .map(|r| Some(r.messages.unwrap_or_default()))
                        .map_err(|e| err("ReceiveMessage", e.into()));
                    (g, got)
                }));
            }
        }
        tokio::select! {
            Some(done) = in_flight.next() => {
                let done: Result<BatchDone, PollError> = done;
                match done {
                    Ok(d) => {
                        summary.batches += 1;
                        summary.received += d.received;
                        summary.deleted += d.deleted;
                        summary.failed += d.failed;
                    }
                    Err(e) => {
                        failure.get_or_insert(e);
                    }
                }
            }
            received = async { receiving.as_mut().expect("guarded").await }, if receiving.is_some() => {
                receiving = None;
                let (g, received) = received;
                gate = Some(g);
                let messages = match received {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => {
                        failure.get_or_insert(e);
                        continue;
                    }
                };
                if messages.is_empty() {
                    if opts.until_empty && in_flight.is_empty() {
                        match queue_is_empty(sqs, &opts.queue_url).await {
                            Ok(true) => return Ok(summary),
                            Ok(false) => {}
                            Err(e) => {
                                failure.get_or_insert(err("GetQueueAttributes", e.into()));
                            }
                        }
                    }
                    continue;
                }
                let event = lambda_event(
                    messages
                        .iter()
                        .map(|m| to_lambda_message(m, &queue_arn, &region))
                        .collect(),
                );
                // A batch starts as soon as it is received, and ends by its deadline.
                let deadline = tokio::time::Instant::now() + invocation_timeout;
                in_flight.push(ctx.handle(messages, handler(event, deadline)));
            }
        }
    }
}

/// A receive's messages (`None` while the mapping is disabled), or why it failed; with the gate
/// it took along.
type Received<'a> = (
    Gate<'a>,
    Result<Option<Vec<aws_sdk_sqs::types::Message>>, PollError>,
);

/// What one batch's handling did.
struct BatchDone {
    received: u64,
    deleted: u64,
    failed: u64,
}

/// What a batch in flight needs besides its handler's answer.
struct BatchContext<'a> {
    sqs: &'a aws_sdk_sqs::Client,
    queue_url: &'a str,
    visibility: Duration,
}

impl BatchContext<'_> {
    /// Waits for the handler's answer, then deletes the messages it did not report failed.
    async fn handle(
        &self,
        messages: Vec<aws_sdk_sqs::types::Message>,
        answer: impl Future<Output = SqsBatchResponse>,
    ) -> Result<BatchDone, PollError> {
        let batch_started = Instant::now();
        let response = answer.await;
        if batch_started.elapsed() > self.visibility {
            tracing::warn!(
                elapsed_ms = batch_started.elapsed().as_millis() as u64,
                visibility_timeout_s = self.visibility.as_secs(),
                "a batch took longer than the queue's visibility timeout; its messages may be delivered again"
            );
        }
        let failed = failed_ids(&response);
        let entries = super::sqs::delete_entries(
            messages
                .iter()
                .filter(|m| !failed.contains(m.message_id().unwrap_or_default())),
        );
        let mut done = BatchDone {
            received: messages.len() as u64,
            deleted: 0,
            failed: (messages.len() - entries.len()) as u64,
        };
        if !entries.is_empty() {
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PollError {
                    op: "DeleteMessageBatch",
                    queue_url: self.queue_url.to_owned(),
                    source: e.into(),
                })?;
            done.deleted = out.successful().len() as u64;
            for f in out.failed() {
                tracing::warn!(
                    id = f.id(),
                    code = f.code(),
                    "a handled message could not be deleted; it will be delivered again"
                );
            }
        }
        Ok(done)
    }
}

async fn queue_is_empty(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<
    bool,
    aws_sdk_sqs::error::SdkError<
        aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesError,
    >,
> {
    let a = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await?;
    Ok(a.attributes().is_none_or(|m| m.values().all(|v| v == "0")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policies_in_both_forms() {
        let p = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:1:dlq","maxReceiveCount":5}"#;
        assert_eq!(redrive_max_receive_count(p), Some(5));
        let p = r#"{"deadLetterTargetArn":"arn","maxReceiveCount":"7"}"#;
        assert_eq!(redrive_max_receive_count(p), Some(7));
        assert_eq!(redrive_max_receive_count("{}"), None);
        assert_eq!(redrive_max_receive_count("not json"), None);
    }
}
