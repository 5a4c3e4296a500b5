//! The sweep of stale multipart uploads: the safety net for uploads a killed or timed-out sync
//! function could not abort, which OSS keeps (and bills the parts of) until someone does.
//!
//! The protocol: first read the task's copies in progress, the checkpoints of its resumable
//! copies ([`crate::sync::resume`], [`crate::sweep::copies`]); then page through
//! ListMultipartUploads under the task's destination prefix; for each upload, a pure [`verdict`]
//! says whether it is stale (initiated longer ago than the setting, under the prefix, and not
//! named by a checkpoint written within the setting); stale ones are aborted (or only listed, in
//! a dry run). The sweep is bounded in requests and in time, so it can run at the end of every
//! report run without risking the function's timeout; what it leaves is found by the next run.
//!
//! Why aborting by age is safe: an upload belongs either to one sync invocation, which lasts at
//! most the Lambda timeout (15 minutes, and the shortest age allowed is an hour), or to a
//! resumable copy, which may last days but writes its checkpoint at every pause (each
//! invocation's end), so a copy still moving has a checkpoint younger than the age. A checkpoint
//! older than the age belongs to a copy that stopped (its message dead-lettered, delivery paused
//! for longer than the age): its upload is aborted as any other, and the copy, if it comes back,
//! finds the upload gone and starts over. When the checkpoints cannot all be read (the listing
//! failed, a read failed, a bound was reached), the sweep aborts nothing that run
//! ([`SweepSummary::held`]) rather than guess; a checkpoint whose body is damaged cannot be
//! resumed and is only reported.

pub mod copies;
mod oss_uploads;
mod summary;

pub use oss_uploads::OssUploads;
pub use summary::{metrics_line, AbortFailure, PickedUpload, Stopped, SweepError, SweepSummary};

use crate::oss::{Error, MultipartUpload, UploadsPage};
use copies::{CheckpointObjects, Copies, ReadLimits, Select};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// Default age, in hours, after which an upload is stale (`UPLOAD_SWEEP_AGE_HOURS`).
pub const DEFAULT_AGE_HOURS: u64 = 24;
/// Shortest allowed age, in hours: well above the longest a sync invocation runs (15 minutes).
pub const MIN_AGE_HOURS: u64 = 1;
/// Longest allowed age, in hours (30 days).
pub const MAX_AGE_HOURS: u64 = 720;

/// One page of a listing of the uploads in progress, or why it failed.
pub type UploadsListing = Result<UploadsPage, Error>;

/// The multipart uploads of one bucket, as the sweep sees them.
pub trait UploadStore: Send + Sync {
    /// One page of the uploads in progress under `prefix`, after `marker`.
    fn list(
        &self,
        prefix: &str,
        marker: Option<(&str, &str)>,
        max: u32,
    ) -> impl Future<Output = UploadsListing> + Send;

    /// Aborts one upload.
    fn abort(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Which uploads are stale: under `prefix`, initiated more than `older_than` before `now`, and
/// not resumed by a copy in progress (one whose checkpoint was written at most `older_than`
/// before `now`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRule {
    /// The task's destination prefix (empty: the whole bucket).
    pub prefix: String,
    /// How old an upload must be to be aborted.
    pub older_than: Duration,
    /// The time ages are measured at.
    pub now: OffsetDateTime,
    /// The uploads named by the task's checkpoints: upload id, and when its checkpoint was last
    /// written ([`checkpointed_uploads`]).
    pub checkpoints: BTreeMap<String, OffsetDateTime>,
}

impl SweepRule {
    /// A rule that knows no checkpoints.
    pub fn new(prefix: impl Into<String>, older_than: Duration, now: OffsetDateTime) -> Self {
        Self {
            prefix: prefix.into(),
            older_than,
            now,
            checkpoints: BTreeMap::new(),
        }
    }
}

/// What the sweep does with one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stale: abort it.
    Abort,
    /// Initiated too recently (or in the future, by a skewed clock): keep it.
    Recent,
    /// Not under the task's prefix: not the task's to abort.
    OutsidePrefix,
    /// Its initiation time could not be read: keep it rather than guess.
    Undated,
    /// A copy in progress resumes it: its checkpoint was written within the age. Keep it.
    Resuming,
}

