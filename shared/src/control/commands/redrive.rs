//! `ctl redrive`: the task queue's dead-letter queue (from its redrive policy) moved back to it
//! ([`crate::aws::sqs_redrive::redrive`]), with a spinner counting the messages moved.

use super::failure::Failure;
use super::terminal::Terminal;
use crate::aws::sqs::SqsQueue;
use crate::aws::sqs_redrive::redrive;
use crate::config::ControlConfig;
use serde_json::{json, Value};

/// Runs `ctl redrive`: at most `max` messages moved.
pub async fn redrive_dlq(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    max: Option<u64>,
    terminal: &dyn Terminal,
) -> Result<Value, Failure> {
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
    let Some(dlq) = queue.dead_letter_queue().await? else {
        return Err(no_dead_letter_queue(&config.queue_url));
    };
    let bar = terminal.spinner("receiving");
    let moved = redrive(&dlq, &queue, max, |r| {
        bar.set_message(format!("moved {}", r.moved))
    })
    .await;
    bar.finish();
    let moved = moved?;
    Ok(json!({
        "dlq": dlq.url(),
        "queue": queue.url(),
        "moved": moved.moved,
        "not_deleted": moved.not_deleted,
    }))
}

/// A task queue without a redrive policy: bad input (exit 2).
pub fn no_dead_letter_queue(queue_url: &str) -> Failure {
    Failure::input(format!(
        "the queue {queue_url} has no redrive policy, so no dead-letter queue"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_without_a_dead_letter_queue_is_bad_input() {
        let f = no_dead_letter_queue("https://sqs/1/q");
        assert_eq!(f.code(), 2);
        assert_eq!(
            f.message,
            "the queue https://sqs/1/q has no redrive policy, so no dead-letter queue"
        );
    }
}
