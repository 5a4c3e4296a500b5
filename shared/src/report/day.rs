//! Report days: calendar days by processing time in the report's time zone (a fixed UTC offset
//! or an IANA name with its daylight-saving rules), their windows in UTC, and the results-store
//! hour partitions (`dt=YYYY-MM-DD/hr=HH`) that can hold a day's records.
//!
//! A day in a zone with daylight saving is 23 or 25 hours long: its window runs from the first
//! instant of its local date to the first instant of the next, whatever lies between. A change of
//! zone between runs ([`ZoneChange`]) never leaves instants between days or in two: the first day
//! in the new zone starts exactly where the last complete day ended.

use time::{Date, Duration, OffsetDateTime, Time, UtcOffset};

/// The zone report days are counted in: a fixed offset (`+08:00`) or an IANA name
/// (`Asia/Shanghai`, `America/New_York`), looked up in the tz database compiled into the binary
/// (the Lambda image may have none on disk), so a deployment's days never depend on the host.
#[derive(Clone, PartialEq, Eq)]
pub struct Zone {
    /// `+08:00` for an offset, the canonical IANA name otherwise: what summaries and manifests
    /// record as `time_zone`, and how two zones are compared.
    label: String,
    tz: jiff::tz::TimeZone,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

impl Default for Zone {
    fn default() -> Self {
        Self::fixed(UtcOffset::UTC)
    }
}

impl Zone {
    /// A fixed offset.
    pub fn fixed(offset: UtcOffset) -> Self {
        let seconds = offset.whole_seconds();
        Self {
            label: format_offset(offset),
            tz: jiff::tz::Offset::from_seconds(seconds)
                .map(jiff::tz::TimeZone::fixed)
                .unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }

    /// Parses a zone: an offset as [`parse_offset`] takes it (`Z` and `UTC` are `+00:00`), or an
    /// IANA time zone name (case-insensitive).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let offset_like = t.is_empty()
            || t.starts_with(['+', '-'])
            || t.eq_ignore_ascii_case("z")
            || t.eq_ignore_ascii_case("utc");
        if offset_like {
            return parse_offset(t).map(Self::fixed);
        }
        let tz = jiff::tz::TimeZone::get(t).map_err(|_| {
            format!("{t:?} is neither an IANA time zone name (like Asia/Shanghai or America/New_York) nor an offset like +08:00")
        })?;
        Ok(Self {
            label: tz.iana_name().unwrap_or(t).to_owned(),
            tz,
        })
    }

    /// The zone's name: the IANA name, or the offset as `+08:00`.
    pub fn name(&self) -> &str {
        &self.label
    }

    /// The zone's offset from UTC at an instant.
    pub fn offset_at(&self, t: OffsetDateTime) -> UtcOffset {
        let secs = self.tz.to_offset(to_timestamp(t)).seconds();
        UtcOffset::from_whole_seconds(secs).unwrap_or(UtcOffset::UTC)
    }

    /// The local date of an instant.
    pub fn day_of(&self, t: OffsetDateTime) -> Date {
        t.to_offset(self.offset_at(t)).date()
    }

    /// The first instant of a local date: its midnight, or, when midnight falls in a gap of a
    /// daylight-saving change, the end of the gap.
    pub fn start_of(&self, day: Date) -> OffsetDateTime {
        let civil = jiff::civil::Date::new(
            day.year() as i16,
            u8::from(day.month()) as i8,
            day.day() as i8,
        );
        civil
            .and_then(|d| d.to_zoned(self.tz.clone()))
            .ok()
            .and_then(|z| {
                OffsetDateTime::from_unix_timestamp_nanos(z.timestamp().as_nanosecond()).ok()
            })
            // Only at the ends of the representable range; midnight at the offset of UTC.
            .unwrap_or_else(|| day.with_time(Time::MIDNIGHT).assume_utc())
    }

    /// A day's window `[start, end)` in this zone alone, as UTC instants: 24 hours, or 23 or 25
    /// on a daylight-saving change.
    pub fn window(&self, day: Date) -> (OffsetDateTime, OffsetDateTime) {
        let next = day.next_day().unwrap_or(day);
        (self.start_of(day), self.start_of(next))
    }
}

fn to_timestamp(t: OffsetDateTime) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(t.unix_timestamp_nanos())
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// A change of zone between the last complete day and the days after it, found from the last
/// complete day's manifest (its `time_zone`, or for older manifests its `utc_offset`).
///
/// Handled, not refused: the first day in the new zone starts at `at`, the instant the last day
/// in the old zone ended (taken from that day's manifest), and ends at its end in the new zone. So
/// it is shorter or longer than a day (up to the difference of the offsets), and no instant lies
/// between two days or in two. Records before `at` belong to days of the old zone (as late
/// records, listed with their old-zone day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneChange {
    /// The zone before the change.
    pub from: Zone,
    /// Where the old zone's last day ended, and the first day in the new zone starts.
    pub at: OffsetDateTime,
    /// The first day in the new zone.
    pub first_day: Date,
}

