//! Tests of the day's page: its charts' markup against the day's numbers, escaping, and the
//! number formats.

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
    assert!(html.contains(r#"data-hour="9" data-state="copied" data-files="1" data-bytes="10""#));
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