/// Decides what to do with one upload. Pure.
pub fn verdict(upload: &MultipartUpload, rule: &SweepRule) -> Verdict {
    if !upload.key.starts_with(&rule.prefix) {
        return Verdict::OutsidePrefix;
    }
    if let Some(written) = rule.checkpoints.get(&upload.upload_id) {
        if rule.now - *written <= rule.older_than {
            return Verdict::Resuming;
        }
    }
    match upload.initiated {
        None => Verdict::Undated,
        Some(at) if rule.now - at > rule.older_than => Verdict::Abort,
        Some(_) => Verdict::Recent,
    }
}

/// The uploads of a listing to abort, in listing order. Pure.
pub fn pick<'a>(uploads: &'a [MultipartUpload], rule: &SweepRule) -> Vec<&'a MultipartUpload> {
    uploads
        .iter()
        .filter(|u| verdict(u, rule) == Verdict::Abort)
        .collect()
}

/// How far one sweep may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    /// Most requests (list pages and aborts; retries not counted).
    pub max_requests: u32,
    /// Most time; no request starts after it.
    pub time_budget: Duration,
    /// Uploads asked for per page (1 to 1000).
    pub page_size: u32,
}

impl Default for SweepLimits {
    /// 500 requests and one minute, pages of 1000.
    fn default() -> Self {
        Self {
            max_requests: 500,
            time_budget: Duration::from_secs(60),
            page_size: crate::oss::multipart_list::MAX_UPLOADS_PER_PAGE,
        }
    }
}

/// What the sweep should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepOptions {
    /// Which uploads are stale.
    pub rule: SweepRule,
    /// List what would be aborted, abort nothing.
    pub dry_run: bool,
    /// Bounds.
    pub limits: SweepLimits,
    /// Abort nothing, for this reason (the copies in progress are not known); otherwise as a dry
    /// run. Set by [`sweep_task`].
    pub hold: Option<String>,
}

fn is_gone(e: &Error) -> bool {
    matches!(e, Error::Service(s) if s.status == 404 && s.code == "NoSuchUpload")
}

