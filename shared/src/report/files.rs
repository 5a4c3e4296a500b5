//! Per-file truth: a day's records for one file (a destination key) folded into that file's state
//! for the day: which record settles it, and how many deliveries and attempts it took.
//!
//! A file's records are attempts. The one that settles the file is its latest record that is
//! its event's last word (`final`, which records written before the field existed are) and says
//! something about the file by itself: not a copy in progress (`in_progress`), and not a recheck
//! or continuation (`recheck_of`) unless it wrote or deleted the object. So a key that failed
//! with a wrong OSS secret and was copied once the secret was put right is `copied`, however
//! many failed attempts came first; a recheck that finds a key current leaves its copy `copied`.
//! A file without such a record takes what its latest record found when that is a last word
//! that did not fail (a recheck alone that found the key current: `skipped`), and is otherwise
//! `pending`: its latest record is a failure or deferral SQS delivers again, a hand-over to a
//! recheck, a copy in progress, or a recheck that failed; a later day settles it.

use crate::outcome::{Outcome, OutcomeKind};
use std::collections::BTreeMap;

/// The identity of the file a record is about: its destination key; for a record without one
/// (an event for another bucket or outside the prefix, a message that could not be read), its
/// source bucket and key, or else its message (a recheck's stands for the message it repeats).
/// Identities of the second and third kind start with a NUL, which no object key holds.
pub fn file_id(o: &Outcome) -> String {
    match (&o.dest_key, &o.source_key) {
        (Some(d), _) => d.clone(),
        (None, Some(s)) => format!("\0{}\0{s}", o.bucket.as_deref().unwrap_or_default()),
        (None, None) => format!(
            "\0\0{}",
            o.recheck_of.as_deref().unwrap_or(o.message_id.as_str())
        ),
    }
}

/// A file's state at the end of its day's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileState {
    /// Settled by a record with this outcome (never `in_progress`).
    Settled(OutcomeKind),
    /// No record of the day settles it yet.
    Pending,
}

impl FileState {
    /// Every state, in report order: the settled outcomes, then `pending`.
    pub const ALL: [FileState; 10] = [
        Self::Settled(OutcomeKind::Copied),
        Self::Settled(OutcomeKind::Skipped),
        Self::Settled(OutcomeKind::Deleted),
        Self::Settled(OutcomeKind::Superseded),
        Self::Settled(OutcomeKind::Filtered),
        Self::Settled(OutcomeKind::Ignored),
        Self::Settled(OutcomeKind::Invalid),
        Self::Settled(OutcomeKind::Failed),
        Self::Settled(OutcomeKind::Deferred),
        Self::Pending,
    ];

    /// The name used in reports: the settling outcome's, or `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Settled(k) => k.as_str(),
            Self::Pending => "pending",
        }
    }

    /// Whether the file failed: `failed`, `invalid`, or `deferred` on its message's last
    /// delivery (it goes to the DLQ undone). These are `failed_list`.
    pub fn failed(self) -> bool {
        matches!(
            self,
            Self::Settled(OutcomeKind::Failed | OutcomeKind::Invalid | OutcomeKind::Deferred)
        )
    }

    /// Whether nothing was written because nothing needed to be: `skipped`, `superseded`,
    /// `filtered`, `ignored`. These are `skipped_list`.
    pub fn skipped(self) -> bool {
        matches!(
            self,
            Self::Settled(
                OutcomeKind::Skipped
                    | OutcomeKind::Superseded
                    | OutcomeKind::Filtered
                    | OutcomeKind::Ignored
            )
        )
    }
}

/// Whether a record can settle its file (see the module doc).
pub fn settles(o: &Outcome) -> bool {
    o.is_final
        && o.outcome != OutcomeKind::InProgress
        && (o.recheck_of.is_none()
            || matches!(o.outcome, OutcomeKind::Copied | OutcomeKind::Deleted))
}

/// Outcomes that say the work is not done, or goes on elsewhere.
fn unfinished(k: OutcomeKind) -> bool {
    matches!(
        k,
        OutcomeKind::Failed
            | OutcomeKind::Invalid
            | OutcomeKind::Deferred
            | OutcomeKind::InProgress
    )
}

