//! Report days: calendar days by processing time in a fixed UTC offset, their windows in UTC,
//! and the results-store hour partitions (`dt=YYYY-MM-DD/hr=HH`) that can hold a day's records.

use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

/// Parses a fixed offset: `Z`, `UTC`, `+08:00`, `-05:30`, `+0800`.
pub fn parse_offset(s: &str) -> Result<UtcOffset, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") || s.is_empty() {
        return Ok(UtcOffset::UTC);
    }
    let bad = || format!("{s:?} is not an offset like +08:00, -05:30 or Z");
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1i8, &s[1..]),
        b'-' => (-1i8, &s[1..]),
        _ => return Err(bad()),
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) || rest.len() > 5 {
        return Err(bad());
    }
    let h: i8 = digits[..2].parse().map_err(|_| bad())?;
    let m: i8 = digits[2..].parse().map_err(|_| bad())?;
    if h > 14 || m > 59 {
        return Err(bad());
    }
    UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| bad())
}

/// Formats an offset as `+08:00`.
pub fn format_offset(o: UtcOffset) -> String {
    let (h, m, _) = o.as_hms();
    let sign = if o.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
}

/// The day an instant falls on in an offset.
pub fn day_of(t: OffsetDateTime, offset: UtcOffset) -> Date {
    t.to_offset(offset).date()
}

/// A day's window `[start, end)` as UTC instants.
pub fn window(day: Date, offset: UtcOffset) -> (OffsetDateTime, OffsetDateTime) {
    let start = day.with_time(Time::MIDNIGHT).assume_offset(offset);
    let start = start.to_offset(UtcOffset::UTC);
    (start, start + Duration::days(1))
}

/// `YYYY-MM-DD`.
pub fn format_day(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Option<Date> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &f).ok()
}

/// The day of a results partition folder, `dt=YYYY-MM-DD` (the last segment of a prefix,
/// trailing `/` allowed); `None` for any other name.
pub fn partition_day(name: &str) -> Option<Date> {
    let d = last_segment(name).strip_prefix("dt=")?;
    if d.len() != 10 {
        return None;
    }
    parse_day(d)
}

/// The hour of a results partition folder, `hr=HH` (`00` to `23`; the last segment of a prefix,
/// trailing `/` allowed); `None` for any other name.
pub fn partition_hour(name: &str) -> Option<u8> {
    let h = last_segment(name).strip_prefix("hr=")?;
    if h.len() != 2 || !h.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    h.parse().ok().filter(|h| *h < 24)
}

fn last_segment(name: &str) -> &str {
    let name = name.strip_suffix('/').unwrap_or(name);
    name.rsplit('/').next().unwrap_or(name)
}

/// The UTC hour partitions (`dt`, `hr`) that can hold records processed during the day: records
/// are filed under the hour their batch was written, which is at most `lateness` after they were
/// processed, never before.
pub fn hour_partitions(day: Date, offset: UtcOffset, lateness: Duration) -> Vec<(Date, u8)> {
    let (start, end) = window(day, offset);
    let last = end + lateness;
    let mut t = start
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0));
    let mut out = Vec::new();
    while let Ok(h) = t {
        if h >= last {
            break;
        }
        out.push((h.date(), h.hour()));
        t = Ok(h + Duration::hours(1));
    }
    out
}

/// The instant a run reports as of: `now` when given, else the wall clock. A `now` later than
/// the wall clock is refused unless `allow_future`: a day completed ahead of time would take no
/// records written after the run (they are listed late in a later day's report, but the day's
/// own report would be short).
pub fn as_of(
    now: Option<OffsetDateTime>,
    wall: OffsetDateTime,
    allow_future: bool,
) -> Result<OffsetDateTime, String> {
    match now {
        Some(t) if t > wall && !allow_future => Err(format!(
            "--now {t} is later than the clock ({wall}); days would complete before their records are written (add --allow-future to do it anyway)"
        )),
        Some(t) => Ok(t),
        None => Ok(wall),
    }
}

