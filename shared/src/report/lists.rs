//! A day's lists as they are written: each list as CSV parts of at most `part_bytes`
//! ([`ListWriter`]), the day's journal of the parts written (`_journal.json`, [`JOURNAL`]), so that
//! only parts the report wrote are ever deleted, and the five lists of a day together
//! ([`DayLists`]).

use super::files::{FileDay, FileTotals};
use super::html::DayChart;
use super::ports::{ReportError, ReportStore};
use super::rows::{attempt_fields, csv_row, file_fields, late_header, ATTEMPT_HEADER, FILE_HEADER};
use crate::checksum::md5_hex;
use crate::outcome::Outcome;
use bytes::Bytes;
use serde_json::json;

/// One written file, for the manifest.
pub(super) struct Written {
    pub(super) key: String,
    pub(super) size: u64,
    pub(super) md5: String,
    pub(super) rows: Option<u64>,
}

/// The report format's version, in every summary and manifest. 2: the file lists hold one row
/// per file (its state for the day), `attempts_list` every record; summaries count both. 3:
/// `late_list` (records of days already complete), `late_records`, and the manifest's
/// `read_after_end`. 4: the lists' `dest_size`, `dest_crc64_hex`, `bytes_moved` and
/// `dropped_metadata` columns, `dest_crc64` marked as text and cells a spreadsheet would
/// evaluate neutralised ([`super::rows`]), and `fileSchema` in the summary and manifest. 5:
/// `time_zone` (an IANA name or an offset; `utc_offset` is now the offset at the day's start),
/// `window` (the day's `start` and `end` in UTC: 23 or 25 hours on a daylight-saving change,
/// other lengths after a change of zone), `zone_changed_from` ([`super::change`]) and
/// `paused_periods` ([`super::pauses`]). `report.html` ([`super::html`]) came within 4: it
/// changes no list, summary or manifest field. Within 5, the summary's `lists.<name>` gained
/// `keys` (the list's part keys, beside `rows` and `parts`, their count): an added field, so no
/// new version; a reader of an older summary takes `part-NNNNN.csv` up to `parts`.
pub const FORMAT_VERSION: u32 = 5;

/// Writes one list as CSV parts of at most `part_bytes`, each with the header row.
pub(super) struct ListWriter {
    name: &'static str,
    header: Vec<u8>,
    dir: String,
    buf: Vec<u8>,
    rows_in_part: u64,
    rows: u64,
    parts: Vec<Written>,
    part_bytes: usize,
}

impl ListWriter {
    fn fresh_buffer(header: &[u8], part_bytes: usize) -> Vec<u8> {
        // Reserved whole so the buffer never doubles past the part size; untouched pages cost
        // no memory.
        let mut buf = Vec::with_capacity(part_bytes + 64 * 1024);
        buf.extend_from_slice(header);
        buf
    }

    pub(super) fn new(
        name: &'static str,
        header: &[&str],
        day_dir: &str,
        part_bytes: usize,
    ) -> Self {
        let header = csv_row(header);
        Self {
            name,
            dir: format!("{day_dir}/{name}"),
            buf: Self::fresh_buffer(&header, part_bytes),
            header,
            rows_in_part: 0,
            rows: 0,
            parts: Vec::new(),
            part_bytes,
        }
    }

    pub(super) async fn add<S: ReportStore>(
        &mut self,
        store: &S,
        journal: &mut Journal,
        row: &[u8],
    ) -> Result<(), ReportError> {
        if self.rows_in_part > 0 && self.buf.len() + row.len() > self.part_bytes {
            self.flush(store, journal).await?;
        }
        self.buf.extend_from_slice(row);
        self.rows_in_part += 1;
        self.rows += 1;
        Ok(())
    }

