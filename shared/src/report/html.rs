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

use super::day::Zone;
use super::files::{FileDay, FileState, FileTotals};
use super::stats::{lag_of, DayTotals, LagHistogram};
use crate::outcome::Outcome;
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
    /// When the report was made (RFC 3339).
    pub generated_at: &'a str,
    /// Files per state.
    pub files: &'a FileTotals,
    /// Records, bytes and lag over the day.
    pub totals: &'a DayTotals,
    /// Per hour and per failure reason.
    pub chart: &'a DayChart,
    /// Records that could not be read.
    pub unreadable: u64,
    /// Records of earlier complete days found in this day's results.
    pub late_records: u64,
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

/// Colours of the states, in report order; failures warm, nothing-to-do greys.
fn colour(s: FileState) -> &'static str {
    use crate::outcome::OutcomeKind::*;
    match s {
        FileState::Settled(Copied) => "#2e8b57",
        FileState::Settled(Skipped) => "#8fa8c0",
        FileState::Settled(Deleted) => "#6a5acd",
        FileState::Settled(Superseded) => "#b0b7c6",
        FileState::Settled(Filtered) => "#cfd4dc",
        FileState::Settled(Ignored) => "#dde1e6",
        FileState::Settled(Invalid) => "#7b1f1f",
        FileState::Settled(Failed) => "#d62728",
        FileState::Settled(Deferred) => "#ff8c1a",
        FileState::Settled(InProgress) | FileState::Pending => "#e6c229",
    }
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

/// A tick step of 1, 2 or 5 times a power of ten, at least 1, about a quarter of `max`.
fn tick_step(max: u64) -> u64 {
    let rough = (max as f64 / 4.0).max(1.0);
    let p = 10f64.powf(rough.log10().floor());
    let m = rough / p;
    let s = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    ((s * p).round() as u64).max(1)
}

const WIDTH: f64 = 1180.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

fn slot(hour: usize) -> f64 {
    LEFT + plot_width() * hour as f64 / 24.0
}

/// The hour labels under a chart.
fn hour_axis(out: &mut String) -> fmt::Result {
    for h in 0..24 {
        let x = slot(h) + plot_width() / 48.0;
        writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" class="tick" text-anchor="middle">{h:02}</text>"#,
            HEIGHT - 10.0
        )?;
    }
    Ok(())
}

/// A stacked bar chart per hour by state: files (`by_bytes` false) or bytes.
fn stacked_bars(out: &mut String, id: &str, chart: &DayChart, by_bytes: bool) -> fmt::Result {
    let value = |h: &Hour, s: &FileState| {
        if by_bytes {
            h.bytes.get(s).copied().unwrap_or(0)
        } else {
            h.files.get(s).copied().unwrap_or(0)
        }
    };
    let max = chart
        .hours
        .iter()
        .map(|h| FileState::ALL.iter().map(|s| value(h, s)).sum::<u64>())
        .max()
        .unwrap_or(0);
    let step = if by_bytes {
        // Round steps of a binary unit, so the labels read cleanly.
        let unit = [1u64 << 30, 1 << 20, 1 << 10, 1]
            .into_iter()
            .find(|u| max / 4 >= *u)
            .unwrap_or(1);
        tick_step(max / unit) * unit
    } else {
        tick_step(max)
    };
    let top = max.div_ceil(step).max(1) * step;
    let y = |v: u64| TOP + plot_height() * (1.0 - v as f64 / top as f64);
    writeln!(
        out,
        r#"<svg id="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">"#
    )?;
    let mut tick = 0;
    while tick <= top {
        let label = if by_bytes { bytes(tick) } else { count(tick) };
        writeln!(
            out,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{label}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(tick) + 4.0,
            y = y(tick),
        )?;
        tick += step;
    }
    let bar = plot_width() / 24.0 * 0.78;
    for (h, hour) in chart.hours.iter().enumerate() {
        let x = slot(h) + plot_width() / 24.0 * 0.11;
        let mut below = 0;
        for s in FileState::ALL {
            let files = hour.files.get(&s).copied().unwrap_or(0);
            if files == 0 {
                continue;
            }
            let b = hour.bytes.get(&s).copied().unwrap_or(0);
            let v = if by_bytes { b } else { files };
            let (y0, y1) = (y(below), y(below + v));
            below += v;
            writeln!(
                out,
                r#"<rect x="{x:.1}" y="{y1:.1}" width="{bar:.1}" height="{:.1}" fill="{}" data-hour="{h}" data-state="{}" data-files="{files}" data-bytes="{b}"><title>{h:02}:00 {}: {} files, {}</title></rect>"#,
                y0 - y1,
                colour(s),
                s.as_str(),
                s.as_str(),
                count(files),
                bytes(b),
            )?;
        }
    }
    hour_axis(out)?;
    writeln!(out, "</svg>")
}