/// Checks `REPORT_GRACE` against the sync function's timeout (`SYNC_FUNCTION_TIMEOUT_SECONDS`,
/// when set): a batch's records are filed up to a timeout after they were processed, so a
/// shorter grace would complete days before their last records are written.
pub fn check_grace(grace: Duration, sync_timeout_seconds: Option<&str>) -> Result<(), String> {
    let Some(raw) = sync_timeout_seconds else {
        return Ok(());
    };
    let secs: i64 = raw.trim().parse().map_err(|_| {
        format!("SYNC_FUNCTION_TIMEOUT_SECONDS: {raw:?} is not a number of seconds")
    })?;
    if grace < Duration::seconds(secs) {
        return Err(format!(
            "REPORT_GRACE ({} min) is shorter than the sync function's timeout (SYNC_FUNCTION_TIMEOUT_SECONDS {secs} s): make it longer, so every record of a day is written before the day is complete",
            grace.whole_minutes()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("Z").unwrap(), UtcOffset::UTC);
        assert_eq!(format_offset(parse_offset("+08:00").unwrap()), "+08:00");
        assert_eq!(format_offset(parse_offset("-0530").unwrap()), "-05:30");
        for bad in ["8", "+8:00", "+25:00", "+08:60", "08:00", "+08:00:00"] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_and_windows_in_an_offset() {
        let east = parse_offset("+08:00").unwrap();
        assert_eq!(
            day_of(datetime!(2026-11-24 16:00 UTC), east),
            date!(2026 - 11 - 25)
        );
        assert_eq!(
            day_of(datetime!(2026-11-24 15:59:59 UTC), east),
            date!(2026 - 11 - 24)
        );
        let (s, e) = window(date!(2026 - 11 - 25), east);
        assert_eq!(
            (s, e),
            (
                datetime!(2026-11-24 16:00 UTC),
                datetime!(2026-11-25 16:00 UTC)
            )
        );
    }

    #[test]
    fn a_run_as_of_the_future_needs_allow_future() {
        let wall = datetime!(2026-11-25 10:00 UTC);
        let later = datetime!(2026-11-26 01:00 UTC);
        assert_eq!(as_of(None, wall, false), Ok(wall));
        assert_eq!(as_of(Some(wall), wall, false), Ok(wall));
        let earlier = datetime!(2026-11-20 00:00 UTC);
        assert_eq!(as_of(Some(earlier), wall, false), Ok(earlier));
        let e = as_of(Some(later), wall, false).unwrap_err();
        assert!(e.contains("--allow-future"), "{e}");
        assert_eq!(as_of(Some(later), wall, true), Ok(later));
    }

    #[test]
    fn a_grace_shorter_than_the_sync_timeout_is_refused() {
        let half_hour = Duration::minutes(30);
        assert!(check_grace(half_hour, None).is_ok());
        assert!(check_grace(half_hour, Some("900")).is_ok());
        assert!(check_grace(half_hour, Some("1800")).is_ok());
        let e = check_grace(Duration::minutes(10), Some("900")).unwrap_err();
        assert!(e.contains("REPORT_GRACE") && e.contains("900"), "{e}");
        let e = check_grace(half_hour, Some("15m")).unwrap_err();
        assert!(e.contains("SYNC_FUNCTION_TIMEOUT_SECONDS"), "{e}");
    }

    #[test]
    fn only_dt_and_hr_folders_are_partitions() {
        assert_eq!(
            partition_day("results/t1/dt=2026-11-25/"),
            Some(date!(2026 - 11 - 25))
        );
        assert_eq!(partition_day("dt=2026-11-25"), Some(date!(2026 - 11 - 25)));
        for stray in [
            "results/t1/athena-query-results/",
            "results/t1/dt=2026-13-01/",
            "results/t1/dt=2026-11-25-x/",
            "results/t1/dt=+2026-11-25/",
            "results/t1/dt=/",
            "results/t1/DT=2026-11-25/",
            "results/t1/dt=2026-11-25/hr=00/",
        ] {
            assert_eq!(partition_day(stray), None, "{stray}");
        }
        assert_eq!(partition_hour("results/t1/dt=2026-11-25/hr=07/"), Some(7));
        assert_eq!(partition_hour("hr=23"), Some(23));
        for stray in ["hr=24/", "hr=7/", "hr=+7/", "hr=007/", "tmp/", "hr=0a/"] {
            assert_eq!(partition_hour(stray), None, "{stray}");
        }
    }

    #[test]
    fn partitions_cover_the_day_and_late_writes() {
        let p = hour_partitions(date!(2026 - 11 - 25), UtcOffset::UTC, Duration::minutes(30));
        assert_eq!(p.len(), 25);
        assert_eq!(p[0], (date!(2026 - 11 - 25), 0));
        assert_eq!(p[24], (date!(2026 - 11 - 26), 0));
        let half = parse_offset("+05:30").unwrap();
        let p = hour_partitions(date!(2026 - 11 - 25), half, Duration::ZERO);
        assert_eq!(p[0], (date!(2026 - 11 - 24), 18));
        assert_eq!(p.len(), 25, "a half-hour offset straddles one more hour");
    }
}
