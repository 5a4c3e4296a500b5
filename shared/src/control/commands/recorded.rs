//! Test doubles for the commands: a terminal that records what a command noted, printed and
//! showed, with a stop flag the test sets; an event queue that records the bodies it took; a
//! checkpoint store that keeps every checkpoint saved.

use super::terminal::{Activity, Terminal};
use crate::control::checkpoint::{Checkpoint, CheckpointStore};
use crate::control::ControlError;
use crate::store::error::StoreError;
use crate::store::queue::EventQueue;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// What a recorded activity was shown, and how it ended.
#[derive(Debug, Default)]
pub(crate) struct Shown {
    /// The first message, then every one set.
    pub messages: Mutex<Vec<String>>,
    /// The last position set.
    pub position: Mutex<u64>,
    /// `finish`, `abandon`, or empty while running.
    pub ended: Mutex<&'static str>,
}

impl Activity for Shown {
    fn set_message(&self, message: String) {
        self.messages.lock().unwrap().push(message);
    }
    fn set_position(&self, done: u64) {
        *self.position.lock().unwrap() = done;
    }
    fn finish(&self) {
        *self.ended.lock().unwrap() = "finish";
    }
    fn abandon(&self) {
        *self.ended.lock().unwrap() = "abandon";
    }
}

/// A terminal that records.
#[derive(Default)]
pub(crate) struct Recorded {
    /// Notes, without `ctl: `.
    pub notes: Mutex<Vec<String>>,
    /// Everything printed.
    pub printed: Mutex<String>,
    /// Every activity started, in order.
    pub activities: Mutex<Vec<Arc<Shown>>>,
    /// The stop flag handed out.
    pub stop: Arc<AtomicBool>,
    /// Times the stop flag was asked for.
    pub stop_asked: AtomicU32,
}

impl Recorded {
    /// A terminal whose operator has already asked to stop.
    pub fn stopped() -> Self {
        let t = Self::default();
        t.stop.store(true, Ordering::Relaxed);
        t
    }

    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }

    pub fn printed(&self) -> String {
        self.printed.lock().unwrap().clone()
    }

    pub fn activity(&self, n: usize) -> Arc<Shown> {
        self.activities.lock().unwrap()[n].clone()
    }

    fn start(&self, message: Option<&str>) -> Arc<dyn Activity> {
        let shown = Arc::new(Shown::default());
        if let Some(m) = message {
            shown.set_message(m.to_owned());
        }
        self.activities.lock().unwrap().push(shown.clone());
        shown
    }
}

impl Terminal for Recorded {
    fn note(&self, line: &str) {
        self.notes.lock().unwrap().push(line.to_owned());
    }
    fn print(&self, text: &str) {
        self.printed.lock().unwrap().push_str(text);
    }
    fn spinner(&self, message: &str) -> Arc<dyn Activity> {
        self.start(Some(message))
    }
    fn counter(&self, _total: u64) -> Arc<dyn Activity> {
        self.start(None)
    }
    fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop_asked.fetch_add(1, Ordering::Relaxed);
        self.stop.clone()
    }
}

/// A queue that records the bodies it took; the batch numbered `fail_at` (0-based) fails with a
/// call error.
#[derive(Default)]
pub(crate) struct Queue {
    pub sent: Mutex<Vec<String>>,
    pub batches: AtomicU32,
    pub fail_at: Option<u32>,
}

impl Queue {
    /// The keys of the events sent, with their event names.
    pub fn events(&self) -> Vec<(String, String)> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|b| {
                let crate::event::Message::Events(e) = crate::event::parse_message(b).unwrap()
                else {
                    panic!("{b}")
                };
                let e = e[0].clone().unwrap();
                (e.key, e.name)
            })
            .collect()
    }
}

impl EventQueue for Queue {
    async fn send_batch(&self, bodies: Vec<String>) -> Result<(), StoreError> {
        let n = self.batches.fetch_add(1, Ordering::Relaxed);
        if Some(n) == self.fail_at {
            return Err(StoreError::Call {
                service: "SQS",
                op: "SendMessageBatch",
                source: "injected".into(),
                transient: true,
            });
        }
        self.sent.lock().unwrap().extend(bodies);
        Ok(())
    }
    async fn waiting(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// Checkpoints kept in memory, every save.
#[derive(Default)]
pub(crate) struct Saved(pub Mutex<Vec<Checkpoint>>);

impl CheckpointStore for Saved {
    fn load(&self) -> Result<Option<Checkpoint>, ControlError> {
        Ok(self.0.lock().unwrap().last().cloned())
    }
    fn save(&self, cp: &Checkpoint) -> Result<(), ControlError> {
        self.0.lock().unwrap().push(cp.clone());
        Ok(())
    }
}

/// A task's control settings from pairs (the rest unset).
pub(crate) fn control_config(pairs: &[(&str, &str)]) -> crate::config::ControlConfig {
    crate::config::ControlConfig::from_lookup(|k| {
        pairs
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap()
}

/// The settings of task `t1`: bucket `src`, prefix `data/`.
pub(crate) fn task() -> crate::config::ControlConfig {
    control_config(&[
        ("TASK_ID", "t1"),
        ("SOURCE_BUCKET", "src"),
        ("SOURCE_PREFIX", "data/"),
        ("TASK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/t1"),
    ])
}
