//! Logs and metrics: one JSON log line per outcome, and CloudWatch embedded-metric-format (EMF)
//! lines per batch for objects, bytes, failures and replication lag. Lines go to a sink (stdout in
//! Lambda, where CloudWatch Logs picks them up; a buffer in tests).

use crate::outcome::{Outcome, OutcomeKind};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::sync::Arc;

/// Where log and metric lines go.
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Allocations of at least this many bytes get their own mapping, returned to the system when
/// freed (see [`tune_allocator`]).
pub const MMAP_THRESHOLD: usize = 1024 * 1024;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`]. By default glibc raises the threshold each
/// time a mapped block is freed, after which 8 MiB part buffers come from per-thread heaps that
/// keep freed memory: a 1 GiB copy then peaked about 9 MiB higher (58 instead of 49 MiB, see
/// BENCHMARKS.md). Call once, early in `main`. A no-op on other C libraries.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters, under glibc's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

/// A sink writing whole lines to standard output.
pub fn stdout_sink() -> LineSink {
    Arc::new(|line: &str| {
        let mut out = std::io::stdout().lock();
        // A closed stdout cannot be reported anywhere else.
        let _ = writeln!(out, "{line}");
    })
}

/// Sets up diagnostic logs (retries, start-up errors) on stderr: JSON lines (what Lambda's logs
/// and Logs Insights read), or plain text when stderr is a terminal (a person running a binary
/// by hand), filtered by `RUST_LOG`, else Lambda's own log level setting
/// (`AWS_LAMBDA_LOG_LEVEL`), else `info`. Outcome and metric lines go to stdout through a
/// [`LineSink`], whatever the level.
pub fn init_diagnostics() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(lambda_log_level(
            std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        ))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.without_time().with_target(false).init();
    } else {
        builder.json().init();
    }
}

/// Lambda's log level names (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`, `FATAL`) as a tracing
/// filter; `info` when unset or unknown.
fn lambda_log_level(level: Option<&str>) -> &'static str {
    match level.map(str::to_ascii_uppercase).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR") | Some("FATAL") => "error",
        _ => "info",
    }
}

/// Whether the process runs inside Lambda; if not, says how to run it locally.
pub fn inside_lambda(local_usage: &str) -> bool {
    let inside = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    if !inside {
        tracing::error!(
            "not inside Lambda (no AWS_LAMBDA_RUNTIME_API); use '{local_usage}' locally"
        );
    }
    inside
}

/// The CloudWatch namespace of the metrics.
pub const NAMESPACE: &str = "S3OssSync";

/// The log line for one outcome: the record's fields plus `level`, `message` and `lag_ms`.
pub fn outcome_line(o: &Outcome) -> String {
    let level = match o.outcome {
        OutcomeKind::Failed | OutcomeKind::Invalid => "ERROR",
        OutcomeKind::Filtered | OutcomeKind::Deferred => "WARN",
        _ => "INFO",
    };
    let mut m = Map::new();
    m.insert("level".into(), json!(level));
    m.insert("message".into(), json!("outcome"));
    if let Ok(Value::Object(fields)) = serde_json::to_value(o) {
        m.extend(fields);
    }
    if let Some(lag) = o.lag_ms() {
        m.insert("lag_ms".into(), json!(lag));
    }
    Value::Object(m).to_string()
}

/// One EMF line for a batch: a count per outcome, bytes copied, failed messages, and the
/// replication lag of every copied or deleted object (EMF takes at most 100 values per metric, so
/// larger batches keep the 100 largest).
pub fn metrics_line(
    task: &str,
    outcomes: &[Outcome],
    failed_messages: usize,
    now_ms: i64,
) -> String {
    let mut metrics = vec![
        json!({"Name": "BytesCopied", "Unit": "Bytes"}),
        json!({"Name": "FailedMessages", "Unit": "Count"}),
        json!({"Name": "FailedFinal", "Unit": "Count"}),
        json!({"Name": "ReplicationLag", "Unit": "Milliseconds"}),
    ];
    let mut doc = Map::new();
    doc.insert("Task".into(), json!(task));
    for kind in OutcomeKind::ALL {
        let name = format!("Objects{}", capitalised(kind.as_str()));
        let n = outcomes.iter().filter(|o| o.outcome == kind).count();
        metrics.push(json!({"Name": name, "Unit": "Count"}));
        doc.insert(name, json!(n));
    }
    let bytes: u64 = outcomes.iter().map(|o| o.bytes_moved).sum();
    doc.insert("BytesCopied".into(), json!(bytes));
    doc.insert("FailedMessages".into(), json!(failed_messages));
    // Files that failed for good (permanent, or on their last delivery): what needs a person.
    let failed_final = outcomes
        .iter()
        .filter(|o| o.outcome == OutcomeKind::Failed && o.is_final)
        .count();
    doc.insert("FailedFinal".into(), json!(failed_final));
    let mut lags: Vec<i64> = outcomes
        .iter()
        .filter(|o| matches!(o.outcome, OutcomeKind::Copied | OutcomeKind::Deleted))
        .filter_map(Outcome::lag_ms)
        .collect();
    lags.sort_unstable_by(|a, b| b.cmp(a));
    lags.truncate(100);
    if lags.is_empty() {
        metrics.retain(|m| m["Name"] != "ReplicationLag");
    } else {
        doc.insert("ReplicationLag".into(), json!(lags));
    }
    emf(doc, metrics, now_ms)
}