/// The lag chart's gridlines, milliseconds.
const LAG_TICKS: [(u64, &str); 11] = [
    (1, "1 ms"),
    (10, "10 ms"),
    (100, "100 ms"),
    (1_000, "1 s"),
    (10_000, "10 s"),
    (60_000, "1 min"),
    (600_000, "10 min"),
    (3_600_000, "1 h"),
    (21_600_000, "6 h"),
    (86_400_000, "1 day"),
    (864_000_000, "10 days"),
];

/// p50, p90 and p99 of the lag per hour, on a logarithmic scale.
fn lag_chart(out: &mut String, chart: &DayChart) -> fmt::Result {
    const QUANTILES: [(&str, f64, &str); 3] = [
        ("p50", 0.50, "#1f77b4"),
        ("p90", 0.90, "#ff8c1a"),
        ("p99", 0.99, "#d62728"),
    ];
    let points: Vec<Vec<Option<u64>>> = chart
        .hours
        .iter()
        .map(|h| QUANTILES.iter().map(|q| h.lag.quantile(q.1)).collect())
        .collect();
    let all = points.iter().flatten().flatten().copied();
    let (lo, hi) = match all.fold((u64::MAX, 0u64), |(lo, hi), v| (lo.min(v), hi.max(v))) {
        // No copy or delete: a scale of 1 s to 1 min for the empty chart.
        (u64::MAX, _) => (1_000, 60_000),
        range => range,
    };
    // The scale runs between the ladder's steps around the lags drawn (1 s to 1 min, say).
    let below = LAG_TICKS
        .iter()
        .rposition(|t| t.0 <= lo.max(1))
        .unwrap_or(0)
        .min(LAG_TICKS.len() - 2);
    let above = LAG_TICKS
        .iter()
        .position(|t| t.0 >= hi)
        .unwrap_or(LAG_TICKS.len() - 1)
        .max(below + 1);
    let (bottom, top) = (
        (LAG_TICKS[below].0 as f64).log10(),
        (LAG_TICKS[above].0 as f64).log10(),
    );
    let y = |ms: u64| {
        let f = ((ms.max(1) as f64).log10() - bottom) / (top - bottom);
        TOP + plot_height() * (1.0 - f.clamp(0.0, 1.0))
    };
    writeln!(
        out,
        r#"<svg id="lag-chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">"#
    )?;
    for (ms, label) in &LAG_TICKS[below..=above] {
        writeln!(
            out,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{label}</text>"#,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(*ms) + 4.0,
            y = y(*ms),
        )?;
    }
    let centre = |h: usize| slot(h) + plot_width() / 48.0;
    for (i, (name, _, col)) in QUANTILES.iter().enumerate() {
        let line: Vec<String> = points
            .iter()
            .enumerate()
            .filter_map(|(h, p)| p[i].map(|ms| format!("{:.1},{:.1}", centre(h), y(ms))))
            .collect();
        if line.len() > 1 {
            writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{col}" stroke-width="2"/>"#,
                line.join(" ")
            )?;
        }
        for (h, p) in points.iter().enumerate() {
            if let Some(ms) = p[i] {
                writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{col}" data-hour="{h}" data-quantile="{name}" data-ms="{ms}"><title>{h:02}:00 {name}: {}</title></circle>"#,
                    centre(h),
                    y(ms),
                    millis(Some(ms)),
                )?;
            }
        }
    }
    hour_axis(out)?;
    writeln!(out, "</svg>")?;
    write!(out, r#"<p class="legend">"#)?;
    for (name, _, col) in QUANTILES {
        write!(
            out,
            r#"<span><i style="background:{col}"></i>{name}</span>"#
        )?;
    }
    writeln!(out, "</p>")
}

