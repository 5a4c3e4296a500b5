//! Paused periods: when the task's delivery was switched off (`ctl pause` disables the sync
//! function's event source mapping on the task queue), so that a day without records can be told
//! from a paused one.
//!
//! Each report run looks at the mapping ([`PauseWatch`]) and notes what it sees in a journal,
//! `<REPORT_PREFIX>/<task>/paused.json` in the report destination (beside the day folders; the
//! report can write there, and a reader of the reports finds it next to them). A period opens when
//! a run finds the mapping not delivering and closes when a later run finds it delivering again;
//! both ends are the mapping's own `LastModified` (when its state changed), so they are exact
//! whatever the schedule, and the run's time when the mapping does not say. Each day's summary
//! lists the periods that overlap its window as `paused_periods: [{from, to, reason}]` (`to`
//! null while still paused).
//!
//! What this does not see: a pause and resume both between two runs (the mapping says only its
//! latest change), and a task fed by `sync poll` instead of the mapping when that process is not
//! running (no state anywhere says so; the queue's age alarm covers it).

use crate::outcome::format_time;
use serde_json::{json, Value};
use std::future::Future;
use time::OffsetDateTime;

/// The journal's name under the task's report prefix.
pub const JOURNAL: &str = "paused.json";

/// What one look at the task's delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// When the look was taken.
    pub at: OffsetDateTime,
    /// The event source mapping's state (`Enabled`, `Disabled`, `Disabling`, ...).
    pub state: String,
    /// When the mapping's state last changed (its `LastModified`), if it says.
    pub changed_at: Option<OffsetDateTime>,
    /// Messages waiting in the task queue, if known.
    pub waiting: Option<u64>,
}

/// Looks at the task's delivery: the adapter asks Lambda for the event source mapping (and SQS for
/// the queue's depth); tests answer from memory.
pub trait PauseWatch: Send + Sync {
    /// The delivery's state now, or why it cannot be seen; `at` is now on the real clock (never a
    /// report's "as of" instant), the sighting's [`Sighting::at`].
    fn look(&self, at: OffsetDateTime) -> impl Future<Output = Result<Sighting, String>> + Send;
}

/// Whether a mapping in this state delivers messages (or is about to): seeing one closes an open
/// paused period.
pub fn delivers(state: &str) -> bool {
    matches!(state, "Enabled" | "Enabling" | "Updating" | "Creating")
}

/// Whether a mapping in this state has been switched off (`ctl pause`): seeing one opens a
/// paused period. Any other state (`Unknown`, none, one Lambda adds later) neither opens nor
/// closes one: it is not known to be paused.
pub fn switched_off(state: &str) -> bool {
    matches!(state, "Disabled" | "Disabling")
}

/// One paused period, as written in the journal and the summaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PausedPeriod {
    /// When the pause began.
    pub from: OffsetDateTime,
    /// When delivery resumed; `None` while still paused.
    pub to: Option<OffsetDateTime>,
    /// Why it counts as paused: the mapping's state, and the messages waiting when first seen.
    pub reason: String,
}

impl PausedPeriod {
    /// `{"from", "to", "reason"}`, times in RFC 3339 (`to` null while open).
    pub fn to_json(&self) -> Value {
        json!({"from": format_time(self.from), "to": self.to.map(format_time), "reason": self.reason})
    }

    fn from_json(v: &Value) -> Option<Self> {
        let time = |field: &str| {
            v.get(field)?.as_str().and_then(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
        };
        Some(Self {
            from: time("from")?,
            to: time("to"),
            reason: v.get("reason")?.as_str()?.to_owned(),
        })
    }
}

/// The journal of paused periods, oldest first; at most the last one is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    /// The periods.
    pub periods: Vec<PausedPeriod>,
}

impl Journal {
    /// Notes a sighting: opens a period when the mapping is switched off ([`switched_off`]) and
    /// none is open, closes the open one when it delivers again ([`delivers`]); any other state
    /// is logged and changes nothing. The mapping's `changed_at` dates either end when it is
    /// plausible (not after the sighting, and for a close not before the period began).
    pub fn note(&mut self, s: &Sighting) {
        let changed = s.changed_at.filter(|t| *t <= s.at);
        let open = self.periods.last_mut().filter(|p| p.to.is_none());
        if !switched_off(&s.state) && !delivers(&s.state) {
            tracing::warn!(state = %s.state, "the event source mapping's state is neither switched off nor delivering; no paused period is opened or closed for it");
            return;
        }
        match (delivers(&s.state), open) {
            (false, None) => {
                let waiting = s
                    .waiting
                    .map(|n| format!(", {n} message(s) waiting"))
                    .unwrap_or_default();
                self.periods.push(PausedPeriod {
                    from: changed.unwrap_or(s.at),
                    to: None,
                    reason: format!("event source mapping {}{waiting}", s.state),
                });
            }
            (true, Some(p)) => {
                p.to = Some(changed.filter(|t| *t >= p.from).unwrap_or(s.at));
            }
            _ => {}
        }
    }

