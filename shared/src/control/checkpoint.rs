//! A backfill's checkpoint: what it covers and how far it got, saved after every batch the queue
//! accepted, so a backfill that is stopped or killed resumes where it was.

use super::ControlError;
use crate::store::listing::Position;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The checkpoint format's version.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Where a backfill reads the objects from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ObjectSource {
    /// ListObjectsV2 of the source bucket.
    List,
    /// An S3 Inventory report (CSV), by its `manifest.json`.
    Inventory {
        /// `s3://bucket/key` of the manifest.
        manifest: String,
    },
    /// The differences a verification listed (`ctl verify --repair`), by its report folder.
    Verification {
        /// The verification's folder in the report area (`…/verify/<stamp>/`).
        report: String,
    },
}

/// What a backfill covers; a checkpoint is only resumed by a backfill with the same plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The task.
    pub task: String,
    /// The source bucket.
    pub source_bucket: String,
    /// Only keys under this prefix.
    pub prefix: String,
    /// Only objects modified at or after this instant (RFC 3339).
    pub since: Option<String>,
    /// Where the objects are read from.
    pub source: ObjectSource,
    /// The task queue sent to.
    pub queue_url: String,
}

/// Counts so far, over every run of the backfill.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Objects read from the listing or inventory.
    pub listed: u64,
    /// Events the queue accepted.
    pub sent: u64,
    /// Objects left out because they were modified before `since`.
    pub before_since: u64,
    /// Inventory rows left out: outside the prefix, not the latest version, or delete markers.
    pub not_current: u64,
}

/// A backfill's saved state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// [`CHECKPOINT_VERSION`].
    pub format_version: u32,
    /// What it covers.
    pub plan: Plan,
    /// How far it got.
    pub position: Position,
    /// Counts so far.
    pub counts: Counts,
    /// When the backfill started (RFC 3339).
    pub started_at: String,
    /// When this checkpoint was saved.
    pub updated_at: String,
    /// Runs so far (1 for a backfill never interrupted).
    pub runs: u32,
    /// Whether every object was sent.
    pub finished: bool,
}

impl Checkpoint {
    /// A fresh checkpoint for a plan.
    pub fn new(plan: Plan, now: &str) -> Self {
        Self {
            format_version: CHECKPOINT_VERSION,
            plan,
            position: Position::Start,
            counts: Counts::default(),
            started_at: now.to_owned(),
            updated_at: now.to_owned(),
            runs: 1,
            finished: false,
        }
    }
}

/// What to do with a saved checkpoint for a new backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// No unfinished checkpoint: start from the beginning.
    Fresh(Checkpoint),
    /// An unfinished checkpoint of the same plan: go on from it.
    Continue(Checkpoint),
}

/// Decides between resuming and starting over. An unfinished checkpoint of another plan is an
/// error unless `restart` is given: silently dropping it would lose track of a half-done backfill.
pub fn resume(
    saved: Option<Checkpoint>,
    plan: Plan,
    restart: bool,
    now: &str,
) -> Result<Resume, ControlError> {
    match saved {
        Some(cp) if !cp.finished && !restart => {
            if cp.plan != plan {
                return Err(ControlError::Input(format!(
                    "an unfinished backfill with other settings is checkpointed ({}); run it with \
                     the same settings to finish it, or pass --restart to start this one over",
                    serde_json::to_string(&cp.plan).unwrap_or_default()
                )));
            }
            let mut cp = cp;
            cp.runs += 1;
            cp.updated_at = now.to_owned();
            Ok(Resume::Continue(cp))
        }
        _ => Ok(Resume::Fresh(Checkpoint::new(plan, now))),
    }
}

/// Where checkpoints are kept.
pub trait CheckpointStore: Send + Sync {
    /// The saved checkpoint, if any.
    fn load(&self) -> Result<Option<Checkpoint>, ControlError>;
    /// Saves a checkpoint, replacing the last one whole.
    fn save(&self, cp: &Checkpoint) -> Result<(), ControlError>;
}

/// A checkpoint file, replaced atomically (written beside it, then renamed over it), so a kill at
/// any point leaves either the old checkpoint or the new one.
#[derive(Debug, Clone)]
pub struct FileCheckpoint {
    path: PathBuf,
}

impl FileCheckpoint {
    /// A checkpoint at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, detail: impl std::fmt::Display) -> ControlError {
        ControlError::Checkpoint {
            path: self.path.display().to_string(),
            detail: detail.to_string(),
        }
    }
}

impl CheckpointStore for FileCheckpoint {
    fn load(&self) -> Result<Option<Checkpoint>, ControlError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let cp: Checkpoint = serde_json::from_str(&text)
            .map_err(|e| self.error(format!("not a backfill checkpoint: {e}")))?;
        if cp.format_version != CHECKPOINT_VERSION {
            return Err(self.error(format!(
                "format version {} is not {CHECKPOINT_VERSION}",
                cp.format_version
            )));
        }
        Ok(Some(cp))
    }

    fn save(&self, cp: &Checkpoint) -> Result<(), ControlError> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let body = serde_json::to_vec_pretty(cp).map_err(|e| self.error(e))?;
        std::fs::write(&tmp, body).map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(prefix: &str) -> Plan {
        Plan {
            task: "t".into(),
            source_bucket: "src".into(),
            prefix: prefix.into(),
            since: None,
            source: ObjectSource::List,
            queue_url: "q".into(),
        }
    }

    #[test]
    fn files_round_trip_and_resume_only_the_same_plan() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileCheckpoint::new(dir.path().join("cp.json"));
        assert_eq!(store.load().unwrap(), None);
        let mut cp = Checkpoint::new(plan("a/"), "t0");
        cp.position = Position::AfterKey { key: "a/ü".into() };
        cp.counts.sent = 10;
        store.save(&cp).unwrap();
        let back = store.load().unwrap().unwrap();
        assert_eq!(back, cp);

        match resume(Some(back.clone()), plan("a/"), false, "t1").unwrap() {
            Resume::Continue(c) => {
                assert_eq!(c.position, cp.position);
                assert_eq!(c.runs, 2);
            }
            other => panic!("{other:?}"),
        }
        let e = resume(Some(back.clone()), plan("b/"), false, "t1").unwrap_err();
        assert!(e.to_string().contains("--restart"), "{e}");
        assert!(matches!(
            resume(Some(back.clone()), plan("b/"), true, "t1").unwrap(),
            Resume::Fresh(_)
        ));
        let mut done = back;
        done.finished = true;
        match resume(Some(done), plan("a/"), false, "t1").unwrap() {
            Resume::Fresh(c) => assert_eq!(c.position, Position::Start),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        std::fs::write(&path, "{\"format_version\": 1, \"plan\":").unwrap();
        let e = FileCheckpoint::new(&path).load().unwrap_err();
        assert!(e.to_string().contains("not a backfill checkpoint"), "{e}");
    }
}