/// The days of a run: the configured zone, and the change of zone that led to it when the last
/// complete day was (or its predecessor was) counted in another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// The configured zone.
    pub zone: Zone,
    /// The most recent change of zone, when it bears on the days still to report.
    pub change: Option<ZoneChange>,
}

impl Calendar {
    /// Days in one zone, without a change.
    pub fn new(zone: Zone) -> Self {
        Self { zone, change: None }
    }

    /// The day an instant falls on: in the old zone before a change, in the new one (and never
    /// before its first day) from it on.
    pub fn day_of(&self, t: OffsetDateTime) -> Date {
        match &self.change {
            Some(c) if t < c.at => c.from.day_of(t),
            Some(c) => self.zone.day_of(t).max(c.first_day),
            None => self.zone.day_of(t),
        }
    }

    /// A day's window `[start, end)` as UTC instants. The first day after a change starts where
    /// the old zone's last day ended; no later window starts before that instant.
    pub fn window(&self, day: Date) -> (OffsetDateTime, OffsetDateTime) {
        let (start, end) = self.zone.window(day);
        let Some(c) = &self.change else {
            return (start, end);
        };
        if day < c.first_day {
            return c.from.window(day);
        }
        let start = if day == c.first_day {
            c.at
        } else {
            start.max(c.at)
        };
        (start, end.max(start))
    }

    /// The zone a day's report says the days changed from: on the first day in the new zone.
    pub fn changed_from(&self, day: Date) -> Option<&Zone> {
        self.change
            .as_ref()
            .filter(|c| c.first_day == day)
            .map(|c| &c.from)
    }
}

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

