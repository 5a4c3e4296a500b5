//! What a `ctl` command needs from the terminal it runs in: notes for the operator (stderr),
//! output printed while it runs (stdout), progress shown as it goes, and the operator's stop
//! (Ctrl-C, SIGTERM). The `ctl` binary implements it over the process's streams; the tests record
//! what a command did with it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Progress shown while a command runs: a spinner with a message, or a bar with a position.
pub trait Activity: Send + Sync {
    /// Replaces the message.
    fn set_message(&self, message: String);
    /// Moves the bar to `done`.
    fn set_position(&self, done: u64);
    /// Done: the progress is cleared.
    fn finish(&self);
    /// Given up: the progress is left where it stopped.
    fn abandon(&self);
}

/// The terminal a command runs in.
pub trait Terminal: Send + Sync {
    /// A line for the operator, on stderr after `ctl: `.
    fn note(&self, line: &str);
    /// Output, on stdout as it is.
    fn print(&self, text: &str);
    /// A spinner showing `message`.
    fn spinner(&self, message: &str) -> Arc<dyn Activity>;
    /// A bar counting to `total`.
    fn counter(&self, total: u64) -> Arc<dyn Activity>;
    /// A flag the operator's interrupt sets, from this call on: a command asks for it where an
    /// interrupt starts to mean "stop cleanly" (before that, an interrupt ends the process).
    fn stop_flag(&self) -> Arc<AtomicBool>;
}
