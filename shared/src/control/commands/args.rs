//! The parsers of `ctl`'s argument values that are more than a number: instants (`--since`),
//! rates (`--rate`) and days (`--day`). Each returns the message the command line shows for a
//! value it refuses.

use crate::report::day::parse_day;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// `--since`: an RFC 3339 instant, or a date (its midnight UTC).
pub fn parse_since(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .or_else(|| parse_day(s).map(|d| d.midnight().assume_utc()))
        .ok_or_else(|| format!("{s:?} is neither RFC 3339 (2026-11-01T00:00:00Z) nor a date"))
}

/// `--rate`: events per second above 0, with or without `/s`.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim_end_matches("/s")
        .parse()
        .map_err(|_| format!("{s:?} is not a number of events per second"))?;
    if r.is_finite() && r > 0.0 {
        Ok(r)
    } else {
        Err(format!("{s:?} must be above 0"))
    }
}

/// `--day`: `YYYY-MM-DD`.
pub fn parse_day_arg(s: &str) -> Result<Date, String> {
    parse_day(s).ok_or_else(|| format!("{s:?} is not YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn since_is_an_instant_or_a_dates_midnight_utc() {
        assert_eq!(
            parse_since("2026-11-01T10:30:00+02:00").unwrap(),
            datetime!(2026-11-01 08:30 UTC)
        );
        assert_eq!(
            parse_since("2026-11-01").unwrap(),
            datetime!(2026-11-01 00:00 UTC)
        );
        assert_eq!(
            parse_since("yesterday").unwrap_err(),
            "\"yesterday\" is neither RFC 3339 (2026-11-01T00:00:00Z) nor a date"
        );
    }

    #[test]
    fn a_rate_is_positive_and_finite() {
        assert_eq!(parse_rate("50").unwrap(), 50.0);
        assert_eq!(parse_rate("2.5/s").unwrap(), 2.5);
        assert_eq!(
            parse_rate("fast").unwrap_err(),
            "\"fast\" is not a number of events per second"
        );
        assert_eq!(parse_rate("0").unwrap_err(), "\"0\" must be above 0");
        assert_eq!(parse_rate("-1/s").unwrap_err(), "\"-1/s\" must be above 0");
        assert!(parse_rate("inf").is_err());
    }

    #[test]
    fn a_day_is_yyyy_mm_dd() {
        assert_eq!(parse_day_arg("2026-11-20").unwrap(), date!(2026 - 11 - 20));
        assert_eq!(
            parse_day_arg("20.11.2026").unwrap_err(),
            "\"20.11.2026\" is not YYYY-MM-DD"
        );
    }
}
