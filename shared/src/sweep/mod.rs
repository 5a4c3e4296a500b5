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

use crate::oss::{Error, MultipartUpload, OssClient, UploadsPage};
use copies::{CheckpointObjects, Copies, ReadLimits, Select};
use serde::Serialize;
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

/// The multipart uploads of one bucket, as the sweep sees them.
pub trait UploadStore: Send + Sync {
    /// One page of the uploads in progress under `prefix`, after `marker`.
    fn list(
        &self,
        prefix: &str,
        marker: Option<(&str, &str)>,
        max: u32,
    ) -> impl Future<Output = Result<UploadsPage, Error>> + Send;

    /// Aborts one upload.
    fn abort(&self, key: &str, upload_id: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The real store: a bucket through [`OssClient`].
#[derive(Debug, Clone)]
pub struct OssUploads {
    client: OssClient,
    bucket: String,
}

impl OssUploads {
    /// A bucket reached through a client.
    pub fn new(client: OssClient, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

impl UploadStore for OssUploads {
    async fn list(
        &self,
        prefix: &str,
        marker: Option<(&str, &str)>,
        max: u32,
    ) -> Result<UploadsPage, Error> {
        self.client
            .list_multipart_uploads(&self.bucket, prefix, marker, max)
            .await
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), Error> {
        self.client.abort_upload(&self.bucket, key, upload_id).await
    }
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

/// Why a sweep stopped before the end of the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// It made `max_requests` requests.
    RequestBudget,
    /// It ran out of time.
    TimeBudget,
}

/// An upload the sweep picked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PickedUpload {
    /// The key.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// Its age in seconds.
    pub age_secs: i64,
}

/// An abort that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AbortFailure {
    /// The key.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// The OSS error code (or the client's: `TransportError`, ...).
    pub code: String,
    /// Whether the next sweep may succeed.
    pub transient: bool,
    /// The error, with its causes.
    pub message: String,
}

/// What a sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepSummary {
    /// The prefix swept.
    pub prefix: String,
    /// The age setting, in seconds.
    pub older_than_secs: u64,
    /// Whether nothing was aborted on purpose.
    pub dry_run: bool,
    /// Uploads listed.
    pub listed: u64,
    /// Stale uploads aborted.
    pub aborted: u64,
    /// Stale uploads that were gone when aborted (completed or aborted meanwhile).
    pub already_gone: u64,
    /// Uploads kept because they are recent.
    pub recent: u64,
    /// Uploads kept because their initiation time could not be read.
    pub undated: u64,
    /// Uploads kept because a copy in progress resumes them.
    pub resuming: u64,
    /// Copies in progress known to the sweep: uploads named by a checkpoint written within the
    /// age.
    pub live_copies: u64,
    /// Checkpoints that could not be used (`key: why`); those whose body is damaged are ignored.
    pub unreadable_checkpoints: Vec<String>,
    /// Set when nothing was aborted because the copies in progress could not all be known: why.
    /// The stale uploads are then in `would_abort`, as in a dry run.
    pub held: Option<String>,
    /// Uploads listed outside the prefix (none, from a correct listing).
    pub outside_prefix: u64,
    /// Stale uploads whose abort failed.
    pub failed: Vec<AbortFailure>,
    /// In a dry run (or a held sweep), the stale uploads (what a real run would abort).
    pub would_abort: Vec<PickedUpload>,
    /// Age in seconds of the oldest upload listed under the prefix.
    pub oldest_age_secs: Option<i64>,
    /// Requests made (list pages and aborts).
    pub requests: u32,
    /// Set when a bound stopped the sweep before the end of the listing.
    pub stopped: Option<Stopped>,
}

impl SweepSummary {
    /// A few lines for a person: what was listed, kept, aborted, and what failed.
    pub fn render(&self) -> String {
        let mut out = format!(
            "prefix            {:?}\nolder than        {} h\nlisted            {} ({} recent, {} resuming, {} undated)\n",
            self.prefix,
            self.older_than_secs / 3600,
            self.listed,
            self.recent,
            self.resuming,
            self.undated
        );
        let oldest = self
            .oldest_age_secs
            .map_or("none".to_owned(), |a| format!("{:.1} h", a as f64 / 3600.0));
        out.push_str(&format!("oldest            {oldest}\n"));
        out.push_str(&format!(
            "copies live       {} (checkpoints written in the past {} h)\n",
            self.live_copies,
            self.older_than_secs / 3600
        ));
        for c in &self.unreadable_checkpoints {
            out.push_str(&format!("checkpoint        {c}\n"));
        }
        if let Some(why) = &self.held {
            out.push_str(&format!("held              nothing aborted: {why}\n"));
        }
        if self.dry_run || self.held.is_some() {
            out.push_str(&format!(
                "would abort       {} ({}: nothing aborted)\n",
                self.would_abort.len(),
                if self.dry_run { "dry run" } else { "held" }
            ));
            for p in &self.would_abort {
                out.push_str(&format!(
                    "  {} {} ({:.1} h)\n",
                    p.key,
                    p.upload_id,
                    p.age_secs as f64 / 3600.0
                ));
            }
        } else {
            out.push_str(&format!(
                "aborted           {} (and {} already gone)\n",
                self.aborted, self.already_gone
            ));
        }
        for f in &self.failed {
            out.push_str(&format!(
                "failed            {} {}: {} ({})\n",
                f.key,
                f.upload_id,
                f.code,
                if f.transient {
                    "may pass next time"
                } else {
                    "permanent"
                }
            ));
        }
        if let Some(stop) = self.stopped {
            out.push_str(&format!(
                "stopped early     {stop:?} after {} requests; run again for the rest\n",
                self.requests
            ));
        }
        out
    }
}

/// A sweep that could not list: what it did before, and why it stopped.
#[derive(Debug, thiserror::Error)]
#[error("listing the multipart uploads failed after {} listed and {} aborted: {source}", .summary.listed, .summary.aborted)]
pub struct SweepError {
    /// What the sweep did before the listing failed.
    pub summary: Box<SweepSummary>,
    /// The listing's error.
    #[source]
    pub source: Error,
}

impl SweepError {
    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        self.source.is_transient()
    }
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

/// One CloudWatch EMF line for a sweep run by the report function: `UploadsAborted`,
/// `UploadAbortFailures`, `UploadSweepFailures` (1 when the sweep could not list, or was held
/// because the copies in progress could not be read; else 0) and `OldestUploadAge` (seconds).
pub fn metrics_line(task: &str, outcome: &Result<SweepSummary, SweepError>, now_ms: i64) -> String {
    let (aborted, abort_failures, sweep_failures, oldest) = match outcome {
        Ok(s) => (
            s.aborted,
            s.failed.len(),
            u32::from(s.held.is_some()),
            s.oldest_age_secs,
        ),
        Err(e) => (
            e.summary.aborted,
            e.summary.failed.len(),
            1,
            e.summary.oldest_age_secs,
        ),
    };
    let mut metrics = vec![
        serde_json::json!({"Name": "UploadsAborted", "Unit": "Count"}),
        serde_json::json!({"Name": "UploadAbortFailures", "Unit": "Count"}),
        serde_json::json!({"Name": "UploadSweepFailures", "Unit": "Count"}),
    ];
    let mut doc = serde_json::json!({
        "Task": task,
        "UploadsAborted": aborted,
        "UploadAbortFailures": abort_failures,
        "UploadSweepFailures": sweep_failures,
    });
    if let Some(age) = oldest {
        metrics.push(serde_json::json!({"Name": "OldestUploadAge", "Unit": "Seconds"}));
        doc["OldestUploadAge"] = serde_json::json!(age);
    }
    doc["_aws"] = serde_json::json!({
        "Timestamp": now_ms,
        "CloudWatchMetrics": [{
            "Namespace": crate::telemetry::NAMESPACE,
            "Dimensions": [["Task"]],
            "Metrics": metrics,
        }]
    });
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oss::ServiceError;
    use std::sync::Mutex;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-30 12:00 UTC);

