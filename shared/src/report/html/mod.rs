//! The day's report as one self-contained page, `report.html`: files and bytes per hour by
//! state, lag percentiles per hour, the top failure reasons with example keys, paused periods,
//! and links to the CSV parts beside it. Inline CSS and SVG only: no script, no font, image or
//! style sheet fetched, so it opens from a bucket, a download or a mail attachment alike.
//!
//! Every number a chart draws is also in its markup: each bar is a `<rect>` with `data-hour`,
//! `data-state`, `data-files` and `data-bytes`, each lag point a `<circle>` with `data-hour`,
//! `data-quantile` and `data-ms`, so a test (or a reader with a parser) can check the charts
//! against `summary.json`. Every string from a record (keys, error codes and messages) is
//! escaped for HTML.

mod charts;

use super::day::Zone;
use super::files::{FileDay, FileState, FileTotals};
use super::stats::{lag_of, DayTotals, LagHistogram};
use crate::outcome::Outcome;
use charts::{lag_chart, stacked_bars, state_legend};
use std::collections::BTreeMap;
use std::fmt::{self, Write};
use time::OffsetDateTime;

/// Example keys kept per failure reason.
const EXAMPLES: usize = 3;
/// Failure reasons shown (the most frequent first).
const TOP_REASONS: usize = 10;
/// Longest error message shown, in characters.
const MESSAGE_CHARS: usize = 200;

/// A span in which the task was paused (no messages consumed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausedPeriod {
    /// When it began (RFC 3339).
    pub from: String,
    /// When it ended (RFC 3339), or empty while it lasts.
    pub to: String,
    /// Why, as given when it was paused.
    pub reason: String,
}

/// One hour of the day (local to the report's offset).
#[derive(Debug, Clone, Default)]
struct Hour {
    /// Files per state, by the hour their settling record (their latest, when pending) was
    /// processed.
    files: BTreeMap<FileState, u64>,
    /// Bytes written to the destination by those files over the day.
    bytes: BTreeMap<FileState, u64>,
    /// Records processed in the hour.
    records: u64,
    /// Lags of the copies and deletes processed in the hour.
    lag: LagHistogram,
}

/// The failed files of one reason (an error code).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FailureReason {
    /// Failed files with this reason.
    pub files: u64,
    /// Up to three of their keys, in report order.
    pub examples: Vec<String>,
    /// The first one's error message.
    pub message: Option<String>,
}

/// What the page draws, gathered while the day is read: per hour, records and lags (from every
/// record) and files and bytes by state (from every file); and the failed files by reason.
#[derive(Debug, Clone)]
pub struct DayChart {
    zone: Zone,
    hours: Vec<Hour>,
    /// Failed files by error code (`(invalid)` or `(deferred)` when the record has none).
    pub failures: BTreeMap<String, FailureReason>,
}

impl DayChart {
    /// An empty chart for days counted in `zone`: a record counts in its local hour (on a
    /// daylight-saving day the repeated hour's records share one bar, the skipped hour's bar
    /// is empty; a day after a change of zone, longer or shorter than 24 hours, folds onto the
    /// clock's 24 hours).
    pub fn new(zone: Zone) -> Self {
        Self {
            zone,
            hours: vec![Hour::default(); 24],
            failures: BTreeMap::new(),
        }
    }

    fn hour(&mut self, at: OffsetDateTime) -> &mut Hour {
        let h = usize::from(at.to_offset(self.zone.offset_at(at)).hour());
        &mut self.hours[h]
    }

    /// Counts one record of the day, processed at `at`.
    pub fn record(&mut self, o: &Outcome, at: OffsetDateTime) {
        let hour = self.hour(at);
        hour.records += 1;
        if let Some(l) = lag_of(o) {
            hour.lag.add(l);
        }
    }