/// Pages through the uploads under the rule's prefix and aborts the stale ones (in a dry run, or
/// when held, lists them), within the limits. Failed aborts are counted in the summary with their
/// reasons; only a failed listing is an error. The rule's checkpoints are taken as given; see
/// [`sweep_task`] for the sweep that reads them first.
pub async fn sweep_uploads(
    store: &impl UploadStore,
    options: &SweepOptions,
) -> Result<SweepSummary, SweepError> {
    let rule = &options.rule;
    let limits = &options.limits;
    let started = tokio::time::Instant::now();
    let mut s = SweepSummary {
        prefix: rule.prefix.clone(),
        older_than_secs: rule.older_than.as_secs(),
        dry_run: options.dry_run,
        held: options.hold.clone(),
        ..SweepSummary::default()
    };
    let abort = !options.dry_run && options.hold.is_none();
    let over_budget = |requests: u32| {
        if requests >= limits.max_requests {
            Some(Stopped::RequestBudget)
        } else if started.elapsed() >= limits.time_budget {
            Some(Stopped::TimeBudget)
        } else {
            None
        }
    };
    let mut marker: Option<(String, String)> = None;
    'pages: loop {
        if let Some(stop) = over_budget(s.requests) {
            s.stopped = Some(stop);
            break;
        }
        s.requests += 1;
        let listed = store
            .list(
                &rule.prefix,
                marker.as_ref().map(|(k, u)| (k.as_str(), u.as_str())),
                limits.page_size,
            )
            .await;
        let page = match listed {
            Ok(p) => p,
            Err(source) => {
                return Err(SweepError {
                    summary: Box::new(s),
                    source,
                })
            }
        };
        for upload in &page.uploads {
            s.listed += 1;
            let age = upload.initiated.map(|at| (rule.now - at).whole_seconds());
            match verdict(upload, rule) {
                Verdict::OutsidePrefix => {
                    s.outside_prefix += 1;
                    continue;
                }
                Verdict::Recent => s.recent += 1,
                Verdict::Undated => s.undated += 1,
                Verdict::Resuming => s.resuming += 1,
                Verdict::Abort if !abort => s.would_abort.push(PickedUpload {
                    key: upload.key.clone(),
                    upload_id: upload.upload_id.clone(),
                    age_secs: age.unwrap_or_default(),
                }),
                Verdict::Abort => {
                    if let Some(stop) = over_budget(s.requests) {
                        s.stopped = Some(stop);
                        break 'pages;
                    }
                    s.requests += 1;
                    match store.abort(&upload.key, &upload.upload_id).await {
                        Ok(()) => s.aborted += 1,
                        Err(e) if is_gone(&e) => s.already_gone += 1,
                        Err(e) => {
                            tracing::warn!(key = %upload.key, upload_id = %upload.upload_id, error = %e, "could not abort a stale multipart upload");
                            s.failed.push(AbortFailure {
                                key: upload.key.clone(),
                                upload_id: upload.upload_id.clone(),
                                code: e.code().to_owned(),
                                transient: e.is_transient(),
                                message: crate::errors::error_chain(&e),
                            });
                        }
                    }
                }
            }
            if let Some(a) = age {
                s.oldest_age_secs = Some(s.oldest_age_secs.map_or(a, |o| o.max(a)));
            }
        }
        match page.next {
            None => break,
            Some(next) if marker.as_ref() == Some(&next) => {
                return Err(SweepError {
                    summary: Box::new(s),
                    source: Error::Protocol {
                        op: "ListMultipartUploads",
                        detail: "the next page's markers are the same as this page's".into(),
                    },
                });
            }
            Some(next) => marker = Some(next),
        }
    }
    Ok(s)
}

/// Slack on the results bucket's last-modified times when [`sweep_task`] chooses the checkpoints
/// to read: one last written longer ago than the age and this is stale whatever its body says
/// (the writer's clock and the store's differ by far less), so it is not read.
pub const LAST_MODIFIED_SLACK: Duration = Duration::from_secs(3600);

/// The uploads a task's checkpoints and range records name, each with when it was last written
/// (the latest, if several name one), and those whose `updated_at` does not parse (`key: why`):
/// they are taken as written at `now`, so their uploads are kept (a checkpoint no longer written
/// ages out of what [`sweep_task`] reads). Pure.
pub fn checkpointed_uploads(
    copies: &Copies,
    now: OffsetDateTime,
) -> (BTreeMap<String, OffsetDateTime>, Vec<String>) {
    let mut named: BTreeMap<String, OffsetDateTime> = BTreeMap::new();
    let mut undated = Vec::new();
    let named_by = copies
        .checkpoints
        .iter()
        .map(|(key, cp)| (key, &cp.upload_id, &cp.updated_at))
        .chain(
            copies
                .ranges
                .iter()
                .map(|(key, r)| (key, &r.upload_id, &r.updated_at)),
        );
    for (key, upload_id, updated_at) in named_by {
        let written = copies::parse_time(updated_at).unwrap_or_else(|| {
            undated.push(format!(
                "{key}: updated_at {updated_at:?} is not RFC 3339; its upload is kept"
            ));
            now
        });
        let at = named.entry(upload_id.clone()).or_insert(written);
        *at = (*at).max(written);
    }
    (named, undated)
}