    fn up(key: &str, id: &str, hours_ago: Option<i64>) -> MultipartUpload {
        MultipartUpload {
            key: key.into(),
            upload_id: id.into(),
            initiated: hours_ago.map(|h| NOW - time::Duration::hours(h)),
        }
    }

    fn rule(prefix: &str) -> SweepRule {
        SweepRule::new(prefix, Duration::from_secs(24 * 3600), NOW)
    }

    #[test]
    fn verdicts() {
        let r = rule("mirror/");
        let cases = [
            (up("mirror/a", "1", Some(25)), Verdict::Abort),
            (up("mirror/a", "2", Some(24)), Verdict::Recent),
            (up("mirror/a", "3", Some(1)), Verdict::Recent),
            (up("mirror/a", "4", Some(-2)), Verdict::Recent),
            (up("mirror/a", "5", None), Verdict::Undated),
            (up("other/a", "6", Some(100)), Verdict::OutsidePrefix),
            (up("mirror", "7", Some(100)), Verdict::OutsidePrefix),
        ];
        for (u, want) in &cases {
            assert_eq!(verdict(u, &r), *want, "{u:?}");
        }
        let uploads: Vec<MultipartUpload> = cases.into_iter().map(|(u, _)| u).collect();
        let picked: Vec<&str> = pick(&uploads, &r)
            .iter()
            .map(|u| u.upload_id.as_str())
            .collect();
        assert_eq!(picked, ["1"]);
        assert_eq!(pick(&uploads, &rule("")).len(), 3);
    }

