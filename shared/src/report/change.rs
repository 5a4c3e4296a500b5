//! A change of report time zone, found from the last complete day's manifest: the zone it was
//! counted in (`time_zone`, or `utc_offset` in manifests before format 5), where its window
//! ended, and whether it was itself the first day after a change.

use super::day::{Zone, ZoneChange};
use serde_json::Value;
use time::{Date, OffsetDateTime};

/// The summary and manifest field naming the zone the day is counted in.
pub const TIME_ZONE: &str = "time_zone";
/// The summary and manifest field naming the zone the days were counted in before this one, on
/// the first day after a change (`null` on every other day).
pub const ZONE_CHANGED_FROM: &str = "zone_changed_from";
/// The summary and manifest field holding the day's window, `{"start", "end"}` in UTC.
pub const WINDOW: &str = "window";

fn instant(manifest: &Value, edge: &str) -> Option<OffsetDateTime> {
    let raw = manifest.get(WINDOW)?.get(edge)?.as_str()?;
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()
}

fn zone_named(manifest: &Value, field: &str, day: Date) -> Result<Option<Zone>, String> {
    let Some(name) = manifest.get(field).and_then(Value::as_str) else {
        return Ok(None);
    };
    Zone::parse(name).map(Some).map_err(|e| {
        format!(
            "the manifest of {day} says its {field} is {name:?}, which cannot be read ({e}); \
             the report cannot tell where the next day starts: set REPORT_TIME_ZONE to a zone \
             this build knows and, if {name:?} was the zone meant, report with a build that knows it"
        )
    })
}

/// The change of zone the days after `last` (the last complete day, whose manifest is
/// `manifest`) are reported across, when the configured `zone` is not the one the manifest
/// names, or when `last` was itself the first day after a change (its records before its start
/// are then of the old zone's days). `None` when neither, or when the manifest names no zone (a
/// manifest older than `utc_offset`: the configured zone is taken to be its own). An error when
/// the manifest names a zone this build cannot read.
pub fn zone_change(
    manifest: &Value,
    last: Date,
    zone: &Zone,
) -> Result<Option<ZoneChange>, String> {
    let recorded = match zone_named(manifest, TIME_ZONE, last)? {
        Some(z) => Some(z),
        None => zone_named(manifest, "utc_offset", last)?,
    };
    let Some(recorded) = recorded else {
        return Ok(None);
    };
    if recorded != *zone {
        let at = instant(manifest, "end").unwrap_or_else(|| recorded.window(last).1);
        return Ok(last.next_day().map(|first_day| ZoneChange {
            from: recorded,
            at,
            first_day,
        }));
    }
    let (Some(from), Some(at)) = (
        zone_named(manifest, ZONE_CHANGED_FROM, last)?,
        instant(manifest, "start"),
    ) else {
        return Ok(None);
    };
    Ok(Some(ZoneChange {
        from,
        at,
        first_day: last,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::{date, datetime};

    #[test]
    fn the_same_zone_is_no_change() {
        let z = Zone::parse("+08:00").unwrap();
        let m = json!({"time_zone": "+08:00", "utc_offset": "+08:00"});
        assert_eq!(zone_change(&m, date!(2026 - 11 - 20), &z), Ok(None));
        let old = json!({"utc_offset": "+08:00"});
        assert_eq!(zone_change(&old, date!(2026 - 11 - 20), &z), Ok(None));
        assert_eq!(zone_change(&json!({}), date!(2026 - 11 - 20), &z), Ok(None));
    }

    #[test]
    fn a_manifest_in_another_zone_is_a_change_at_its_end() {
        let z = Zone::parse("Asia/Shanghai").unwrap();
        // A format 4 manifest: only its offset; the end is computed.
        let m = json!({"utc_offset": "+00:00"});
        let c = zone_change(&m, date!(2026 - 11 - 20), &z).unwrap().unwrap();
        assert_eq!(c.from, Zone::default());
        assert_eq!(c.at, datetime!(2026-11-21 00:00 UTC));
        assert_eq!(c.first_day, date!(2026 - 11 - 21));
        // A format 5 manifest: its own window's end.
        let m = json!({"time_zone": "America/New_York", "utc_offset": "-05:00",
            "window": {"start": "2026-11-20T05:00:00Z", "end": "2026-11-21T05:00:00Z"}});
        let c = zone_change(&m, date!(2026 - 11 - 20), &z).unwrap().unwrap();
        assert_eq!(c.from.name(), "America/New_York");
        assert_eq!(c.at, datetime!(2026-11-21 05:00 UTC));
    }

    #[test]
    fn the_first_day_after_a_change_keeps_it_for_the_days_before() {
        let z = Zone::parse("+08:00").unwrap();
        let m = json!({"time_zone": "+08:00", "zone_changed_from": "+00:00",
            "window": {"start": "2026-11-21T00:00:00Z", "end": "2026-11-21T16:00:00Z"}});
        let c = zone_change(&m, date!(2026 - 11 - 21), &z).unwrap().unwrap();
        assert_eq!(
            (c.from, c.at, c.first_day),
            (
                Zone::default(),
                datetime!(2026-11-21 00:00 UTC),
                date!(2026 - 11 - 21)
            )
        );
    }

    #[test]
    fn an_unknown_zone_in_a_manifest_is_refused_with_what_to_do() {
        let m = json!({"time_zone": "Mars/Olympus"});
        let e = zone_change(&m, date!(2026 - 11 - 20), &Zone::default()).unwrap_err();
        assert!(
            e.contains("Mars/Olympus") && e.contains("REPORT_TIME_ZONE"),
            "{e}"
        );
    }
}