/// One file's day.
#[derive(Debug, Clone, PartialEq)]
pub struct FileDay {
    /// Its state.
    pub state: FileState,
    /// The record that settles it, or its latest record when it is pending: the file's row
    /// shows this record's fields (key, size, checksums, error).
    pub record: Outcome,
    /// The outcome of its latest record (a recheck after a copy, say).
    pub last_outcome: OutcomeKind,
    /// When its first record of the day was processed.
    pub first_at: String,
    /// When its latest record of the day was processed.
    pub last_at: String,
    /// Deliveries of the event's own messages: its records that are not rechecks or
    /// continuations.
    pub deliveries: u64,
    /// Every record of the day (each one attempt).
    pub attempts: u64,
    /// Bytes written to the destination over all its attempts.
    pub bytes_moved: u64,
}

struct Open {
    id: String,
    settled: Option<Outcome>,
    latest: Outcome,
    first_at: String,
    deliveries: u64,
    attempts: u64,
    bytes_moved: u64,
}

impl Open {
    fn new(id: &str, o: Outcome) -> Self {
        let mut open = Self {
            id: id.to_owned(),
            settled: None,
            first_at: o.processed_at.clone(),
            latest: o.clone(),
            deliveries: 0,
            attempts: 0,
            bytes_moved: 0,
        };
        open.add(o);
        open
    }

    fn add(&mut self, o: Outcome) {
        self.attempts += 1;
        self.deliveries += u64::from(o.recheck_of.is_none());
        self.bytes_moved += o.bytes_moved;
        if settles(&o) {
            self.settled = Some(o.clone());
        }
        self.latest = o;
    }

    fn close(self) -> FileDay {
        let last_outcome = self.latest.outcome;
        let last_at = self.latest.processed_at.clone();
        let (state, record) = match self.settled {
            Some(r) => (FileState::Settled(r.outcome), r),
            None => match self.latest.outcome {
                // A recheck alone that found nothing to do, as its last word: what it found.
                k if self.latest.is_final && !unfinished(k) => (FileState::Settled(k), self.latest),
                _ => (FileState::Pending, self.latest),
            },
        };
        FileDay {
            state,
            record,
            last_outcome,
            first_at: self.first_at,
            last_at,
            deliveries: self.deliveries,
            attempts: self.attempts,
            bytes_moved: self.bytes_moved,
        }
    }
}

/// Folds records, grouped by [`file_id`] and in processing order within a file (the report's
/// sort order), into one [`FileDay`] per file.
#[derive(Default)]
pub struct FileFolder {
    open: Option<Open>,
}

impl FileFolder {
    /// Adds the next record (of file `id`); returns the previous file once a record of another
    /// file comes.
    pub fn push(&mut self, id: &str, o: Outcome) -> Option<FileDay> {
        match &mut self.open {
            Some(open) if open.id == id => {
                open.add(o);
                None
            }
            slot => slot.replace(Open::new(id, o)).map(Open::close),
        }
    }

    /// The last file.
    pub fn finish(self) -> Option<FileDay> {
        self.open.map(Open::close)
    }
}

/// Files per state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileTotals {
    /// Files.
    pub files: u64,
    /// Files per state.
    pub states: BTreeMap<FileState, u64>,
}

impl FileTotals {
    /// Counts one file.
    pub fn add(&mut self, f: &FileDay) {
        self.files += 1;
        *self.states.entry(f.state).or_default() += 1;
    }

    /// Files in every state, zeros included, by name.
    pub fn count_map(&self) -> BTreeMap<&'static str, u64> {
        FileState::ALL
            .iter()
            .map(|s| (s.as_str(), self.states.get(s).copied().unwrap_or(0)))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record of `key` at second `at` of the day.
    pub(crate) fn rec(key: &str, at: u32, kind: OutcomeKind, is_final: bool) -> Outcome {
        serde_json::from_value(serde_json::json!({
            "task": "t", "processed_at": format!("2026-11-25T10:00:{at:02}.000Z"),
            "source_key": key, "dest_key": format!("m/{key}"), "bucket": "src",
            "outcome": kind, "bytes_moved": if kind == OutcomeKind::Copied { 7 } else { 0 },
            "attempts": 1, "duration_ms": 1, "message_id": format!("m{at}"), "final": is_final,
        }))
        .unwrap()
    }