    /// Counts one file of the day, in the hour its row's record was processed; a failed file
    /// also under its reason.
    pub fn file(&mut self, f: &FileDay) {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        // Every record of the day had its time read before it was sorted; a time that does not
        // read here cannot happen, and would count in the first hour rather than be lost.
        let hour = match OffsetDateTime::parse(&f.record.processed_at, rfc3339) {
            Ok(at) => self.hour(at),
            Err(_) => &mut self.hours[0],
        };
        *hour.files.entry(f.state).or_default() += 1;
        *hour.bytes.entry(f.state).or_default() += f.bytes_moved;
        if f.state.failed() {
            let r = &f.record;
            let code = r
                .error_code
                .clone()
                .unwrap_or_else(|| format!("({})", f.state.as_str()));
            let reason = self.failures.entry(code).or_default();
            reason.files += 1;
            if reason.examples.len() < EXAMPLES {
                let key = r.dest_key.as_ref().or(r.source_key.as_ref());
                reason
                    .examples
                    .push(key.cloned().unwrap_or_else(|| r.message_id.clone()));
            }
            if reason.message.is_none() {
                reason.message = r.error_message.clone();
            }
        }
    }
}

/// A CSV part beside the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartLink {
    /// Its path relative to the day's folder: `failed_list/part-00001.csv`.
    pub href: String,
    /// Rows, header excluded.
    pub rows: u64,
    /// Size, bytes.
    pub size: u64,
}

/// Everything the page shows.
#[derive(Debug, Clone, Copy)]
pub struct DayPage<'a> {
    /// Task id.
    pub task: &'a str,
    /// `YYYY-MM-DD`.
    pub day: &'a str,
    /// The zone the day is counted in, as shown: `UTC+08:00`, or `Asia/Shanghai (UTC+08:00 at
    /// the day's start)`.
    pub zone: &'a str,
    /// `pushing` or `complete`.
    pub state: &'a str,
    /// Records that could not be read.
    pub unreadable: u64,
    /// Records of earlier complete days found in this day's results.
    pub late_records: u64,
    /// When the report was made (RFC 3339).
    pub generated_at: &'a str,
    /// Files per state.
    pub files: &'a FileTotals,
    /// Records, bytes and lag over the day.
    pub totals: &'a DayTotals,
    /// Per hour and per failure reason.
    pub chart: &'a DayChart,
    /// The CSV parts.
    pub parts: &'a [PartLink],
    /// Paused periods within the day.
    pub paused: &'a [PausedPeriod],
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (a newline in a key, say) would break the layout, not the page.
            c if c.is_control() => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The page.
pub fn render(page: &DayPage) -> String {
    let mut out = String::with_capacity(64 * 1024);
    // Writing to a String cannot fail.
    let _ = write_page(&mut out, page);
    out
}

/// `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1.5 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{n} B"),
        _ if v < 10.0 => format!("{v:.1} {}", UNITS[u]),
        _ => format!("{v:.0} {}", UNITS[u]),
    }
}