fn state_legend(out: &mut String, files: &FileTotals) -> fmt::Result {
    write!(out, r#"<p class="legend">"#)?;
    for s in FileState::ALL {
        if files.states.get(&s).copied().unwrap_or(0) > 0 {
            write!(
                out,
                r#"<span><i style="background:{}"></i>{}</span>"#,
                colour(s),
                s.as_str()
            )?;
        }
    }
    writeln!(out, "</p>")
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
mod tests {
    use super::*;
    use crate::outcome::OutcomeKind::{self, *};
    use crate::report::files::{file_id, FileFolder};
    use time::UtcOffset;

    fn rec(key: &str, at: &str, kind: OutcomeKind, bytes: u64, code: Option<&str>) -> Outcome {
        serde_json::from_value(serde_json::json!({
            "task": "t", "processed_at": at, "event_time": "2026-11-25T00:59:58.000Z",
            "source_key": key, "dest_key": key, "bucket": "src", "outcome": kind,
            "bytes_moved": bytes, "attempts": 1, "duration_ms": 1, "message_id": format!("m-{key}"),
            "error_code": code, "error_message": code.map(|c| format!("{c} <b>'boom'</b>")),
        }))
        .unwrap()
    }

    /// Builds the page of `records` (in file, then time order) as the report run does.
    fn page_of(records: Vec<Outcome>, offset: UtcOffset) -> (String, FileTotals, DayTotals) {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        let mut chart = DayChart::new(Zone::fixed(offset));
        let mut totals = DayTotals::default();
        let mut files = FileTotals::default();
        let mut folder = FileFolder::default();
        let mut days = Vec::new();
        for o in records {
            totals.add(&o);
            chart.record(&o, OffsetDateTime::parse(&o.processed_at, rfc3339).unwrap());
            days.extend(folder.push(&file_id(&o), o));
        }
        days.extend(folder.finish());
        for f in &days {
            files.add(f);
            chart.file(f);
        }
        let parts = [PartLink {
            href: "total_list/part-00001.csv".into(),
            rows: files.files,
            size: 100,
        }];
        let html = render(&DayPage {
            task: "t",
            day: "2026-11-25",
            zone: "UTC+00:00",
            state: "complete",
            generated_at: "2026-11-26T01:00:00.000Z",
            files: &files,
            totals: &totals,
            chart: &chart,
            unreadable: 0,
            late_records: 0,
            parts: &parts,
            paused: &[],
        });
        (html, files, totals)
    }

    /// The values of `attr` on the elements inside `<svg id="{svg}">` carrying `data-state`.
    fn attrs(html: &str, svg: &str, attr: &str) -> Vec<(String, u64)> {
        let start = html.find(&format!(r#"<svg id="{svg}""#)).unwrap();
        let body = &html[start..start + html[start..].find("</svg>").unwrap()];
        let value = |el: &str, name: &str| {
            let at = el.find(&format!(r#" {name}=""#))? + name.len() + 3;
            Some(el[at..at + el[at..].find('"')?].to_owned())
        };
        body.split("<rect")
            .skip(1)
            .map(|el| {
                let state = value(el, "data-state").unwrap();
                (state, value(el, attr).unwrap().parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(escape(r#"<script>&"'x"#), "&lt;script&gt;&amp;&quot;&#39;x");
        assert_eq!(escape("a\nb"), "a&#xA;b");
        assert_eq!(escape("ключ/数据"), "ключ/数据");
    }

    #[test]
    fn keys_and_messages_from_records_are_escaped() {
        let key = r#"x/<script>alert("&'")</script>.txt"#;
        let (html, ..) = page_of(
            vec![rec(
                key,
                "2026-11-25T01:00:00.000Z",
                Failed,
                0,
                Some("<Code>"),
            )],
            UtcOffset::UTC,
        );
        assert!(!html.contains("<script"), "no script tag");
        assert!(!html.contains("<b>'boom'"), "a message's markup is text");
        assert!(!html.contains("<Code>"));
        assert!(html.contains("x/&lt;script&gt;alert(&quot;&amp;&#39;&quot;)&lt;/script&gt;.txt"));
        assert!(html.contains(r#"data-reason="&lt;Code&gt;""#));
    }

    #[test]
    fn the_charts_carry_the_day_s_totals() {
        let mut records = Vec::new();
        for i in 0..60u64 {
            let at = format!("2026-11-25T{:02}:{:02}:10.000Z", i % 24, i % 60);
            let key = format!("k{i:03}");
            match i % 6 {
                0 => {
                    // Failed, then copied: copied.
                    records.push(rec(&key, &at.replace(":10.", ":05."), Failed, 0, Some("X")));
                    records.push(rec(&key, &at, Copied, 1000 + i, None));
                }
                1 => records.push(rec(&key, &at, Failed, 0, Some("AccessDenied"))),
                2 => records.push(rec(&key, &at, Skipped, 0, None)),
                3 => records.push(rec(&key, &at, Deferred, 0, None)),
                _ => records.push(rec(&key, &at, Copied, 5 << 20, None)),
            }
        }
        let (html, files, totals) = page_of(records, UtcOffset::UTC);
        for svg in ["files-chart", "bytes-chart"] {
            let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
            for (s, n) in attrs(&html, svg, "data-files") {
                *by_state.entry(s).or_default() += n;
            }
            let want: BTreeMap<String, u64> = files
                .count_map()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.to_owned(), n))
                .collect();
            assert_eq!(by_state, want, "{svg}");
            let b: u64 = attrs(&html, svg, "data-bytes").iter().map(|x| x.1).sum();
            assert_eq!(b, totals.bytes, "{svg}");
        }
        assert_eq!(files.files, 60);
        assert!(html.contains(r#"<tr data-reason="AccessDenied" data-files="10">"#));
        assert!(html.contains(r#"<tr data-reason="(deferred)" data-files="10">"#));
        assert!(
            !html.contains(r#"data-reason="X""#),
            "a failed attempt is no failed file"
        );
        assert!(html.contains(r#"<a href="total_list/part-00001.csv">"#));
        // Lag points: each hour with a copy (hour % 6 is 0, 4 or 5) has its three quantiles.
        let with_copies = (0..24).filter(|h| [0, 4, 5].contains(&(h % 6))).count();
        for q in ["p50", "p90", "p99"] {
            let points = format!(r#"data-quantile="{q}""#);
            assert_eq!(html.matches(&points).count(), with_copies, "{q}");
        }
    }

    #[test]
    fn hours_are_local_to_the_offset() {
        let offset = UtcOffset::from_hms(8, 0, 0).unwrap();
        let (html, ..) = page_of(
            vec![rec("a", "2026-11-25T01:30:00.000Z", Copied, 10, None)],
            offset,
        );
        assert!(
            html.contains(r#"data-hour="9" data-state="copied" data-files="1" data-bytes="10""#)
        );
    }

    #[test]
    fn an_empty_day_renders() {
        let (html, ..) = page_of(Vec::new(), UtcOffset::UTC);
        assert!(html.starts_with("<!DOCTYPE html>") && html.ends_with("</body></html>\n"));
        assert!(attrs(&html, "files-chart", "data-files").is_empty());
        assert!(!html.contains("data-quantile") && html.contains(">1 min</text>"));
        assert!(html.contains("No failed files.") && html.contains("None recorded."));
        assert!(!html.contains("NaN") && !html.contains("inf"));
        for fetch in ["src=", "<link", "<script", "url(", "@import", "<img"] {
            assert!(!html.contains(fetch), "nothing fetched: {fetch}");
        }
    }

    #[test]
    fn paused_periods_are_listed() {
        let chart = DayChart::new(Zone::default());
        let (files, totals) = (FileTotals::default(), DayTotals::default());
        let paused = [PausedPeriod {
            from: "2026-11-25T02:00:00Z".into(),
            to: String::new(),
            reason: "<maintenance>".into(),
        }];
        let html = render(&DayPage {
            task: "t",
            day: "2026-11-25",
            zone: "UTC+00:00",
            state: "pushing",
            generated_at: "now",
            files: &files,
            totals: &totals,
            chart: &chart,
            unreadable: 0,
            late_records: 0,
            parts: &[],
            paused: &paused,
        });
        assert!(html.contains("(still paused)") && html.contains("&lt;maintenance&gt;"));
        assert!(!html.contains("manifest.json"), "no manifest while pushing");
    }
}