    fn recheck(mut o: Outcome) -> Outcome {
        o.recheck_of = Some("orig".into());
        o
    }

    fn fold(records: Vec<Outcome>) -> Vec<FileDay> {
        let mut f = FileFolder::default();
        let mut out: Vec<FileDay> = records
            .into_iter()
            .filter_map(|o| f.push(&file_id(&o), o))
            .collect();
        out.extend(f.finish());
        out
    }

    use OutcomeKind::*;

    #[test]
    fn a_copy_after_failed_attempts_settles_the_file_as_copied() {
        // Wrong secret: a permanent failure (final), a transient one (not final), a recheck's
        // failure; then the right secret: copied, and the copy's recheck finds it current.
        let days = fold(vec![
            rec("a", 1, Failed, true),
            rec("a", 2, Failed, false),
            recheck(rec("a", 3, Failed, true)),
            rec("a", 4, Copied, true),
            recheck(rec("a", 5, Skipped, true)),
        ]);
        assert_eq!(days.len(), 1);
        let a = &days[0];
        assert_eq!(a.state, FileState::Settled(Copied));
        assert!(!a.state.failed());
        assert_eq!(a.record.processed_at, "2026-11-25T10:00:04.000Z");
        assert_eq!((a.attempts, a.deliveries, a.bytes_moved), (5, 3, 7));
        assert_eq!(a.last_outcome, Skipped);
        assert_eq!(
            (a.first_at.as_str(), a.last_at.as_str()),
            ("2026-11-25T10:00:01.000Z", "2026-11-25T10:00:05.000Z")
        );
    }

    #[test]
    fn the_latest_settling_record_decides() {
        let days = fold(vec![
            rec("a", 1, Copied, true),
            rec("a", 2, Failed, true),
            rec("b", 1, Failed, true),
            rec("b", 2, Skipped, true),
            rec("c", 1, Deferred, true),
        ]);
        let states: Vec<_> = days.iter().map(|d| d.state).collect();
        assert_eq!(
            states,
            [
                FileState::Settled(Failed),
                FileState::Settled(Skipped),
                FileState::Settled(Deferred)
            ]
        );
        assert!(days[0].state.failed() && days[1].state.skipped() && days[2].state.failed());
    }

    #[test]
    fn attempts_alone_leave_a_file_pending_never_failed() {
        let mut progress = rec("a", 1, InProgress, true);
        progress.recheck_of = None;
        let days = fold(vec![
            progress,
            recheck(rec("a", 2, InProgress, true)),
            rec("b", 1, Failed, false),
            recheck(rec("c", 1, Failed, true)),
            recheck(rec("d", 1, Skipped, true)),
            // A recheck sent on for its next hop (not final), after a hand-over (not final).
            rec("e", 1, Deferred, false),
            recheck(rec("e", 2, Ignored, false)),
        ]);
        let states: Vec<_> = days.iter().map(|d| d.state.as_str()).collect();
        assert_eq!(
            states,
            ["pending", "pending", "pending", "skipped", "pending"]
        );
        assert_eq!(days[0].deliveries, 1);
        assert!(days.iter().all(|d| !d.state.failed()));
    }

    #[test]
    fn records_without_a_destination_key_are_files_of_their_own() {
        let mut other = rec("x", 1, Filtered, true);
        other.dest_key = None;
        other.bucket = Some("elsewhere".into());
        let mut junk = rec("", 2, Invalid, true);
        junk.dest_key = None;
        junk.source_key = None;
        assert_ne!(file_id(&other), file_id(&rec("x", 1, Copied, true)));
        assert_eq!(file_id(&junk), "\0\0m2");
        let mut again = junk.clone();
        again.message_id = "m9".into();
        again.recheck_of = Some("m2".into());
        assert_eq!(
            file_id(&again),
            file_id(&junk),
            "a recheck stands for its message"
        );
        let mut totals = FileTotals::default();
        for d in fold(vec![junk, other]) {
            totals.add(&d);
        }
        let map = totals.count_map();
        assert_eq!((totals.files, map["invalid"], map["filtered"]), (2, 1, 1));
        assert_eq!(map.len(), FileState::ALL.len());
    }
}