    async fn flush<S: ReportStore>(
        &mut self,
        store: &S,
        journal: &mut Journal,
    ) -> Result<(), ReportError> {
        let number = self.parts.len() as u32 + 1;
        // The journal first: every part the report writes is numbered within it.
        journal.record(store, self.name, number).await?;
        let key = part_key(&self.dir, number);
        let body = std::mem::replace(
            &mut self.buf,
            Self::fresh_buffer(&self.header, self.part_bytes),
        );
        let w = Written {
            key: key.clone(),
            size: body.len() as u64,
            md5: md5_hex(&body),
            rows: Some(self.rows_in_part),
        };
        store.put(&key, Bytes::from(body)).await?;
        self.parts.push(w);
        self.rows_in_part = 0;
        Ok(())
    }

    /// Writes the last part (a header-only part for an empty list) and removes the parts an
    /// earlier, longer run of the report wrote past this run's last (numbered within the
    /// journal). Nothing else in the folder is touched: not a key the report did not write.
    pub(super) async fn finish<S: ReportStore>(
        mut self,
        store: &S,
        journal: &mut Journal,
    ) -> Result<(&'static str, u64, Vec<Written>), ReportError> {
        if self.rows_in_part > 0 || self.parts.is_empty() {
            self.flush(store, journal).await?;
        }
        let count = self.parts.len() as u32;
        let written_before = journal.parts(self.name);
        if written_before > count {
            let stale: std::collections::HashSet<String> = (count + 1..=written_before)
                .map(|n| part_key(&self.dir, n))
                .collect();
            for key in store.list_keys(&format!("{}/", self.dir)).await? {
                if stale.contains(&key) {
                    store.delete(&key).await?;
                }
            }
        }
        Ok((self.name, self.rows, self.parts))
    }
}

/// A list's part `n` (from 1), `dir` being the list's folder: `<dir>/part-NNNNN.csv`.
pub fn part_key(dir: &str, n: u32) -> String {
    format!("{dir}/part-{n:05}.csv")
}

/// The parts of a day's lists the report has written: `<day>/_journal.json`, the highest part
/// number of each list ever written. It is written before any part numbered beyond what it
/// records, so every part of the day the report ever wrote is numbered within it, and cleanup
/// deletes only those: a part an earlier run wrote beyond this run's last. A key in a list
/// folder that the report did not write (an object synced there, say) is never deleted, whatever
/// its name, unless it bears the name of a part the report wrote and then overwrote.
pub(super) struct Journal {
    key: String,
    parts: std::collections::BTreeMap<String, u32>,
}

/// The journal's file name in a day's folder.
pub const JOURNAL: &str = "_journal.json";

/// The lists of a day, in the order [`DayLists`] holds them.
pub(super) const LISTS: [&str; 5] = [
    "total_list",
    "failed_list",
    "skipped_list",
    "attempts_list",
    "late_list",
];

impl Journal {
    /// The day's journal, or an empty one (a day never written, or one written before journals:
    /// its stale parts, if any, are left, as they were never in a manifest). A journal that
    /// exists but cannot be read is recovered from the list folders ([`Self::recover`]).
    pub(super) async fn read<S: ReportStore>(store: &S, dir: &str) -> Result<Self, ReportError> {
        let key = format!("{dir}/{JOURNAL}");
        if !store.exists(&key).await? {
            return Ok(Self {
                key,
                parts: Default::default(),
            });
        }
        let raw = store.get(&key).await?;
        let parts = serde_json::from_slice::<serde_json::Value>(&raw)
            .ok()
            .and_then(|v| serde_json::from_value(v.get("parts")?.clone()).ok());
        match parts {
            Some(parts) => Ok(Self { key, parts }),
            None => Self::recover(store, dir, key).await,
        }
    }

    /// A journal that cannot be read (torn, or overwritten by something else): its part numbers
    /// are lost, so the `part-NNNNN.csv` names already in each list folder are taken as the
    /// report's, and saved as the journal at once (a one-time recovery, logged). Stale parts
    /// among them are then deleted as usual; a foreign object bearing a part's name beyond this
    /// run's last would be too, which is the price of not forgetting the report's own.
    async fn recover<S: ReportStore>(
        store: &S,
        dir: &str,
        key: String,
    ) -> Result<Self, ReportError> {
        let mut parts = std::collections::BTreeMap::new();
        for list in LISTS {
            let folder = format!("{dir}/{list}/");
            let highest = store
                .list_keys(&folder)
                .await?
                .iter()
                .filter_map(|k| {
                    let name = k.strip_prefix(&folder)?;
                    let n = name.strip_prefix("part-")?.strip_suffix(".csv")?;
                    n.bytes()
                        .all(|b| b.is_ascii_digit())
                        .then(|| n.parse::<u32>().ok())?
                })
                .max();
            if let Some(n) = highest {
                parts.insert(list.to_owned(), n);
            }
        }
        tracing::warn!(key = %key, parts = ?parts, "the report's journal cannot be read; the part-NNNNN.csv names in the day's list folders are taken as the report's parts, and the journal is written again from them");
        let journal = Self { key, parts };
        journal.save(store).await?;
        Ok(journal)
    }