    #[test]
    fn time_left_respects_the_deadline_and_the_margin() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let min = Duration::from_secs(60);
        let margin = Duration::from_secs(10);
        assert_eq!(time_left(min, None, now, margin), min);
        let far = now + Duration::from_secs(600);
        assert_eq!(time_left(min, Some(far), now, margin), min);
        let near = now + Duration::from_secs(30);
        assert_eq!(
            time_left(min, Some(near), now, margin),
            Duration::from_secs(20)
        );
        let past = now - Duration::from_secs(5);
        assert_eq!(time_left(min, Some(past), now, margin), Duration::ZERO);
    }

    /// Pages of fixed size over a list of uploads; aborts recorded; some fail.
    struct Fake {
        uploads: Vec<MultipartUpload>,
        aborted: Mutex<Vec<String>>,
        fail_abort: Vec<(&'static str, u16, &'static str)>,
        fail_list: bool,
    }

    impl Fake {
        fn new(uploads: Vec<MultipartUpload>) -> Self {
            Self {
                uploads,
                aborted: Mutex::default(),
                fail_abort: Vec::new(),
                fail_list: false,
            }
        }
    }

    fn service(status: u16, code: &str) -> Error {
        Error::Service(Box::new(ServiceError::from_response(
            status,
            Some("RID"),
            None,
            None,
            format!("<Error><Code>{code}</Code><Message>m</Message></Error>").as_bytes(),
        )))
    }

    impl UploadStore for Fake {
        async fn list(
            &self,
            prefix: &str,
            marker: Option<(&str, &str)>,
            max: u32,
        ) -> Result<UploadsPage, Error> {
            if self.fail_list {
                return Err(service(403, "AccessDenied"));
            }
            let start = marker.map_or(0, |(_, id)| {
                self.uploads.iter().position(|u| u.upload_id == id).unwrap() + 1
            });
            let rest: Vec<MultipartUpload> = self.uploads[start..]
                .iter()
                .filter(|u| u.key.starts_with(prefix))
                .cloned()
                .collect();
            let n = rest.len().min(max as usize);
            let uploads = rest[..n].to_vec();
            let next = (rest.len() > n).then(|| {
                let l = uploads.last().unwrap();
                (l.key.clone(), l.upload_id.clone())
            });
            Ok(UploadsPage { uploads, next })
        }

        async fn abort(&self, _key: &str, upload_id: &str) -> Result<(), Error> {
            if let Some((_, status, code)) = self.fail_abort.iter().find(|f| f.0 == upload_id) {
                return Err(service(*status, code));
            }
            self.aborted.lock().unwrap().push(upload_id.to_owned());
            Ok(())
        }
    }

    fn options(prefix: &str, dry_run: bool, page_size: u32, max_requests: u32) -> SweepOptions {
        SweepOptions {
            rule: rule(prefix),
            dry_run,
            limits: SweepLimits {
                max_requests,
                time_budget: Duration::from_secs(60),
                page_size,
            },
            hold: None,
        }
    }

    fn mixed() -> Vec<MultipartUpload> {
        vec![
            up("m/a", "1", Some(48)),
            up("m/b", "2", Some(2)),
            up("m/c", "3", Some(30)),
            up("m/d", "4", None),
            up("m/e", "5", Some(72)),
            up("m/f", "6", Some(26)),
            up("x/g", "7", Some(99)),
        ]
    }

    #[tokio::test]
    async fn pages_through_and_aborts_only_the_stale() {
        let mut fake = Fake::new(mixed());
        fake.fail_abort = vec![("5", 403, "AccessDenied"), ("6", 404, "NoSuchUpload")];
        let s = sweep_uploads(&fake, &options("m/", false, 2, 100))
            .await
            .unwrap();
        assert_eq!(*fake.aborted.lock().unwrap(), ["1", "3"]);
        assert_eq!(
            (s.listed, s.aborted, s.already_gone, s.recent, s.undated),
            (6, 2, 1, 1, 1)
        );
        assert_eq!(s.failed.len(), 1);
        assert_eq!(
            (s.failed[0].upload_id.as_str(), s.failed[0].code.as_str()),
            ("5", "AccessDenied")
        );
        assert!(!s.failed[0].transient);
        assert_eq!(s.oldest_age_secs, Some(72 * 3600));
        // 3 pages of 2 and 4 aborts.
        assert_eq!((s.requests, s.stopped), (7, None));
    }

    #[tokio::test]
    async fn a_dry_run_aborts_nothing_and_names_what_it_would() {
        let fake = Fake::new(mixed());
        let s = sweep_uploads(&fake, &options("m/", true, 1000, 100))
            .await
            .unwrap();
        let text = s.render();
        for want in [
            "would abort       4 (dry run",
            "  m/e 5 (72.0 h)",
            "oldest            72.0 h",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        assert!(fake.aborted.lock().unwrap().is_empty());
        let ids: Vec<&str> = s.would_abort.iter().map(|p| p.upload_id.as_str()).collect();
        assert_eq!(ids, ["1", "3", "5", "6"]);
        assert_eq!(s.would_abort[0].age_secs, 48 * 3600);
        assert_eq!((s.aborted, s.requests), (0, 1));
    }

    #[tokio::test]
    async fn the_request_budget_stops_the_sweep() {
        let fake = Fake::new(mixed());
        let s = sweep_uploads(&fake, &options("m/", false, 2, 3))
            .await
            .unwrap();
        // Page 1 (request 1) aborts "1" (request 2); page 2 (request 3) cannot abort "3".
        assert_eq!(*fake.aborted.lock().unwrap(), ["1"]);
        assert_eq!((s.requests, s.stopped), (3, Some(Stopped::RequestBudget)));
    }

    #[tokio::test]
    async fn a_failed_listing_is_an_error_carrying_what_was_done() {
        let mut fake = Fake::new(mixed());
        fake.fail_list = true;
        let e = sweep_uploads(&fake, &options("m/", false, 2, 100))
            .await
            .unwrap_err();
        assert_eq!(e.source.code(), "AccessDenied");
        assert!(!e.is_transient());
        assert_eq!(e.summary.requests, 1);
        let line = metrics_line("t1", &Err(e), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["UploadSweepFailures"], 1);
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][0],
            "Task"
        );
    }

    #[test]
    fn a_copy_in_progress_keeps_its_upload_until_its_checkpoint_is_older_than_the_age() {
        let mut r = rule("mirror/");
        let hours_ago = |h: i64| NOW - time::Duration::hours(h);
        r.checkpoints = [
            ("live".to_owned(), hours_ago(2)),
            ("edge".to_owned(), hours_ago(24)),
            ("stale".to_owned(), hours_ago(25)),
            ("skewed".to_owned(), hours_ago(-1)),
            ("elsewhere".to_owned(), hours_ago(0)),
        ]
        .into_iter()
        .collect();
        let cases = [
            (up("mirror/a", "live", Some(72)), Verdict::Resuming),
            (up("mirror/a", "live", None), Verdict::Resuming),
            (up("mirror/b", "edge", Some(72)), Verdict::Resuming),
            (up("mirror/c", "stale", Some(72)), Verdict::Abort),
            (up("mirror/c", "stale", Some(3)), Verdict::Recent),
            (up("mirror/d", "skewed", Some(72)), Verdict::Resuming),
            (up("other/e", "elsewhere", Some(72)), Verdict::OutsidePrefix),
            (up("mirror/f", "unnamed", Some(72)), Verdict::Abort),
        ];
        for (u, want) in &cases {
            assert_eq!(verdict(u, &r), *want, "{u:?}");
        }
        let uploads: Vec<MultipartUpload> = cases.into_iter().map(|(u, _)| u).collect();
        let picked: Vec<&str> = pick(&uploads, &r)
            .iter()
            .map(|u| u.upload_id.as_str())
            .collect();
        assert_eq!(picked, ["stale", "unnamed"]);
    }

    #[test]
    fn checkpointed_uploads_take_the_latest_write_and_keep_the_undated() {
        use crate::sweep::copies::tests::{checkpoint, NOW as CNOW};
        assert_eq!(CNOW, NOW);
        let mut undated = checkpoint("u", "U3", 10, 5, 1, 0);
        undated.updated_at = "soon".into();
        let copies = Copies {
            checkpoints: vec![
                ("k1".into(), checkpoint("a", "U1", 10, 5, 1, 30)),
                ("k2".into(), checkpoint("a2", "U1", 10, 5, 1, 3)),
                ("k3".into(), checkpoint("b", "U2", 10, 5, 1, 40)),
                ("k4".into(), undated),
            ],
            ..Copies::default()
        };
        let (named, bad) = checkpointed_uploads(&copies, NOW);
        let h = |h: i64| NOW - time::Duration::hours(h);
        assert_eq!(named["U1"], h(3));
        assert_eq!(named["U2"], h(40));
        assert_eq!(named["U3"], NOW);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].starts_with("k4: updated_at \"soon\""), "{bad:?}");
    }

    fn task_options(dry_run: bool) -> SweepOptions {
        options("m/", dry_run, 1000, 100)
    }

    /// Uploads of three copies (live, stale, with a damaged checkpoint) and one without any.
    fn copies_and_uploads() -> (crate::sweep::copies::tests::Fake, Fake, String) {
        use crate::sweep::copies::task_prefix;
        use crate::sweep::copies::tests::{checkpoint, Fake as Checkpoints};
        let mut cps = Checkpoints::with(&[
            // Written an hour ago: live.
            (checkpoint("a", "live", 100, 10, 5, 1), 1),
            // Written 30 hours ago (and last modified then): stale, not even read.
            (checkpoint("b", "stale", 100, 10, 5, 30), 30),
            // Last modified an hour ago but its body says 30 hours: stale.
            (checkpoint("c", "stale2", 100, 10, 5, 30), 1),
        ]);
        cps.page = 1;
        let prefix = task_prefix("results", "t1");
        cps.objects.insert(
            format!("{prefix}zz-damaged.json"),
            (bytes::Bytes::from_static(b"[1,2"), NOW),
        );
        let uploads = Fake::new(vec![
            up("m/a", "live", Some(72)),
            up("m/b", "stale", Some(72)),
            up("m/c", "stale2", Some(72)),
            up("m/d", "orphan", Some(48)),
            up("m/e", "young", Some(1)),
        ]);
        (cps, uploads, prefix)
    }

    #[tokio::test]
    async fn the_task_sweep_keeps_the_uploads_of_live_copies() {
        use crate::sweep::copies::READ_LIMITS;
        let (cps, uploads, prefix) = copies_and_uploads();
        let s = sweep_task(&uploads, &cps, &prefix, &task_options(false), READ_LIMITS)
            .await
            .unwrap();
        assert_eq!(
            *uploads.aborted.lock().unwrap(),
            ["stale", "stale2", "orphan"]
        );
        assert_eq!(
            (s.listed, s.aborted, s.resuming, s.recent, s.live_copies),
            (5, 3, 1, 1, 1)
        );
        assert_eq!(s.held, None);
        assert_eq!(s.unreadable_checkpoints.len(), 1);
        assert!(
            s.unreadable_checkpoints[0].contains("zz-damaged.json: damaged"),
            "{:?}",
            s.unreadable_checkpoints
        );
        // The checkpoint last modified 30 hours ago was listed, never read.
        assert_eq!(cps.gets.lock().unwrap().len(), 3);
        let text = s.render();
        for want in [
            "listed            5 (1 recent, 1 resuming, 0 undated)",
            "copies live       1 (checkpoints written in the past 24 h)",
            "checkpoint        results-checkpoints/t1/zz-damaged.json: damaged",
            "aborted           3",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        let line = metrics_line("t1", &Ok(s), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["UploadSweepFailures"], 0);
    }

    #[tokio::test]
    async fn the_task_sweep_aborts_nothing_when_the_checkpoints_are_not_known() {
        use crate::sweep::copies::READ_LIMITS;
        // The listing fails.
        let (mut cps, uploads, prefix) = copies_and_uploads();
        cps.fail_list = true;
        let s = sweep_task(&uploads, &cps, &prefix, &task_options(false), READ_LIMITS)
            .await
            .unwrap();
        assert!(uploads.aborted.lock().unwrap().is_empty());
        let held = s.held.clone().unwrap();
        assert!(held.contains("could not be listed"), "{held}");
        let mut would: Vec<&str> = s.would_abort.iter().map(|p| p.upload_id.as_str()).collect();
        would.sort_unstable();
        assert_eq!(would, ["live", "orphan", "stale", "stale2"]);
        assert!(!s.dry_run);
        let text = s.render();
        for want in [
            "held              nothing aborted: the checkpoints under",
            "would abort       4 (held: nothing aborted)",
        ] {
            assert!(text.contains(want), "{want:?} not in\n{text}");
        }
        let v: serde_json::Value = serde_json::from_str(&metrics_line("t1", &Ok(s), 1)).unwrap();
        assert_eq!(v["UploadSweepFailures"], 1);

        // A read fails: the live copy might be that one.
        let (mut cps, uploads, prefix) = copies_and_uploads();
        let live_key = cps
            .objects
            .iter()
            .find(|(_, (b, _))| String::from_utf8_lossy(b).contains("\"live\""))
            .map(|(k, _)| k.clone())
            .unwrap();
        cps.fail_get = vec![live_key];
        let s = sweep_task(&uploads, &cps, &prefix, &task_options(false), READ_LIMITS)
            .await
            .unwrap();
        assert!(uploads.aborted.lock().unwrap().is_empty());
        assert!(s
            .held
            .unwrap()
            .contains("1 checkpoint(s) could not be read"));

        // A bound is reached.
        let (cps, uploads, prefix) = copies_and_uploads();
        let few = ReadLimits {
            max_read: 1,
            ..READ_LIMITS
        };
        let s = sweep_task(&uploads, &cps, &prefix, &task_options(false), few)
            .await
            .unwrap();
        assert!(uploads.aborted.lock().unwrap().is_empty());
        assert!(s.held.unwrap().contains("only the first 1 were read"));
    }
}