/// The UTC hour partitions (`dt`, `hr`) that can hold records processed during a day's window
/// `[start, end)` (23, 24 or 25 hours, or another length after a change of zone): records are
/// filed under the hour their batch was written, which is at most `lateness` after they were
/// processed, never before.
pub fn hour_partitions(
    (start, end): (OffsetDateTime, OffsetDateTime),
    lateness: Duration,
) -> Vec<(Date, u8)> {
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
        let east = Zone::parse("+08:00").unwrap();
        assert_eq!(
            east.day_of(datetime!(2026-11-24 16:00 UTC)),
            date!(2026 - 11 - 25)
        );
        assert_eq!(
            east.day_of(datetime!(2026-11-24 15:59:59 UTC)),
            date!(2026 - 11 - 24)
        );
        let (s, e) = east.window(date!(2026 - 11 - 25));
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
        let utc = Zone::default();
        let p = hour_partitions(utc.window(date!(2026 - 11 - 25)), Duration::minutes(30));
        assert_eq!(p.len(), 25);
        assert_eq!(p[0], (date!(2026 - 11 - 25), 0));
        assert_eq!(p[24], (date!(2026 - 11 - 26), 0));
        let half = Zone::parse("+05:30").unwrap();
        let p = hour_partitions(half.window(date!(2026 - 11 - 25)), Duration::ZERO);
        assert_eq!(p[0], (date!(2026 - 11 - 24), 18));
        assert_eq!(p.len(), 25, "a half-hour offset straddles one more hour");
    }

    fn hours(w: (OffsetDateTime, OffsetDateTime)) -> i64 {
        (w.1 - w.0).whole_hours()
    }

    #[test]
    fn zones_are_offsets_or_iana_names() {
        assert_eq!(Zone::parse("Z").unwrap(), Zone::default());
        assert_eq!(Zone::parse("UTC").unwrap().name(), "+00:00");
        assert_eq!(Zone::parse("+0800").unwrap().name(), "+08:00");
        assert_eq!(
            Zone::parse("asia/shanghai").unwrap().name(),
            "Asia/Shanghai"
        );
        assert_eq!(
            Zone::parse("America/New_York").unwrap().name(),
            "America/New_York"
        );
        for bad in ["Mars/Olympus", "8", "+25:00", "Shanghai"] {
            let e = Zone::parse(bad).unwrap_err();
            assert!(e.contains("IANA") || e.contains("offset"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_named_zone_without_daylight_saving_is_its_offset() {
        let sh = Zone::parse("Asia/Shanghai").unwrap();
        let east = Zone::parse("+08:00").unwrap();
        for day in [date!(2026 - 01 - 15), date!(2026 - 07 - 15)] {
            assert_eq!(sh.window(day), east.window(day));
        }
        assert_eq!(
            sh.offset_at(datetime!(2026-07-15 00:00 UTC)),
            parse_offset("+08:00").unwrap()
        );
    }

    #[test]
    fn daylight_saving_days_are_23_and_25_hours() {
        let ny = Zone::parse("America/New_York").unwrap();
        // 2026-03-08: 02:00 EST becomes 03:00 EDT; 2026-11-01: 02:00 EDT becomes 01:00 EST.
        let spring = ny.window(date!(2026 - 03 - 08));
        let autumn = ny.window(date!(2026 - 11 - 01));
        let changes = [
            (
                spring,
                datetime!(2026-03-08 05:00 UTC),
                datetime!(2026-03-09 04:00 UTC),
                23,
            ),
            (
                autumn,
                datetime!(2026-11-01 04:00 UTC),
                datetime!(2026-11-02 05:00 UTC),
                25,
            ),
        ];
        for (window, start, end, length) in changes {
            assert_eq!(window, (start, end), "{start}");
            assert_eq!(hours(window), length, "{start}");
        }
        assert_eq!(hours(ny.window(date!(2026 - 11 - 02))), 24);
        // The repeated hour (01:00 to 02:00 twice) is all the 1st's.
        assert_eq!(
            ny.day_of(datetime!(2026-11-02 04:59:59 UTC)),
            date!(2026 - 11 - 01)
        );
        assert_eq!(
            ny.day_of(datetime!(2026-11-02 05:00 UTC)),
            date!(2026 - 11 - 02)
        );
        // 25 hours from 04:00 UTC, each partition once, and the grace's hour after.
        let p = hour_partitions(autumn, Duration::minutes(30));
        assert_eq!(p.len(), 26);
        assert_eq!(p[0], (date!(2026 - 11 - 01), 4));
        assert_eq!(p[25], (date!(2026 - 11 - 02), 5));
        assert_eq!(hour_partitions(spring, Duration::ZERO).len(), 23);
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_when_the_gap_ends() {
        // Chile moves its clocks from 00:00 to 01:00 on the first Sunday of September.
        let cl = Zone::parse("America/Santiago").unwrap();
        let (s, e) = cl.window(date!(2026 - 09 - 06));
        assert_eq!(s, datetime!(2026-09-06 04:00 UTC));
        assert_eq!(hours((s, e)), 23);
        assert_eq!(
            cl.window(date!(2026 - 09 - 05)).1,
            s,
            "no instant between days"
        );
    }

    /// Every instant of `[from, to)`, a minute apart, falls in exactly the window of its day.
    fn days_tile(cal: &Calendar, from: OffsetDateTime, to: OffsetDateTime) {
        let mut t = from;
        while t < to {
            let day = cal.day_of(t);
            let (s, e) = cal.window(day);
            assert!(s <= t && t < e, "{t} in {day} [{s}, {e})");
            for other in [day.previous_day().unwrap(), day.next_day().unwrap()] {
                let (s, e) = cal.window(other);
                assert!(!(s <= t && t < e), "{t} also in {other}");
            }
            t += Duration::minutes(7);
        }
    }

    #[test]
    fn after_a_change_of_zone_the_first_day_starts_where_the_last_ended() {
        let utc = Zone::default();
        let last = date!(2026 - 11 - 20);
        for (to, first_window) in [
            // East: the 21st in +08:00 would start at 16:00 UTC on the 20th; it starts at the
            // 20th's end in UTC instead, 16 hours long.
            (
                "+08:00",
                (
                    datetime!(2026-11-21 00:00 UTC),
                    datetime!(2026-11-21 16:00 UTC),
                ),
            ),
            // West: 29 hours, from the 20th's end in UTC to the 21st's end in New York.
            (
                "America/New_York",
                (
                    datetime!(2026-11-21 00:00 UTC),
                    datetime!(2026-11-22 05:00 UTC),
                ),
            ),
        ] {
            let cal = Calendar {
                zone: Zone::parse(to).unwrap(),
                change: Some(ZoneChange {
                    from: utc.clone(),
                    at: utc.window(last).1,
                    first_day: last.next_day().unwrap(),
                }),
            };
            assert_eq!(cal.window(date!(2026 - 11 - 21)), first_window, "{to}");
            assert_eq!(cal.window(last), utc.window(last));
            assert_eq!(cal.changed_from(date!(2026 - 11 - 21)), Some(&utc));
            assert_eq!(cal.changed_from(date!(2026 - 11 - 22)), None);
            days_tile(
                &cal,
                datetime!(2026-11-18 00:00 UTC),
                datetime!(2026-11-25 00:00 UTC),
            );
        }
    }

    #[test]
    fn changes_into_and_out_of_daylight_saving_tile_the_days() {
        let ny = Zone::parse("America/New_York").unwrap();
        let east = Zone::parse("+14:00").unwrap();
        let west = Zone::parse("-12:00").unwrap();
        // From +14:00 to -12:00 the first day is 50 hours; the reverse leaves the first day
        // empty (its end in the new zone is before the old day's end) and the next one short.
        for (from, to) in [(&east, &west), (&west, &east), (&ny, &east), (&west, &ny)] {
            let last = date!(2026 - 10 - 31);
            let cal = Calendar {
                zone: to.clone(),
                change: Some(ZoneChange {
                    from: from.clone(),
                    at: from.window(last).1,
                    first_day: last.next_day().unwrap(),
                }),
            };
            days_tile(
                &cal,
                datetime!(2026-10-28 00:00 UTC),
                datetime!(2026-11-05 00:00 UTC),
            );
        }
    }
}
