//! The write-ahead rechecks of a batch ([`crate::sync::copy::WriteAhead`]): one per message whose
//! jobs write, sent before the first write, and the range jobs of a fanned-out copy; and how
//! rechecks are sent within a cut-off.

use crate::sync::copy::{Job, WriteAhead};
use crate::sync::recheck::{self, Recheck, RecheckQueue};
use crate::sync::resume::RangeJob;
use futures_util::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Whether a write-ahead recheck was sent (once, by the first job of its message that writes).
pub(super) type SentOnce = tokio::sync::OnceCell<Result<(), String>>;

/// The write-ahead rechecks of a batch: one per message whose jobs write, sent before the first
/// write (see [`crate::sync::copy`], "Why it converges"), shared by the message's jobs.
pub(super) struct WriteAheads<'a, Q> {
    pub(super) queue: &'a Q,
    /// The invocation's deadline, when the delay must also outlast it (in Lambda the configured
    /// timeout could be set lower than the function's real one): at least the time left to it
    /// plus [`recheck::SLACK`].
    pub(super) outlast: Option<tokio::time::Instant>,
    /// By the message the jobs stand for.
    pub(super) rechecks: BTreeMap<&'a str, (Recheck, SentOnce)>,
    /// Messages with a job that writes without reading the destination first
    /// ([`decide::reads_dest_first`]): it almost surely writes, so their write-aheads go in one
    /// send (SQS: one `SendMessageBatch` per ten) when the first of them is needed, instead of
    /// one request each.
    ///
    /// [`decide::reads_dest_first`]: crate::sync::decide::reads_dest_first
    pub(super) together: BTreeSet<&'a str>,
    /// The outcome of that one send, by message.
    pub(super) together_sent: tokio::sync::OnceCell<BTreeMap<&'a str, Result<(), String>>>,
}

impl<Q> WriteAheads<'_, Q> {
    /// The recheck to send now: its delay outlasts the invocation's deadline where it must.
    fn prepared(&self, recheck: &Recheck) -> Recheck {
        let mut recheck = recheck.clone();
        if let Some(deadline) = self.outlast {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            recheck.after = recheck.after.max(left + recheck::SLACK);
        }
        recheck
    }
}

impl<Q: RecheckQueue> WriteAhead for WriteAheads<'_, Q> {
    fn before_write<'a>(&'a self, job: &'a Job<'_>) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let id = job.message_id.unwrap_or_default();
            let Some((recheck, sent)) = self.rechecks.get(id) else {
                return Err(format!(
                    "no message to recheck is known for the job of {}",
                    job.dest_key
                ));
            };
            // No timeout of their own: the job around a send is stopped at the cut-off, and
            // recorded so (`InvocationDeadline`); another job then sends what it left.
            if self.together.contains(id) {
                let sent = self
                    .together_sent
                    .get_or_init(|| async {
                        let (ids, list): (Vec<&str>, Vec<Recheck>) = self
                            .together
                            .iter()
                            .filter_map(|m| {
                                self.rechecks.get(m).map(|(r, _)| (*m, self.prepared(r)))
                            })
                            .unzip();
                        let results = send_by(self.queue, &list, None).await;
                        ids.into_iter().zip(results).collect()
                    })
                    .await;
                if let Some(Ok(())) = sent.get(id) {
                    return Ok(());
                }
                // Its entry failed (or was not answered): it is sent on its own below, so one
                // refused request does not stop every job of the batch.
            }
            sent.get_or_init(|| async {
                let recheck = self.prepared(recheck);
                send_by(self.queue, std::slice::from_ref(&recheck), None)
                    .await
                    .pop()
                    .unwrap_or_else(|| Err("the recheck queue answered nothing".to_owned()))
            })
            .await
            .clone()
        })
    }

    fn send_ranges<'a>(
        &'a self,
        job: &'a Job<'_>,
        ranges: &'a [RangeJob],
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let Some((base, _)) = self.rechecks.get(job.message_id.unwrap_or_default()) else {
                return Err(format!(
                    "no message is known for the job of {}",
                    job.dest_key
                ));
            };
            // Each range job is the message again, with its range, to run at once; it starts its
            // own chain of deliveries.
            let jobs: Vec<Recheck> = ranges
                .iter()
                .map(|r| Recheck {
                    after: Duration::ZERO,
                    attempts: 0,
                    range: Some(r.attribute()),
                    ..base.clone()
                })
                .collect();
            let failed: Vec<String> = send_by(self.queue, &jobs, None)
                .await
                .into_iter()
                .zip(ranges)
                .filter_map(|(sent, r)| sent.err().map(|e| format!("{}: {e}", r.attribute())))
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            }
        })
    }
}

/// Sends rechecks, each failed if the cut-off comes first.
pub(super) async fn send_by<Q: RecheckQueue>(
    queue: &Q,
    rechecks: &[Recheck],
    by: Option<tokio::time::Instant>,
) -> Vec<Result<(), String>> {
    let late = || vec![Err("the invocation's cut-off came first".to_owned()); rechecks.len()];
    let mut results = match by {
        None => queue.send(rechecks).await,
        Some(by) => tokio::time::timeout_at(by, queue.send(rechecks))
            .await
            .unwrap_or_else(|_| late()),
    };
    results.resize_with(rechecks.len(), || {
        Err("the recheck queue answered for fewer rechecks than it was given".to_owned())
    });
    results
}