/// The sweep as run for a task: reads, under `checkpoint_prefix` (the task's,
/// [`copies::task_prefix`]), the latest checkpoint or range record of each copy that wrote one
/// within the age and [`LAST_MODIFIED_SLACK`] ([`Select::LatestPerCopy`]), within `read` and the
/// sweep's time budget; keeps the uploads of those written within the age
/// ([`Verdict::Resuming`]); then sweeps ([`sweep_uploads`]) with the time left. When the
/// checkpoints cannot all be read (the listing or a read failed, a bound was reached), it aborts
/// nothing that run and says why in [`SweepSummary::held`]; a checkpoint whose body is damaged is
/// logged, listed in [`SweepSummary::unreadable_checkpoints`] and otherwise ignored.
pub async fn sweep_task(
    uploads: &impl UploadStore,
    checkpoints: &impl CheckpointObjects,
    checkpoint_prefix: &str,
    options: &SweepOptions,
    read: ReadLimits,
) -> Result<SweepSummary, SweepError> {
    let started = tokio::time::Instant::now();
    let mut options = options.clone();
    let rule = &mut options.rule;
    let since = rule.now - rule.older_than - LAST_MODIFIED_SLACK;
    let select = Select::LatestPerCopy(since);
    let reading = copies::read_copies(checkpoints, checkpoint_prefix, select, read);
    let mut unreadable = Vec::new();
    let hold = match tokio::time::timeout(options.limits.time_budget, reading).await {
        Err(_) => Some(format!(
            "reading the checkpoints under {checkpoint_prefix} took longer than the sweep's time"
        )),
        Ok(Err(e)) => Some(format!(
            "the checkpoints under {checkpoint_prefix} could not be listed: {}",
            crate::errors::error_chain(&e)
        )),
        Ok(Ok(copies)) => {
            let (named, undated) = checkpointed_uploads(&copies, rule.now);
            for (id, at) in named {
                let kept = rule.checkpoints.entry(id).or_insert(at);
                *kept = (*kept).max(at);
            }
            unreadable.extend(
                copies
                    .unreadable
                    .iter()
                    .map(|u| format!("{}: {}", u.key, u.reason)),
            );
            unreadable.extend(undated);
            let failed: Vec<_> = copies.unreadable.iter().filter(|u| u.read_failed).collect();
            match (copies.incomplete, failed.first()) {
                (Some(why), _) => Some(why),
                (None, Some(first)) => Some(format!(
                    "{} checkpoint(s) could not be read, so the copies in progress are not known \
                     (first: {}: {})",
                    failed.len(),
                    first.key,
                    first.reason
                )),
                (None, None) => None,
            }
        }
    };
    for u in &unreadable {
        tracing::warn!(checkpoint = %u, "a checkpoint of a copy in progress could not be used");
    }
    if let Some(why) = &hold {
        tracing::warn!(reason = %why, "the upload sweep aborts nothing this run");
    }
    options.hold = options.hold.or(hold);
    options.limits.time_budget = options.limits.time_budget.saturating_sub(started.elapsed());
    let rule = &options.rule;
    let live = rule
        .checkpoints
        .values()
        .filter(|at| rule.now - **at <= rule.older_than)
        .count() as u64;
    let fill = |s: &mut SweepSummary| {
        s.live_copies = live;
        s.unreadable_checkpoints = unreadable.clone();
    };
    match sweep_uploads(uploads, &options).await {
        Ok(mut s) => {
            fill(&mut s);
            Ok(s)
        }
        Err(mut e) => {
            fill(&mut e.summary);
            Err(e)
        }
    }
}

/// Time left to a sweep that must end `margin` before `deadline` (a Lambda invocation's), at most
/// `budget`; zero when there is none. Pure.
pub fn time_left(
    budget: Duration,
    deadline: Option<SystemTime>,
    now: SystemTime,
    margin: Duration,
) -> Duration {
    match deadline {
        None => budget,
        Some(d) => d
            .duration_since(now)
            .unwrap_or_default()
            .saturating_sub(margin)
            .min(budget),
    }
}

#[cfg(test)]
mod tests;
