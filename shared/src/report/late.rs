//! Late records: a record of a day whose report is already complete (its batch was filed after
//! the day's grace, or after a run as of a later instant completed the day) is listed in the
//! report of the day whose hour partitions it is found in (`late_list`, with its own day), never
//! dropped.
//!
//! A day's partitions reach past its end by the grace, so the next day reads some of the same
//! results objects. To tell a record an earlier day already took from a late one, each complete
//! day's manifest names the results objects filed after the day's end that it took records from
//! (`read_after_end`): from such an object a day takes its own records and every record of a
//! day complete before it. A later day takes a record of a complete day only from an object no
//! earlier day names. A day's partitions end before the start of the day after next (the grace
//! is at most a day), so the two days before are the only ones to ask.

use std::collections::BTreeSet;
use time::Date;

/// The manifest field naming the results objects filed after the day's end that it read.
pub const READ_AFTER_END: &str = "read_after_end";

/// What the complete days before a day took from results objects it also reads.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    /// Objects an earlier day read after its end.
    read: BTreeSet<String>,
    /// Days whose manifests do not say (written before the field existed): their records are
    /// never taken as late.
    unknown: BTreeSet<Date>,
}

impl Taken {
    /// Notes what a complete day's manifest says it read after its end (`None`: the manifest
    /// predates the field; a day without a manifest read nothing: an empty set).
    pub fn insert(&mut self, day: Date, read_after_end: Option<BTreeSet<String>>) {
        match read_after_end {
            Some(read) => self.read.extend(read),
            None => {
                self.unknown.insert(day);
            }
        }
    }

    /// Whether a record of complete day `from`, found in results object `object`, is late: no
    /// earlier day took it.
    pub fn is_late(&self, from: Date, object: &str) -> bool {
        !self.unknown.contains(&from) && !self.read.contains(object)
    }
}

/// The `read_after_end` list of a manifest; `None` when the manifest has none.
pub fn read_after_end(manifest: &serde_json::Value) -> Option<BTreeSet<String>> {
    manifest.get(READ_AFTER_END)?.as_array().map(|keys| {
        keys.iter()
            .filter_map(|k| k.as_str().map(str::to_owned))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_record_is_late_unless_its_day_read_its_object() {
        let mut t = Taken::default();
        let read: BTreeSet<String> = ["r/a.jsonl".to_owned()].into();
        t.insert(date!(2026 - 11 - 20), Some(read));
        t.insert(date!(2026 - 11 - 19), None);
        assert!(!t.is_late(date!(2026 - 11 - 20), "r/a.jsonl"));
        assert!(t.is_late(date!(2026 - 11 - 20), "r/b.jsonl"));
        assert!(
            !t.is_late(date!(2026 - 11 - 19), "r/b.jsonl"),
            "an old manifest"
        );
        assert!(t.is_late(date!(2026 - 11 - 10), "r/b.jsonl"), "older days");
        assert!(
            !t.is_late(date!(2026 - 11 - 10), "r/a.jsonl"),
            "a record an earlier day took as late"
        );
    }

    #[test]
    fn the_list_is_read_from_a_manifest() {
        let m = serde_json::json!({ READ_AFTER_END: ["x", "y"] });
        assert_eq!(read_after_end(&m).unwrap().len(), 2);
        assert_eq!(read_after_end(&serde_json::json!({"files": []})), None);
    }
}
