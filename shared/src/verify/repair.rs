//! `ctl verify --repair`: the differences a verification listed become events in the task queue,
//! sent by the backfill's machinery (`ctl`'s `control::backfill::run_backfill`: batches, rate,
//! queue-depth hold, checkpoint after every batch). Keys missing or differing in OSS get an
//! `ObjectCreated:Verify` event; keys only in OSS get `ObjectRemoved:Delete` when delete sync is
//! on (the sync function reads the source first and deletes only after S3 said `NoSuchKey`), and
//! are left out otherwise. The differences are read back from the report's parts, one part at a
//! time, so a repair interrupted is resumed from its checkpoint without verifying again.

use super::join::Kind;
use super::report::parse_part;
use crate::report::build::RecordSource;
use crate::store::error::StoreError;
use crate::store::listing::Position;
use crate::store::listing::{Listed, ObjectLister, Page};

/// Reads a verification's differences as objects to send events for.
pub struct RepairLister<S> {
    store: S,
    parts: std::collections::VecDeque<String>,
    after: Option<String>,
    deletes: bool,
}

impl<S> RepairLister<S> {
    /// The differences in `parts` (the summary's `differences_list.keys`), after the
    /// checkpoint's position (a destination key); extra keys become deletes when `deletes`.
    pub fn new(store: S, parts: Vec<String>, position: &Position, deletes: bool) -> Self {
        Self {
            store,
            parts: parts.into(),
            after: match position {
                Position::AfterKey { key } => Some(key.clone()),
                _ => None,
            },
            deletes,
        }
    }
}

/// What one row of the differences list sends: `None` for a row left out (an extra key without
/// delete sync).
pub fn row_to_listed(cells: &[String], deletes: bool) -> Option<Listed> {
    let cell = |i: usize| cells.get(i).map(String::as_str).unwrap_or_default();
    let extra = cell(2) == Kind::Extra.as_str();
    if extra && !deletes {
        return None;
    }
    Some(Listed {
        key: cell(1).to_owned(),
        size: if extra { None } else { cell(4).parse().ok() },
        etag: Some(cell(6).to_owned()).filter(|e| !extra && !e.is_empty()),
        last_modified: None,
        position: Position::AfterKey {
            key: cell(0).to_owned(),
        },
        removed: extra,
    })
}

impl<S: RecordSource + 'static> ObjectLister for RepairLister<S> {
    async fn next_page(&mut self) -> Result<Option<Page>, StoreError> {
        let Some(part) = self.parts.pop_front() else {
            return Ok(None);
        };
        let body = self
            .store
            .get(&part)
            .await
            .map_err(|e| StoreError::call("OSS", "GetObject", e, false))?;
        let rows = parse_part(&body, &part).map_err(|e| StoreError::Input(e.to_string()))?;
        let mut page = Page::default();
        for cells in rows {
            let dest_key = cells.first().cloned().unwrap_or_default();
            if self
                .after
                .as_deref()
                .is_some_and(|a| dest_key.as_bytes() <= a.as_bytes())
            {
                continue;
            }
            page.end = Some(Position::AfterKey { key: dest_key });
            match row_to_listed(&cells, self.deletes) {
                Some(o) => page.objects.push(o),
                None => page.not_current += 1,
            }
        }
        Ok(Some(page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str) -> Vec<String> {
        ["m/a b", "a b", kind, "", "5", "5", "abc", "DEF", "", ""]
            .map(str::to_owned)
            .to_vec()
    }

    #[test]
    fn rows_become_creations_or_deletes() {
        let o = row_to_listed(&row("missing"), false).unwrap();
        assert_eq!(
            (o.key.as_str(), o.size, o.etag.as_deref(), o.removed),
            ("a b", Some(5), Some("abc"), false)
        );
        assert_eq!(
            o.position,
            Position::AfterKey {
                key: "m/a b".into()
            }
        );
        assert!(row_to_listed(&row("may_differ"), false).is_some());
        assert_eq!(row_to_listed(&row("extra"), false), None);
        let d = row_to_listed(&row("extra"), true).unwrap();
        assert!(d.removed && d.etag.is_none() && d.size.is_none());
    }
}
