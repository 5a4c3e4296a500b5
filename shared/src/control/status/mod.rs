//! `ctl status`: a task's state at a glance. Each part is read on its own; a part that cannot be
//! read is reported as a problem beside the parts that could.

use super::ControlError;
use crate::aws::lambda_mapping::EventSourceMapping;
use crate::aws::sqs::{queue_name_of, Depths, SqsQueue};
use crate::config::{ControlConfig, ReportConfig};
use crate::errors::error_chain;
use crate::report::build::Reporter;
use crate::report::day::format_day;
use crate::setup;
use crate::store::error::StoreError;
use crate::sweep::copies::{
    in_progress, read_copies, results_location, task_prefix, CopyInProgress, Select,
    STATUS_READ_LIMITS,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The dead-letter queue's part of the status.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DlqStatus {
    /// Its URL.
    pub url: String,
    /// Its depths.
    pub depths: Depths,
}

/// Today's counts so far, read from the results store: files (destination keys, each in its
/// state for the day so far, as the report counts them) and records (every attempt).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TodayStatus {
    /// The day (in the report's offset).
    pub day: String,
    /// Files so far.
    pub files: u64,
    /// Files per state (`copied`, ..., `failed`, `pending`).
    pub counts: BTreeMap<&'static str, u64>,
    /// Outcome records so far.
    pub records: u64,
    /// Records per outcome.
    pub record_counts: BTreeMap<&'static str, u64>,
    /// Bytes written to OSS.
    pub bytes: u64,
    /// Results objects that could not be read.
    pub unreadable: u64,
}

/// A task's state.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Status {
    /// The task.
    pub task: String,
    /// The task queue's URL.
    pub queue_url: String,
    /// The task queue's depths.
    pub queue: Option<Depths>,
    /// The dead-letter queue, when the task queue has one.
    pub dlq: Option<DlqStatus>,
    /// Age of the oldest message in the task queue, seconds (CloudWatch
    /// `ApproximateAgeOfOldestMessage`, the last datapoint of the past 15 minutes).
    pub oldest_message_age_s: Option<u64>,
    /// The sync function's event source mapping state (`Enabled`, `Disabled`, ...), when the
    /// function is known.
    pub delivery: Option<String>,
    /// The newest day whose report is complete (has its manifest).
    pub last_complete_day: Option<String>,
    /// The newest verification (`ctl verify`, or the scheduled one) in the report area.
    pub last_verification: Option<crate::verify::report::LastVerification>,
    /// Today's counts so far.
    pub today: Option<TodayStatus>,
    /// The copies in progress (resumable copies whose checkpoints are in the results bucket), by
    /// destination key; `None` when they could not be read.
    pub copies_in_progress: Option<Vec<CopyInProgress>>,
    /// Parts that could not be read, and why (`ctl status` exits 1 when there are any).
    pub problems: Vec<String>,
    /// Parts left out without failing the status: the oldest message's age when CloudWatch
    /// cannot be asked (no permission, or a local stack that does not speak its protocol).
    pub unavailable: Vec<String>,
    /// CloudWatch was not asked (`ctl status --no-cloudwatch`, as the local demo runs it).
    pub cloudwatch_not_asked: bool,
}

impl Status {
    /// Records a part that could not be read.
    pub fn problem(&mut self, part: &str, e: impl std::fmt::Display) {
        self.problems.push(format!("{part}: {e}"));
    }

    /// Records a part left out.
    pub fn unavailable(&mut self, part: &str, e: impl std::fmt::Display) {
        self.unavailable.push(format!("{part}: {e}"));
    }

