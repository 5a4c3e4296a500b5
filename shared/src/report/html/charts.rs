//! The page's inline SVG charts: files and bytes per hour stacked by state, the lag
//! percentiles per hour on a logarithmic scale, and the state legend under them. Each mark
//! carries its numbers as `data-*` attributes.

use super::{bytes, count, millis, DayChart, Hour};
use crate::report::files::{FileState, FileTotals};
use std::fmt::{self, Write};

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
pub(super) fn stacked_bars(
    out: &mut String,
    id: &str,
    chart: &DayChart,
    by_bytes: bool,
) -> fmt::Result {
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
pub(super) fn lag_chart(out: &mut String, chart: &DayChart) -> fmt::Result {
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

pub(super) fn state_legend(out: &mut String, files: &FileTotals) -> fmt::Result {
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