/// One EMF line for a report run: `ReportDaysComplete` (days this run finished, `manifest.json`
/// written) and `ReportDaysPushing` (days it updated that are not complete yet), with the days
/// and their states, and `last_complete_day`, the latest day this run finished (absent when it
/// finished none): what the dashboard's report widget shows.
pub fn report_metrics_line(task: &str, days: &[(String, &str)], now_ms: i64) -> String {
    let mut doc = Map::new();
    doc.insert("Task".into(), json!(task));
    doc.insert("message".into(), json!("report run"));
    let complete: Vec<&String> = days
        .iter()
        .filter(|(_, state)| *state == "complete")
        .map(|(day, _)| day)
        .collect();
    if let Some(last) = complete.iter().max() {
        doc.insert("last_complete_day".into(), json!(last));
    }
    doc.insert(
        "days".into(),
        json!(days
            .iter()
            .map(|(day, state)| json!({"day": day, "state": state}))
            .collect::<Vec<_>>()),
    );
    doc.insert("ReportDaysComplete".into(), json!(complete.len()));
    doc.insert(
        "ReportDaysPushing".into(),
        json!(days.len() - complete.len()),
    );
    let metrics = vec![
        json!({"Name": "ReportDaysComplete", "Unit": "Count"}),
        json!({"Name": "ReportDaysPushing", "Unit": "Count"}),
    ];
    emf(doc, metrics, now_ms)
}

/// An EMF line: the values in `doc`, declared as `metrics` of the task's dimension.
pub(crate) fn emf(mut doc: Map<String, Value>, metrics: Vec<Value>, now_ms: i64) -> String {
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Task"]],
                "Metrics": metrics,
            }]
        }),
    );
    Value::Object(doc).to_string()
}

/// `in_progress` → `InProgress`.
pub(crate) fn capitalised(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_camel_case() {
        assert_eq!(capitalised("in_progress"), "InProgress");
        assert_eq!(capitalised("copied"), "Copied");
    }

    /// A 10-byte record of `kind` for key `k`, processed at 00:00:02 for an event at `lag_from`.
    fn outcome(kind: OutcomeKind, lag_from: &str) -> Outcome {
        let at = time::macros::datetime!(2026-11-25 00:00:02 UTC);
        let mut o = crate::testing::report::record("k", at, kind);
        o.event_time = Some(lag_from.into());
        o
    }

    #[test]
    fn emf_counts_bytes_and_lag() {
        let os = [
            outcome(OutcomeKind::Copied, "2026-11-25T00:00:01.000Z"),
            outcome(OutcomeKind::Copied, "2026-11-25T00:00:00.500Z"),
            outcome(OutcomeKind::Skipped, "2026-11-25T00:00:00.000Z"),
        ];
        let v: Value = serde_json::from_str(&metrics_line("t", &os, 0, 7)).unwrap();
        assert_eq!(v["ObjectsCopied"], 2);
        assert_eq!(v["ObjectsSkipped"], 1);
        assert_eq!(v["ObjectsFailed"], 0);
        assert_eq!(v["FailedFinal"], 0);
        assert_eq!(v["BytesCopied"], 20);
        assert_eq!(v["ReplicationLag"], json!([1500, 1000]));
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
        assert_eq!(v["_aws"]["Timestamp"], 7);
    }

    #[test]
    fn lambdas_log_level_names_are_tracing_filters() {
        assert_eq!(lambda_log_level(Some("DEBUG")), "debug");
        assert_eq!(lambda_log_level(Some("fatal")), "error");
        assert_eq!(lambda_log_level(Some("WARN")), "warn");
        assert_eq!(lambda_log_level(None), "info");
        assert_eq!(lambda_log_level(Some("loud")), "info");
    }

    #[test]
    fn report_metrics_name_the_last_complete_day() {
        let days = [
            ("2026-11-29".to_owned(), "complete"),
            ("2026-11-30".to_owned(), "complete"),
            ("2026-12-01".to_owned(), "pushing"),
        ];
        let v: Value = serde_json::from_str(&report_metrics_line("t", &days, 5)).unwrap();
        assert_eq!(v["last_complete_day"], "2026-11-30");
        assert_eq!(v["ReportDaysComplete"], 2);
        assert_eq!(v["ReportDaysPushing"], 1);
        assert_eq!(v["days"][2]["state"], "pushing");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "ReportDaysComplete"
        );
        let v: Value = serde_json::from_str(&report_metrics_line("t", &days[2..], 5)).unwrap();
        assert!(v.get("last_complete_day").is_none());
        assert_eq!(v["ReportDaysComplete"], 0);
    }

    #[test]
    fn outcome_lines_carry_the_record() {
        let line = outcome_line(&outcome(OutcomeKind::Failed, "2026-11-25T00:00:01.000Z"));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["outcome"], "failed");
        assert_eq!(v["lag_ms"], 1000);
        assert_eq!(v["source_key"], "k");
    }
}