    fn render_verification(&self) -> String {
        let Some(v) = &self.last_verification else {
            return "none".to_owned();
        };
        if !v.finished {
            return format!("{} not finished (no manifest.json in {})", v.at, v.dir);
        }
        let kinds = v
            .kinds
            .as_ref()
            .and_then(|k| k.as_object())
            .map(|k| {
                k.iter()
                    .filter(|(name, n)| *name != "equal" && n.as_u64().unwrap_or(0) > 0)
                    .map(|(name, n)| format!("{name} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let complete = if v.complete == Some(false) {
            ", INCOMPLETE"
        } else {
            ""
        };
        match v.differences {
            Some(0) => format!("{}: no differences{complete}", v.at),
            Some(n) => format!("{}: {n} differences ({kinds}){complete}", v.at),
            None => format!("{}: unreadable summary", v.at),
        }
    }

    /// The status as a few aligned lines for a terminal.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let unknown = || "unknown".to_owned();
        let depths = |d: &Option<Depths>| {
            d.map(|d| {
                format!(
                    "{} waiting, {} in flight, {} delayed",
                    d.visible, d.in_flight, d.delayed
                )
            })
            .unwrap_or_else(unknown)
        };
        let _ = writeln!(s, "task              {}", self.task);
        let _ = writeln!(s, "queue             {}", self.queue_url);
        let _ = writeln!(s, "  messages        {}", depths(&self.queue));
        let explained = |part: &str| {
            self.unavailable
                .iter()
                .chain(&self.problems)
                .any(|u| u.starts_with(&format!("{part}:")))
        };
        let age = match self.oldest_message_age_s {
            Some(a) => format!("{a} s"),
            None if self.cloudwatch_not_asked => "not asked (--no-cloudwatch)".into(),
            None if explained("oldest message") => "unknown (see below)".into(),
            None => "none (no CloudWatch datapoint in the past 15 minutes)".into(),
        };
        let _ = writeln!(s, "  oldest message  {age}");
        match &self.dlq {
            Some(d) => {
                let _ = writeln!(s, "dead-letter queue {}", d.url);
                let _ = writeln!(s, "  messages        {}", depths(&Some(d.depths)));
            }
            None if explained("dead-letter queue") => {
                let _ = writeln!(s, "dead-letter queue unknown (see below)");
            }
            None => {
                let _ = writeln!(s, "dead-letter queue none");
            }
        }
        let delivery = match self.delivery.as_deref() {
            Some(st) if crate::aws::lambda_mapping::delivers(st) => format!("running ({st})"),
            Some(st) => format!("paused ({st})"),
            None if explained("delivery") => "unknown (see below)".into(),
            None => unknown(),
        };
        let _ = writeln!(s, "delivery          {delivery}");
        let reports_unread = explained("reports");
        let last_day = match self.last_complete_day.as_deref() {
            Some(d) => d.to_owned(),
            None if reports_unread || explained("last complete day") => {
                "unknown (see below)".into()
            }
            None => "none".into(),
        };
        let _ = writeln!(s, "last complete day {last_day}");
        let verification = if self.last_verification.is_none()
            && (reports_unread || explained("last verification"))
        {
            "unknown (see below)".to_owned()
        } else {
            self.render_verification()
        };
        let _ = writeln!(s, "last verification {verification}");
        if self.today.is_none() && (reports_unread || explained("today")) {
            let _ = writeln!(s, "today             unknown (see below)");
        }
        if let Some(t) = &self.today {
            let counts = |c: &BTreeMap<&str, u64>| {
                let nonzero: Vec<String> = c
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                if nonzero.is_empty() {
                    "none".to_owned()
                } else {
                    nonzero.join(", ")
                }
            };
            let _ = writeln!(
                s,
                "today {}  {} files ({}), {} bytes written",
                t.day,
                t.files,
                counts(&t.counts),
                t.bytes
            );
            let _ = writeln!(
                s,
                "  attempts        {} records ({})",
                t.records,
                counts(&t.record_counts)
            );
            if t.unreadable > 0 {
                let _ = writeln!(s, "  unreadable      {} results objects", t.unreadable);
            }
        }
        match &self.copies_in_progress {
            None if explained("copies in progress") => {
                let _ = writeln!(s, "copies in progress unknown (see below)");
            }
            None => {
                let _ = writeln!(s, "copies in progress unknown");
            }
            Some(c) if c.is_empty() => {
                let _ = writeln!(s, "copies in progress none");
            }
            Some(copies) => {
                let _ = writeln!(s, "copies in progress {}", copies.len());
                for c in copies {
                    let _ = writeln!(s, "  {}", c.render());
                }
            }
        }
        for p in &self.problems {
            let _ = writeln!(s, "problem           {p}");
        }
        for p in &self.unavailable {
            let _ = writeln!(s, "unavailable       {p}");
        }
        s
    }
}

/// The task queue's `ApproximateAgeOfOldestMessage`: the newest datapoint (maximum over a
/// minute) of the past 15 minutes, or `None` when CloudWatch has none (an idle queue, or a local
/// stack without SQS metrics).
pub async fn oldest_message_age(
    client: &aws_sdk_cloudwatch::Client,
    queue_name: &str,
    now: time::OffsetDateTime,
) -> Result<Option<u64>, ControlError> {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    let at = |t: time::OffsetDateTime| DateTime::from_secs(t.unix_timestamp());
    let out = client
        .get_metric_statistics()
        .namespace("AWS/SQS")
        .metric_name("ApproximateAgeOfOldestMessage")
        .dimensions(
            Dimension::builder()
                .name("QueueName")
                .value(queue_name)
                .build(),
        )
        .start_time(at(now - time::Duration::minutes(15)))
        .end_time(at(now))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .map_err(|e| match e.raw_response().and_then(not_cloudwatch) {
            Some(detail) => ControlError::Store(StoreError::call(
                "CloudWatch",
                "GetMetricStatistics",
                detail,
                false,
            )),
            None => ControlError::aws("CloudWatch", "GetMetricStatistics", e),
        })?;
    Ok(out
        .datapoints()
        .iter()
        .filter_map(|d| Some((d.timestamp()?.secs(), d.maximum()?)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, v)| v.max(0.0) as u64))
}

/// Why an answer to a CloudWatch request is not CloudWatch's, in one sentence, when it is not:
/// the SDK speaks CloudWatch's RPC v2 CBOR protocol, and an endpoint that does not (a local
/// stack such as moto answers an HTML page) fails with a decoder's message ("unexpected type
/// 0x3c ... expected map") that says nothing to an operator.
fn not_cloudwatch(raw: &aws_sdk_cloudwatch::config::http::HttpResponse) -> Option<String> {
    let content_type = raw.headers().get("content-type").unwrap_or_default();
    if content_type.contains("cbor") || content_type.contains("json") {
        return None;
    }
    let shown = if content_type.is_empty() {
        "no content type".to_owned()
    } else {
        content_type.to_owned()
    };
    Some(format!(
        "the endpoint answered HTTP {} with {shown}, not CloudWatch's RPC v2 CBOR protocol: it \
         does not serve CloudWatch (a local stack such as moto does not; AWS does)",
        raw.status().as_u16()
    ))
}

/// Reads the task's copies in progress into `st`: every checkpoint under the task's folder in
/// the results bucket (`RESULTS_BUCKET`, `RESULTS_PREFIX` through `get`) with its range records,
/// within [`STATUS_READ_LIMITS`]. A checkpoint that cannot be read is a problem line; the others
/// are listed.
pub async fn gather_copies(
    st: &mut Status,
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    get: impl Fn(&str) -> Option<String>,
    now: time::OffsetDateTime,
) {
    let part = "copies in progress";
    let Some((bucket, results_prefix)) = results_location(&get) else {
        st.unavailable(part, "RESULTS_BUCKET is not set");
        return;
    };
    let s3 = setup::s3_client(sdk, config.s3_path_style);
    let store = crate::aws::s3_results::S3ResultsStore::new(s3, bucket);
    let prefix = task_prefix(&results_prefix, &config.task_id);
    let copies = match read_copies(&store, &prefix, Select::All, STATUS_READ_LIMITS).await {
        Ok(c) => c,
        Err(e) => {
            st.problem(part, error_chain(&e));
            return;
        }
    };
    let stale_after = std::time::Duration::from_secs(config.upload_sweep_age_hours * 3600);
    let list = in_progress(&copies, now, stale_after);
    for u in &copies.unreadable {
        st.problem(&format!("copy in progress {}", u.key), &u.reason);
    }
    if let Some(why) = copies.incomplete {
        st.unavailable(part, why);
    }
    st.copies_in_progress = Some(list);
}

/// Reads every part of a task's status; `get` looks up the report function's settings (the
/// environment, in `ctl`). A part that cannot be read becomes a problem beside the others.
///
/// With `cloudwatch` false the oldest message's age (the one part CloudWatch answers) is left out
/// and the status says so: for a local stack, which does not serve CloudWatch.
pub async fn gather(
    config: &ControlConfig,
    sdk: &aws_config::SdkConfig,
    get: impl Fn(&str) -> Option<String>,
    cloudwatch: bool,
) -> Status {
    let mut st = Status {
        task: config.task_id.clone(),
        queue_url: config.queue_url.clone(),
        cloudwatch_not_asked: !cloudwatch,
        ..Status::default()
    };
    let queue = SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &config.queue_url);
    match queue.depths().await {
        Ok(d) => st.queue = Some(d),
        Err(e) => st.problem("queue", error_chain(&e)),
    }
    match queue.dead_letter_queue().await {
        Ok(None) => {}
        Ok(Some(dlq)) => match dlq.depths().await {
            Ok(depths) => {
                st.dlq = Some(DlqStatus {
                    url: dlq.url().to_owned(),
                    depths,
                })
            }
            Err(e) => st.problem("dead-letter queue", error_chain(&e)),
        },
        Err(e) => st.problem("dead-letter queue", error_chain(&e)),
    }
    let arn = queue.arn().await;
    match &arn {
        Ok(_) if !cloudwatch => {}
        Ok(arn) => {
            let cw = aws_sdk_cloudwatch::Client::new(sdk);
            let age = match queue_name_of(arn) {
                Ok((_, name)) => {
                    oldest_message_age(&cw, &name, time::OffsetDateTime::now_utc()).await
                }
                Err(e) => Err(e.into()),
            };
            match age {
                Ok(a) => st.oldest_message_age_s = a,
                Err(e) => st.unavailable("oldest message", error_chain(&e)),
            }
        }
        Err(e) => st.problem("queue ARN", error_chain(&e)),
    }
    if config.function_name.is_none() {
        st.unavailable("delivery", "SYNC_FUNCTION_NAME is not set");
    }
    if let (Some(f), Ok(arn)) = (&config.function_name, &arn) {
        let lambda = aws_sdk_lambda::Client::new(sdk);
        let state = match EventSourceMapping::find(lambda, f, arn).await {
            Ok(m) => m.state().await,
            Err(e) => Err(e),
        };
        match state {
            Ok(s) => st.delivery = Some(s),
            Err(e) => st.problem("delivery", error_chain(&e)),
        }
    }
    gather_copies(&mut st, config, sdk, &get, time::OffsetDateTime::now_utc()).await;
    let report = match ReportConfig::from_lookup(&get) {
        Ok(r) => r,
        Err(e) => {
            st.problem("reports", format!("not read: {e}"));
            return st;
        }
    };
    let parts = match setup::report_parts(&report, sdk).await {
        Ok(p) => p,
        Err(e) => {
            st.problem("reports", error_chain(&e));
            return st;
        }
    };
    let reporter = Reporter {
        settings: &parts.settings,
        results: &parts.records,
        store: &parts.oss,
    };
    match reporter.last_complete_day().await {
        Ok(d) => st.last_complete_day = d.map(format_day),
        Err(e) => st.problem("last complete day", error_chain(&e)),
    }
    let root = crate::verify::report::verify_root(&report.report_prefix, &report.task_id);
    match crate::verify::report::last_verification(&parts.oss, &root).await {
        Ok(v) => st.last_verification = v,
        Err(e) => st.problem("last verification", error_chain(&e)),
    }
    let today = report.zone.day_of(time::OffsetDateTime::now_utc());
    match reporter.day_totals(today).await {
        Ok((totals, files, unreadable)) => {
            st.today = Some(TodayStatus {
                day: format_day(today),
                files: files.files,
                counts: files.count_map(),
                records: totals.records,
                record_counts: totals.count_map(),
                bytes: totals.bytes,
                unreadable,
            })
        }
        Err(e) => st.problem("today", error_chain(&e)),
    }
    st
}

#[cfg(test)]
mod tests;
