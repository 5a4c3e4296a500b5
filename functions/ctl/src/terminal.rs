//! The terminal `ctl`'s commands run in: notes on stderr, output on stdout, progress drawn by
//! indicatif (on stderr, only when it is a terminal), and Ctrl-C or SIGTERM as the operator's stop.

use indicatif::{ProgressBar, ProgressStyle};
use s3_oss_sync::control::commands::terminal::{Activity, Terminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The process's streams.
pub struct Console;

struct Bar(ProgressBar);

impl Activity for Bar {
    fn set_message(&self, message: String) {
        self.0.set_message(message);
    }
    fn set_position(&self, done: u64) {
        self.0.set_position(done);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
    fn abandon(&self) {
        self.0.abandon();
    }
}

impl Terminal for Console {
    fn note(&self, line: &str) {
        eprintln!("ctl: {line}");
    }

    fn print(&self, text: &str) {
        print!("{text}");
    }

    fn spinner(&self, message: &str) -> Arc<dyn Activity> {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.set_message(message.to_owned());
        Arc::new(Bar(bar))
    }

    fn counter(&self, total: u64) -> Arc<dyn Activity> {
        Arc::new(Bar(ProgressBar::new(total)))
    }

    fn stop_flag(&self) -> Arc<AtomicBool> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!(
                "ctl: stopping: waiting for the batches in flight, then saving the checkpoint"
            );
            flag.store(true, Ordering::Relaxed);
        });
        stop
    }
}