    fn parts(&self, list: &str) -> u32 {
        self.parts.get(list).copied().unwrap_or(0)
    }

    async fn save<S: ReportStore>(&self, store: &S) -> Result<(), ReportError> {
        let body = serde_json::to_vec_pretty(&json!({
            "format_version": FORMAT_VERSION,
            "parts": self.parts,
        }))
        .map_err(std::io::Error::other)?;
        store.put(&self.key, Bytes::from(body)).await
    }

    /// Notes part `n` of a list before it is written.
    async fn record<S: ReportStore>(
        &mut self,
        store: &S,
        list: &str,
        n: u32,
    ) -> Result<(), ReportError> {
        if n <= self.parts(list) {
            return Ok(());
        }
        self.parts.insert(list.to_owned(), n);
        self.save(store).await
    }

    /// After the stale parts are deleted: the lists' part counts as they now are.
    pub(super) async fn settle<S: ReportStore>(
        &mut self,
        store: &S,
        counts: &[(&'static str, u32)],
    ) -> Result<(), ReportError> {
        let mut changed = false;
        for (list, n) in counts {
            if self.parts(list) != *n {
                self.parts.insert((*list).to_owned(), *n);
                changed = true;
            }
        }
        if changed {
            self.save(store).await?;
        }
        Ok(())
    }
}

/// The file lists, `attempts_list` and `late_list` of one day, being written.
pub(super) struct DayLists {
    /// `total_list`, `failed_list`, `skipped_list` (rows of files), `attempts_list` (rows of
    /// records), `late_list` (rows of late records).
    pub(super) lists: [ListWriter; 5],
    pub(super) files: FileTotals,
    /// The page's per-hour figures, fed every file.
    pub(super) chart: DayChart,
    pub(super) journal: Journal,
}

impl DayLists {
    pub(super) fn new(dir: &str, part_bytes: usize, chart: DayChart, journal: Journal) -> Self {
        Self {
            journal,
            lists: [
                ListWriter::new(LISTS[0], &FILE_HEADER, dir, part_bytes),
                ListWriter::new(LISTS[1], &FILE_HEADER, dir, part_bytes),
                ListWriter::new(LISTS[2], &FILE_HEADER, dir, part_bytes),
                ListWriter::new(LISTS[3], &ATTEMPT_HEADER, dir, part_bytes),
                ListWriter::new(LISTS[4], &late_header(), dir, part_bytes),
            ],
            files: FileTotals::default(),
            chart,
        }
    }

    pub(super) async fn attempt<S: ReportStore>(
        &mut self,
        store: &S,
        o: &Outcome,
    ) -> Result<(), ReportError> {
        self.lists[3]
            .add(store, &mut self.journal, &csv_row(&attempt_fields(o)))
            .await
    }

    /// A file to `total_list`, and to `failed_list` or `skipped_list` by its state.
    pub(super) async fn file<S: ReportStore>(
        &mut self,
        store: &S,
        f: &FileDay,
    ) -> Result<(), ReportError> {
        self.files.add(f);
        self.chart.file(f);
        let row = csv_row(&file_fields(f));
        self.lists[0].add(store, &mut self.journal, &row).await?;
        if f.state.failed() {
            self.lists[1].add(store, &mut self.journal, &row).await?;
        } else if f.state.skipped() {
            self.lists[2].add(store, &mut self.journal, &row).await?;
        }
        Ok(())
    }
}