/// `850 ms`, `4.2 s`, `3.5 min`, `2.0 h`.
fn millis(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "–".into();
    };
    let s = ms as f64 / 1000.0;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{s:.1} s"),
        60_000..3_600_000 => format!("{:.1} min", s / 60.0),
        _ => format!("{:.1} h", s / 3600.0),
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
color:#1d2330;margin:24px auto;max-width:1200px;padding:0 16px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}\
.sub{color:#5b6475;margin:0 0 16px}\
.cards{display:flex;flex-wrap:wrap;gap:10px}\
.card{border:1px solid #dfe3ea;border-radius:6px;padding:8px 12px;min-width:104px}\
.card b{display:block;font-size:20px}.card span{color:#5b6475;font-size:12px}\
table{border-collapse:collapse;margin:6px 0}td,th{border-bottom:1px solid #e6e9ef;\
padding:4px 10px;text-align:left;vertical-align:top}td.n,th.n{text-align:right;\
font-variant-numeric:tabular-nums}code{font:12px ui-monospace,Menlo,Consolas,monospace;\
word-break:break-all}.grid{stroke:#e6e9ef}.tick{font-size:11px;fill:#5b6475}\
.legend span{margin-right:14px;white-space:nowrap}.legend i{display:inline-block;width:11px;\
height:11px;margin-right:5px;vertical-align:-1px;border-radius:2px}\
.pushing{color:#a15c00}.complete{color:#2e8b57}";

fn write_page(out: &mut String, p: &DayPage) -> fmt::Result {
    let (task, day, state) = (escape(p.task), escape(p.day), escape(p.state));
    writeln!(out, "<!DOCTYPE html>")?;
    writeln!(out, r#"<html lang="en"><head><meta charset="utf-8">"#)?;
    writeln!(
        out,
        r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#
    )?;
    writeln!(out, "<title>{task} {day}: daily report</title>")?;
    writeln!(out, "<style>{STYLE}</style></head><body>")?;
    writeln!(out, "<h1>{task}: {day}</h1>")?;
    writeln!(
        out,
        r#"<p class="sub">Day in {}; <b class="{state}">{state}</b>; generated {}.</p>"#,
        escape(p.zone),
        escape(p.generated_at)
    )?;
    let failed: u64 = FileState::ALL
        .iter()
        .filter(|s| s.failed())
        .map(|s| p.files.states.get(s).copied().unwrap_or(0))
        .sum();
    let lag = p.totals.lag();
    writeln!(out, r#"<div class="cards">"#)?;
    for (value, label) in [
        (count(p.files.files), "files"),
        (count(failed), "failed files"),
        (count(p.totals.records), "records (attempts)"),
        (bytes(p.totals.bytes), "written"),
        (millis(lag.p50), "lag p50"),
        (millis(lag.p99), "lag p99"),
        (count(p.unreadable), "unreadable records"),
        (count(p.late_records), "late records"),
    ] {
        writeln!(
            out,
            r#"<div class="card"><b>{value}</b><span>{label}</span></div>"#
        )?;
    }
    writeln!(out, "</div>")?;

    writeln!(out, "<h2>Files per hour, by state</h2>")?;
    stacked_bars(out, "files-chart", p.chart, false)?;
    state_legend(out, p.files)?;
    writeln!(out, "<h2>Bytes written per hour, by state</h2>")?;
    stacked_bars(out, "bytes-chart", p.chart, true)?;
    state_legend(out, p.files)?;
    writeln!(
        out,
        r#"<p class="sub">A file counts in the hour its row's record was processed (the record that settles it; its latest when pending), with the bytes all its attempts of the day wrote.</p>"#
    )?;
    writeln!(
        out,
        "<h2>Replication lag per hour (copies and deletes)</h2>"
    )?;
    lag_chart(out, p.chart)?;

    writeln!(out, "<h2>Totals</h2>")?;
    writeln!(
        out,
        r#"<table id="totals"><tr><th>state</th><th class="n">files</th><th class="n">bytes</th></tr>"#
    )?;
    for s in FileState::ALL {
        let files = p.files.states.get(&s).copied().unwrap_or(0);
        let b: u64 = p.chart.hours.iter().filter_map(|h| h.bytes.get(&s)).sum();
        writeln!(
            out,
            r#"<tr data-state="{n}" data-files="{files}" data-bytes="{b}"><td>{n}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            count(files),
            bytes(b),
            n = s.as_str(),
        )?;
    }
    writeln!(
        out,
        r#"<tr data-state="all" data-files="{}" data-bytes="{}"><th>all</th><th class="n">{}</th><th class="n">{}</th></tr></table>"#,
        p.files.files,
        p.totals.bytes,
        count(p.files.files),
        bytes(p.totals.bytes),
    )?;
    writeln!(
        out,
        r#"<p class="sub">Lag over the day: p50 {}, p90 {}, p99 {}, max {}. Records per outcome: {}.</p>"#,
        millis(lag.p50),
        millis(lag.p90),
        millis(lag.p99),
        millis(lag.max),
        p.totals
            .count_map()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {}", count(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    )?;

    writeln!(out, "<h2>Top failure reasons</h2>")?;
    let mut reasons: Vec<_> = p.chart.failures.iter().collect();
    reasons.sort_by(|a, b| b.1.files.cmp(&a.1.files).then(a.0.cmp(b.0)));
    if reasons.is_empty() {
        writeln!(out, "<p>No failed files.</p>")?;
    } else {
        writeln!(
            out,
            r#"<table id="failures"><tr><th>reason</th><th class="n">files</th><th>example keys</th><th>message (first)</th></tr>"#
        )?;
        for (code, r) in reasons.iter().take(TOP_REASONS) {
            let examples: Vec<String> = r
                .examples
                .iter()
                .map(|k| format!("<code>{}</code>", escape(k)))
                .collect();
            let message: String = r
                .message
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(MESSAGE_CHARS)
                .collect();
            writeln!(
                out,
                r#"<tr data-reason="{c}" data-files="{}"><td><code>{c}</code></td><td class="n">{}</td><td>{}</td><td>{}</td></tr>"#,
                r.files,
                count(r.files),
                examples.join("<br>"),
                escape(&message),
                c = escape(code),
            )?;
        }
        writeln!(out, "</table>")?;
        if reasons.len() > TOP_REASONS {
            writeln!(
                out,
                "<p>{} more reasons: see <code>failed_list</code>.</p>",
                reasons.len() - TOP_REASONS
            )?;
        }
    }

    writeln!(out, "<h2>Paused periods</h2>")?;
    if p.paused.is_empty() {
        writeln!(out, "<p>None recorded.</p>")?;
    } else {
        writeln!(
            out,
            r#"<table id="paused"><tr><th>from</th><th>to</th><th>reason</th></tr>"#
        )?;
        for pp in p.paused {
            let to = if pp.to.is_empty() {
                "(still paused)".to_owned()
            } else {
                escape(&pp.to)
            };
            writeln!(
                out,
                "<tr><td>{}</td><td>{to}</td><td>{}</td></tr>",
                escape(&pp.from),
                escape(&pp.reason)
            )?;
        }
        writeln!(out, "</table>")?;
    }

    writeln!(out, "<h2>Per hour</h2>")?;
    writeln!(
        out,
        r#"<details><summary>files, bytes, records and lag, hour by hour</summary><table id="hours"><tr><th>hour</th><th class="n">files</th><th class="n">failed</th><th class="n">bytes</th><th class="n">records</th><th class="n">lag p50</th><th class="n">p90</th><th class="n">p99</th></tr>"#
    )?;
    for (h, hour) in p.chart.hours.iter().enumerate() {
        let files: u64 = hour.files.values().sum();
        let failed: u64 = hour
            .files
            .iter()
            .filter(|(s, _)| s.failed())
            .map(|(_, n)| n)
            .sum();
        writeln!(
            out,
            r#"<tr><td>{h:02}:00</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            count(files),
            count(failed),
            bytes(hour.bytes.values().sum()),
            count(hour.records),
            millis(hour.lag.quantile(0.5)),
            millis(hour.lag.quantile(0.9)),
            millis(hour.lag.quantile(0.99)),
        )?;
    }
    writeln!(out, "</table></details>")?;

    writeln!(out, "<h2>CSV lists</h2>")?;
    writeln!(
        out,
        r#"<table id="parts"><tr><th>part</th><th class="n">rows</th><th class="n">size</th></tr>"#
    )?;
    for part in p.parts {
        let href = escape(&part.href);
        writeln!(
            out,
            r#"<tr><td><a href="{href}">{href}</a></td><td class="n">{}</td><td class="n">{}</td></tr>"#,
            count(part.rows),
            bytes(part.size),
        )?;
    }
    writeln!(out, "</table>")?;
    writeln!(
        out,
        r#"<p class="sub"><a href="summary.json">summary.json</a>{}</p>"#,
        if p.state == "complete" {
            r#" · <a href="manifest.json">manifest.json</a>"#
        } else {
            ""
        }
    )?;
    writeln!(out, "</body></html>")
}

#[cfg(test)]
mod tests;