    /// The journal as written: `{"periods": [...]}`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let periods: Vec<Value> = self.periods.iter().map(PausedPeriod::to_json).collect();
        serde_json::to_vec_pretty(&json!({ "periods": periods })).unwrap_or_default()
    }

    /// Reads a journal; a period that cannot be read is left out (and logged), so a damaged
    /// journal costs its periods, never a report.
    pub fn from_bytes(raw: &[u8]) -> Self {
        let v: Value = serde_json::from_slice(raw).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the journal of paused periods cannot be read; starting a new one");
            Value::Null
        });
        let periods = v
            .get("periods")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| {
                        let read = PausedPeriod::from_json(p);
                        if read.is_none() {
                            tracing::warn!(period = %p, "a paused period cannot be read; left out");
                        }
                        read
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { periods }
    }

    /// The periods overlapping `[start, end)`.
    pub fn within(&self, (start, end): (OffsetDateTime, OffsetDateTime)) -> Vec<&PausedPeriod> {
        self.periods
            .iter()
            .filter(|p| p.from < end && p.to.is_none_or(|to| to > start))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn seen(at: OffsetDateTime, state: &str, changed: Option<OffsetDateTime>) -> Sighting {
        Sighting {
            at,
            state: state.into(),
            changed_at: changed,
            waiting: Some(12),
        }
    }

    #[test]
    fn a_pause_opens_and_closes_at_the_mappings_own_times() {
        let mut j = Journal::default();
        j.note(&seen(datetime!(2026-11-20 09:00 UTC), "Enabled", None));
        assert!(j.periods.is_empty());
        let off = datetime!(2026-11-20 09:20 UTC);
        j.note(&seen(
            datetime!(2026-11-20 10:00 UTC),
            "Disabled",
            Some(off),
        ));
        j.note(&seen(
            datetime!(2026-11-20 11:00 UTC),
            "Disabled",
            Some(off),
        ));
        assert_eq!(j.periods.len(), 1);
        assert_eq!(j.periods[0].from, off);
        assert_eq!(j.periods[0].to, None);
        assert!(j.periods[0].reason.contains("Disabled") && j.periods[0].reason.contains("12"));
        let on = datetime!(2026-11-21 03:10 UTC);
        j.note(&seen(datetime!(2026-11-21 04:00 UTC), "Enabled", Some(on)));
        assert_eq!(j.periods[0].to, Some(on));
        j.note(&seen(datetime!(2026-11-21 05:00 UTC), "Enabled", Some(on)));
        assert_eq!(j.periods.len(), 1, "delivering again changes nothing");
    }

    #[test]
    fn without_the_mappings_times_the_sightings_date_the_period() {
        let mut j = Journal::default();
        let later = datetime!(2026-11-20 12:00 UTC);
        // A change time after the sighting is not believed.
        j.note(&seen(
            datetime!(2026-11-20 10:00 UTC),
            "Disabling",
            Some(later),
        ));
        assert_eq!(j.periods[0].from, datetime!(2026-11-20 10:00 UTC));
        j.note(&seen(datetime!(2026-11-20 11:00 UTC), "Enabling", None));
        assert_eq!(j.periods[0].to, Some(datetime!(2026-11-20 11:00 UTC)));
    }

    #[test]
    fn only_a_switched_off_mapping_opens_a_pause() {
        let mut j = Journal::default();
        for state in ["Unknown", "", "Deleting", "SomethingNew"] {
            j.note(&seen(datetime!(2026-11-20 10:00 UTC), state, None));
        }
        assert!(j.periods.is_empty(), "an unknown state is no pause: {j:?}");
        j.note(&seen(datetime!(2026-11-20 11:00 UTC), "Disabled", None));
        assert_eq!(j.periods.len(), 1);
        // An unknown state neither closes the open period nor opens another.
        j.note(&seen(datetime!(2026-11-20 12:00 UTC), "Unknown", None));
        assert_eq!(j.periods.len(), 1);
        assert_eq!(j.periods[0].to, None);
        j.note(&seen(datetime!(2026-11-20 12:30 UTC), "Enabled", None));
        assert_eq!(j.periods[0].to, Some(datetime!(2026-11-20 12:30 UTC)));
        for (hour, state) in [(13, "Updating"), (15, "Creating"), (17, "Enabled")] {
            let at = datetime!(2026-11-20 00:00 UTC) + time::Duration::hours(hour);
            j.note(&seen(at, "Disabling", None));
            j.note(&seen(at + time::Duration::hours(1), state, None));
            let last = j.periods.last().unwrap();
            assert_eq!(last.from, at, "{state}");
            assert_eq!(
                last.to,
                Some(at + time::Duration::hours(1)),
                "{state} closes it"
            );
        }
        assert_eq!(j.periods.len(), 4);
    }

    #[test]
    fn a_day_shows_the_periods_overlapping_it() {
        let mut j = Journal::default();
        let p = |from, to| PausedPeriod {
            from,
            to,
            reason: "event source mapping Disabled".into(),
        };
        j.periods = vec![
            p(
                datetime!(2026-11-19 22:00 UTC),
                Some(datetime!(2026-11-20 01:00 UTC)),
            ),
            p(
                datetime!(2026-11-20 05:00 UTC),
                Some(datetime!(2026-11-20 06:00 UTC)),
            ),
            p(datetime!(2026-11-21 00:00 UTC), None),
        ];
        let day20 = (
            datetime!(2026-11-20 00:00 UTC),
            datetime!(2026-11-21 00:00 UTC),
        );
        assert_eq!(j.within(day20).len(), 2);
        let day22 = (
            datetime!(2026-11-22 00:00 UTC),
            datetime!(2026-11-23 00:00 UTC),
        );
        assert_eq!(j.within(day22), [&j.periods[2]], "still paused");
        let json = j.periods[2].to_json();
        assert_eq!(json["to"], Value::Null);
        assert_eq!(json["from"], "2026-11-21T00:00:00.000Z");
        assert_eq!(
            Journal::from_bytes(&j.to_bytes()),
            j,
            "written and read back"
        );
        assert_eq!(Journal::from_bytes(b"junk"), Journal::default());
    }
}
