//! The SQS queue: at-least-once, late and reordered delivery, receive counts, visibility after a
//! failure or a kill, and (rarely) a message delivered again while still in flight, sometimes
//! with the same receive count.

use super::rng::Rng;
use aws_lambda_events::event::sqs::SqsMessage;

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting to become visible at this time.
    Waiting(u64),
    /// Held by this many invocations.
    InFlight(u32),
    /// Deleted (acknowledged).
    Deleted,
}

/// One message.
#[derive(Debug, Clone)]
struct Queued {
    id: String,
    body: String,
    keys: Vec<String>,
    attributes: Vec<(String, String)>,
    receives: u32,
    state: State,
    /// The invocation that sent it (a recheck).
    sent_by: Option<String>,
}

/// A message as delivered to one invocation: what its records must account for.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// SQS message id.
    pub message_id: String,
    /// `ApproximateReceiveCount` of this delivery.
    pub receive_count: u32,
    /// The source key of each event record in the body, in order.
    pub keys: Vec<String>,
}

/// The queue.
#[derive(Debug, Default)]
pub struct Queue {
    messages: Vec<Queued>,
    /// Messages sent.
    pub sent: u64,
    /// Deliveries made.
    pub deliveries: u64,
    /// Chance that a message delivered again while in flight comes with the receive count of the
    /// delivery before (Lambda's poller may invoke a batch twice, and the count is approximate).
    pub same_count: f64,
}

impl Queue {
    /// Sends a message, visible at `at`; `keys` are the source keys of its records.
    pub fn send(&mut self, body: String, keys: Vec<String>, at: u64) -> String {
        self.send_with(body, keys, Vec::new(), at)
    }

    /// Sends a message with message attributes.
    pub fn send_with(
        &mut self,
        body: String,
        keys: Vec<String>,
        attributes: Vec<(String, String)>,
        at: u64,
    ) -> String {
        self.sent += 1;
        let id = format!("m{}", self.sent);
        self.messages.push(Queued {
            id: id.clone(),
            body,
            keys,
            attributes,
            receives: 0,
            state: State::Waiting(at),
            sent_by: None,
        });
        id
    }

    /// Notes that invocation `by` sent message `id`.
    pub fn sent_by(&mut self, id: &str, by: &str) {
        if let Some(m) = self.messages.iter_mut().find(|m| m.id == id) {
            m.sent_by = Some(by.to_owned());
        }
    }

    /// Whether invocation `by` sent a recheck standing for message `id`.
    pub fn recheck_sent_for(&self, id: &str, by: &str) -> bool {
        self.messages.iter().any(|m| {
            m.sent_by.as_deref() == Some(by)
                && m.attributes
                    .iter()
                    .any(|(k, v)| k == s3_oss_sync::sync::recheck::RECHECK_OF && v == id)
        })
    }

    /// The source keys of a message's records.
    pub fn keys_of(&self, id: &str) -> Vec<String> {
        self.messages
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.keys.clone())
            .unwrap_or_default()
    }

    /// Whether every message is deleted.
    pub fn drained(&self) -> bool {
        self.messages.iter().all(|m| m.state == State::Deleted)
    }

    /// Whether a message is visible at `now`.
    pub fn any_visible(&self, now: u64) -> bool {
        self.messages
            .iter()
            .any(|m| matches!(m.state, State::Waiting(at) if at <= now))
    }

    /// When the next waiting message becomes visible.
    pub fn next_visible(&self) -> Option<u64> {
        self.messages
            .iter()
            .filter_map(|m| match m.state {
                State::Waiting(at) => Some(at),
                _ => None,
            })
            .min()
    }

    /// Receives up to `max` visible messages in random order; with probability `redeliver`, one
    /// message already in flight elsewhere comes too (at-least-once).
    pub fn receive(
        &mut self,
        rng: &mut Rng,
        now: u64,
        max: usize,
        redeliver: f64,
    ) -> (Vec<SqsMessage>, Vec<Delivered>) {
        let mut visible: Vec<usize> = (0..self.messages.len())
            .filter(|&i| matches!(self.messages[i].state, State::Waiting(at) if at <= now))
            .collect();
        rng.shuffle(&mut visible);
        visible.truncate(max);
        let mut twin = None;
        if rng.chance(redeliver) {
            let flying: Vec<usize> = (0..self.messages.len())
                .filter(|&i| matches!(self.messages[i].state, State::InFlight(_)))
                .collect();
            if !flying.is_empty() {
                let i = flying[rng.index(flying.len())];
                visible.push(i);
                if self.same_count > 0.0 && rng.chance(self.same_count) {
                    twin = Some(i);
                }
            }
        }
        let mut out = Vec::new();
        let mut delivered = Vec::new();
        for i in visible {
            let m = &mut self.messages[i];
            if twin != Some(i) {
                m.receives += 1;
            }
            m.state = match m.state {
                State::InFlight(n) => State::InFlight(n + 1),
                _ => State::InFlight(1),
            };
            self.deliveries += 1;
            let mut msg = s3_oss_sync::aws::sqs_poll::lambda_message(&m.id, &m.body, m.receives);
            for (k, v) in &m.attributes {
                msg.message_attributes
                    .insert(k.clone(), s3_oss_sync::sync::recheck::string_attribute(v));
            }
            out.push(msg);
            delivered.push(Delivered {
                message_id: m.id.clone(),
                receive_count: m.receives,
                keys: m.keys.clone(),
            });
        }
        (out, delivered)
    }

    /// The end of one delivery of a message: deleted if acknowledged; otherwise visible again
    /// at `again` once no invocation holds it.
    pub fn settle(&mut self, id: &str, acknowledged: bool, again: u64) {
        let Some(m) = self.messages.iter_mut().find(|m| m.id == id) else {
            return;
        };
        m.state = match (m.state, acknowledged) {
            (State::Deleted, _) | (_, true) => State::Deleted,
            (State::InFlight(n), false) if n > 1 => State::InFlight(n - 1),
            _ => State::Waiting(again),
        };
    }
}
