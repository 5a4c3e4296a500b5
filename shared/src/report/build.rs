//! The report run: finds the days to report, strictly oldest first, merges each day's outcome
//! records into sorted CSV lists (one row per file in the file lists, one per record in
//! `attempts_list`), a page to look at (`report.html`, [`super::html`]), a summary, and, once the
//! day is complete, `manifest.json`, written after every file it lists.

use super::change::{zone_change, TIME_ZONE, WINDOW, ZONE_CHANGED_FROM};
use super::day::{
    format_day, format_offset, hour_partitions, parse_day, partition_day, partition_hour, Calendar,
    Zone,
};
use super::files::{FileDay, FileFolder, FileTotals};
use super::html::{render, DayChart, DayPage, PartLink, PausedPeriod};
use super::late::{read_after_end, Taken, READ_AFTER_END};
use super::pauses::{Journal as PauseJournal, PauseWatch, JOURNAL as PAUSE_JOURNAL};
use super::rows::{
    attempt_fields, csv_row, file_fields, file_schema, late_fields, late_header, sort_key,
    ATTEMPT_HEADER, FILE_HEADER,
};
use super::sort::{ExternalSorter, SortRow};
use super::stats::DayTotals;
use crate::outcome::{format_time, Outcome};
use bytes::Bytes;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use serde_json::json;
use std::collections::BTreeSet;
use std::future::Future;
use time::{Date, Duration, OffsetDateTime};

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

/// Why a report run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading the results store failed.
    #[error("results store: {0}")]
    Results(String),
    /// Writing the report failed.
    #[error("report destination: {0}")]
    Destination(String),
    /// Sorting spilled to local disk and that failed.
    #[error("local sort files: {0}")]
    Io(#[from] std::io::Error),
    /// The run's lease is nearly over: it stopped before its next write (see
    /// [`super::lease`]); the next run continues from what is written.
    #[error("stopped writing at {until}: the report lease expires at {expires}, and a write started (or still running) later could land after another run took the lease over; the next run continues")]
    LeaseEnding {
        /// When writing stopped.
        until: String,
        /// When the lease expires.
        expires: String,
    },
    /// The last complete day's manifest names a time zone this build cannot read.
    #[error("time zone: {0}")]
    Zone(String),
}

/// Listing a bucket: keys under a prefix, and the sub-prefixes (`.../`) directly under it.
pub trait Listing: Send + Sync {
    /// Keys under a prefix.
    fn list_keys(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, ReportError>> + Send;
    /// Sub-prefixes (`.../`) directly under a prefix.
    fn list_prefixes(
        &self,
        prefix: &str,
    ) -> impl Future<Output = Result<Vec<String>, ReportError>> + Send;
}

/// Where outcome records are read from.
pub trait RecordSource: Listing {
    /// An object's bytes.
    fn get(&self, key: &str) -> impl Future<Output = Result<Bytes, ReportError>> + Send;
}

/// Where reports are written (and read back: a day's manifest says what it read).
pub trait ReportStore: RecordSource {
    /// Writes an object whole.
    fn put(&self, key: &str, body: Bytes) -> impl Future<Output = Result<(), ReportError>> + Send;
    /// Whether an object exists.
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool, ReportError>> + Send;
    /// Deletes an object.
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), ReportError>> + Send;
}

/// How reports are made.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// Task id.
    pub task: String,
    /// Results store prefix.
    pub results_prefix: String,
    /// Report prefix in the destination bucket.
    pub report_prefix: String,
    /// The zone days are counted in.
    pub zone: Zone,
    /// How long after a day's end it is complete: longer than the sync function's longest run,
    /// so every record of the day has been written.
    pub grace: Duration,
    /// Largest CSV part, bytes.
    pub part_bytes: usize,
    /// Memory for sorting before rows spill to disk, bytes.
    pub sort_budget: usize,
    /// Results objects read at once.
    pub parallel_reads: usize,
}

/// What happened to one day in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRun {
    /// The day.
    pub day: Date,
    /// `pushing` or `complete`.
    pub state: &'static str,
    /// Records in the day.
    pub records: u64,
    /// Files in the day (destination keys, and records without one).
    pub files: u64,
}

/// What a run did: the days it reported, the folders under the task's results prefix it
/// ignored, and, when it reported no day, why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// The days reported, oldest first.
    pub days: Vec<DayRun>,
    /// Folders under the task's results prefix that are not `dt=YYYY-MM-DD` partitions, or
    /// folders in the partitions it looked into that are not `hr=HH`: never read.
    pub ignored: Vec<String>,
    /// Why no day was reported, when none was.
    pub nothing_to_do: Option<String>,
}

/// What the days of a run are reported against: how days are counted, and the paused periods.
#[derive(Clone, Copy)]
struct DayContext<'a> {
    calendar: &'a Calendar,
    paused: &'a PauseJournal,
}

/// Where reporting starts: the first hour partition, and the folders passed over on the way.
struct Discovery {
    /// The earliest `dt=YYYY-MM-DD/hr=HH` partition, as its UTC hour.
    first_hour: Option<OffsetDateTime>,
    /// Folders that are not partitions.
    ignored: Vec<String>,
}

fn join(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        rest.to_owned()
    } else {
        format!("{}/{rest}", prefix.trim_end_matches('/'))
    }
}

/// One written file, for the manifest.
struct Written {
    key: String,
    size: u64,
    md5: String,
    rows: Option<u64>,
}

/// The hex MD5 of `b`, as manifests record each file's.
pub(crate) fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// Writes one list as CSV parts of at most `part_bytes`, each with the header row.
struct ListWriter {
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

    fn new(name: &'static str, header: &[&str], day_dir: &str, part_bytes: usize) -> Self {
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

    async fn add<S: ReportStore>(
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
    async fn finish<S: ReportStore>(
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
struct Journal {
    key: String,
    parts: std::collections::BTreeMap<String, u32>,
}

/// The journal's file name in a day's folder.
pub const JOURNAL: &str = "_journal.json";

/// The lists of a day, in the order [`DayLists`] holds them.
const LISTS: [&str; 5] = [
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
    async fn read<S: ReportStore>(store: &S, dir: &str) -> Result<Self, ReportError> {
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
    async fn settle<S: ReportStore>(
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
struct DayLists {
    /// `total_list`, `failed_list`, `skipped_list` (rows of files), `attempts_list` (rows of
    /// records), `late_list` (rows of late records).
    lists: [ListWriter; 5],
    files: FileTotals,
    /// The page's per-hour figures, fed every file.
    chart: DayChart,
    journal: Journal,
}

impl DayLists {
    fn new(dir: &str, part_bytes: usize, chart: DayChart, journal: Journal) -> Self {
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

    async fn attempt<S: ReportStore>(&mut self, store: &S, o: &Outcome) -> Result<(), ReportError> {
        self.lists[3]
            .add(store, &mut self.journal, &csv_row(&attempt_fields(o)))
            .await
    }

    /// A file to `total_list`, and to `failed_list` or `skipped_list` by its state.
    async fn file<S: ReportStore>(&mut self, store: &S, f: &FileDay) -> Result<(), ReportError> {
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

/// A day's records as read: its own (totals, and sorted by file) and late ones of complete days.
struct DayRead {
    totals: DayTotals,
    /// Records and lags per hour, for the page.
    chart: DayChart,
    sorter: ExternalSorter,
    /// `late_list` rows, by day, file and time.
    late: ExternalSorter,
    unreadable: u64,
    /// Results objects filed after the day's end that it took records from.
    read_after_end: BTreeSet<String>,
}

/// A sorted record back from the sorter.
fn decode(row: &SortRow) -> Result<Outcome, ReportError> {
    serde_json::from_slice(&row.body)
        .map_err(|e| ReportError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// The report runner.
pub struct Reporter<'a, R, S> {
    /// Settings.
    pub settings: &'a ReportSettings,
    /// The results store.
    pub results: &'a R,
    /// The destination bucket.
    pub store: &'a S,
}

impl<R: RecordSource, S: ReportStore> Reporter<'_, R, S> {
    fn task_results(&self) -> String {
        join(
            &self.settings.results_prefix,
            &format!("{}/", self.settings.task),
        )
    }

    fn task_reports(&self) -> String {
        join(
            &self.settings.report_prefix,
            &format!("{}/", self.settings.task),
        )
    }

    /// The folder of a day's report.
    pub fn day_dir(&self, day: Date) -> String {
        format!("{}{}", self.task_reports(), format_day(day))
    }

    /// Finds the earliest hour partition under the task's results prefix. Only
    /// `dt=YYYY-MM-DD/hr=HH` folders are partitions: any other folder (a query engine's output
    /// folder, say) is logged and passed over, so it can neither start the reports nor stop them.
    async fn discover(&self) -> Result<Discovery, ReportError> {
        let base = self.task_results();
        let mut found = Discovery {
            first_hour: None,
            ignored: Vec::new(),
        };
        let mut dts = Vec::new();
        for p in self.results.list_prefixes(&base).await? {
            match partition_day(&p) {
                Some(d) => dts.push((d, p)),
                None => found.ignored.push(p),
            }
        }
        dts.sort();
        // The first day partition holding an hour partition (one may hold only stray folders).
        for (date, dt) in dts {
            let mut hours = Vec::new();
            for p in self.results.list_prefixes(&dt).await? {
                match partition_hour(&p) {
                    Some(h) => hours.push(h),
                    None => found.ignored.push(p),
                }
            }
            if let Some(h) = hours.into_iter().min() {
                found.first_hour = date.with_hms(h, 0, 0).ok().map(|t| t.assume_utc());
                break;
            }
        }
        for p in &found.ignored {
            tracing::warn!(prefix = %p, "ignored: not a results partition (dt=YYYY-MM-DD/hr=HH); nothing in it is read");
        }
        Ok(found)
    }

    /// Whether a day's `manifest.json` is one the report wrote ([`Self::own_manifest`]).
    pub async fn has_manifest(&self, day: Date) -> Result<bool, ReportError> {
        Ok(self.own_manifest(day).await?.is_some())
    }

    /// A day's `manifest.json`, parsed, if it is one the report wrote: it is JSON whose
    /// `format_version` is 1 or more, whose `task` and `day` are this task and this day, and
    /// `manifest.checksum` holds its MD5. A version above this build's [`FORMAT_VERSION`] was
    /// written by a newer build (this one was rolled back): the day is complete all the same, and
    /// left alone (logged). Anything else there (an object synced into the report area, or a
    /// manifest torn by a crash between its checksum and itself) is logged and passed over: the
    /// day is not complete, and is reported again. Read once per use: the callers take what
    /// they need (its zone, what it read after its end, its files) from the value returned.
    pub async fn own_manifest(&self, day: Date) -> Result<Option<serde_json::Value>, ReportError> {
        let dir = self.day_dir(day);
        let key = format!("{dir}/manifest.json");
        if !self.store.exists(&key).await? {
            return Ok(None);
        }
        let raw = self.store.get(&key).await?;
        let mut version = None;
        let mut manifest = None;
        let why = match serde_json::from_slice::<serde_json::Value>(&raw) {
            Err(_) => Some("it is not JSON".to_owned()),
            Ok(m) => {
                version = m["format_version"].as_u64();
                let why = if version.is_none_or(|v| v < 1) {
                    Some(format!(
                        "its format_version {} is not one the report writes",
                        m["format_version"]
                    ))
                } else if m["task"].as_str() != Some(&self.settings.task) {
                    Some(format!("its task {} is not this task", m["task"]))
                } else if m["day"].as_str() != Some(&format_day(day)) {
                    Some(format!("its day {} is not the folder's", m["day"]))
                } else {
                    None
                };
                manifest = Some(m);
                why
            }
        };
        let why = match why {
            Some(why) => Some(why),
            None => {
                let sum_key = format!("{dir}/manifest.checksum");
                let sum = if self.store.exists(&sum_key).await? {
                    Some(self.store.get(&sum_key).await?)
                } else {
                    None
                };
                match sum {
                    Some(s) if s.trim_ascii() == md5_hex(&raw).as_bytes() => None,
                    Some(_) => Some("manifest.checksum is not its MD5".to_owned()),
                    None => Some("there is no manifest.checksum".to_owned()),
                }
            }
        };
        match (&why, version) {
            (Some(why), _) => {
                tracing::warn!(key = %key, reason = %why, "not a manifest the report wrote; the day is not taken as complete");
            }
            (None, Some(v)) if v > u64::from(FORMAT_VERSION) => {
                tracing::warn!(key = %key, format_version = v, this_build = FORMAT_VERSION, "the manifest was written by a newer build of the report; the day is complete and left as it is");
            }
            (None, _) => {}
        }
        Ok(manifest.filter(|_| why.is_none()))
    }

    /// The newest day with a manifest the report wrote ([`Self::has_manifest`]).
    pub async fn last_complete_day(&self) -> Result<Option<Date>, ReportError> {
        Ok(self.last_complete().await?.map(|(d, _)| d))
    }

    /// The newest day with a manifest the report wrote, and that manifest.
    async fn last_complete(&self) -> Result<Option<(Date, serde_json::Value)>, ReportError> {
        let mut days: Vec<Date> = self
            .store
            .list_prefixes(&self.task_reports())
            .await?
            .iter()
            .filter_map(|p| {
                p.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .and_then(parse_day)
            })
            .collect();
        days.sort();
        for d in days.into_iter().rev() {
            if let Some(m) = self.own_manifest(d).await? {
                return Ok(Some((d, m)));
            }
        }
        Ok(None)
    }

    fn journal_key(&self) -> String {
        format!("{}{PAUSE_JOURNAL}", self.task_reports())
    }

    /// The journal of paused periods ([`super::pauses`]); empty when there is none yet.
    pub async fn paused(&self) -> Result<PauseJournal, ReportError> {
        let key = self.journal_key();
        if !self.store.exists(&key).await? {
            return Ok(PauseJournal::default());
        }
        Ok(PauseJournal::from_bytes(&self.store.get(&key).await?))
    }

    /// Looks at the task's delivery first, at `seen_at` on the real clock, notes a pause or
    /// resume in the journal of paused periods, then runs as [`Self::run`] as of `now`. The
    /// look is dated by the real clock, never by the report's "as of" instant: the journal
    /// outlives the run, and a period dated by an "as of" instant would be wrong in every later
    /// report. A look that fails is logged and the run goes on: the periods are a help to the
    /// reader, never a reason to hold a report back.
    pub async fn run_watching(
        &self,
        now: OffsetDateTime,
        seen_at: OffsetDateTime,
        watch: &impl PauseWatch,
    ) -> Result<RunSummary, ReportError> {
        let mut journal = self.paused().await?;
        match watch.look(seen_at).await {
            Ok(seen) => {
                let before = journal.clone();
                journal.note(&seen);
                if journal != before {
                    tracing::info!(state = %seen.state, "the task's delivery changed; noted in the journal of paused periods");
                    let body = Bytes::from(journal.to_bytes());
                    self.store.put(&self.journal_key(), body).await?;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the task's delivery cannot be seen; paused periods are as last noted")
            }
        }
        self.run_noting(now, &journal).await
    }

    /// Reports every day not yet complete, oldest first, as of `now`, with the paused periods
    /// noted so far. A run that reports no day says why (and logs it).
    pub async fn run(&self, now: OffsetDateTime) -> Result<RunSummary, ReportError> {
        let journal = self.paused().await?;
        self.run_noting(now, &journal).await
    }

    async fn run_noting(
        &self,
        now: OffsetDateTime,
        paused: &PauseJournal,
    ) -> Result<RunSummary, ReportError> {
        let found = self.discover().await?;
        let mut summary = RunSummary {
            ignored: found.ignored,
            ..RunSummary::default()
        };
        let last = self.last_complete().await?;
        let calendar = self.calendar(last.as_ref())?;
        let last_complete = last.map(|(d, _)| d);
        let first = found
            .first_hour
            // A record is filed at most `grace` after it was processed.
            .map(|t| calendar.day_of(t - self.settings.grace));
        let today = calendar.day_of(now);
        let why = match first {
            Some(first) => {
                let days = (first, today, last_complete);
                let ctx = DayContext {
                    calendar: &calendar,
                    paused,
                };
                self.run_from(days, now, ctx, &mut summary.days).await?
            }
            None => Some(format!(
                "no results partitions (dt=YYYY-MM-DD/hr=HH) under {}{}",
                self.task_results(),
                match summary.ignored.len() {
                    0 => String::new(),
                    n => format!("; {n} other folder(s) ignored"),
                }
            )),
        };
        if let Some(why) = &why {
            tracing::info!(reason = %why, "no day to report");
        }
        summary.nothing_to_do = why;
        Ok(summary)
    }

    /// The days as the run counts them: the configured zone, and the change of zone from the
    /// zone the last complete day's manifest names ([`super::change`]), logged when found.
    fn calendar(
        &self,
        last_complete: Option<&(Date, serde_json::Value)>,
    ) -> Result<Calendar, ReportError> {
        let zone = self.settings.zone.clone();
        let Some((last, manifest)) = last_complete else {
            return Ok(Calendar::new(zone));
        };
        let last = *last;
        let change = zone_change(manifest, last, &zone).map_err(ReportError::Zone)?;
        if let Some(c) = change.as_ref().filter(|c| c.first_day > last) {
            tracing::warn!(
                from = %c.from,
                to = %zone,
                last_complete = %format_day(last),
                at = %format_time(c.at),
                "the report time zone changed: the first day in the new zone starts where the last complete day ended"
            );
        }
        Ok(Calendar { zone, change })
    }

    /// Reports the days from `first` (or after the last complete one) through `today`, one at a
    /// time: the next day only once the one before is complete, so at most one day is pushing
    /// (the seed's "one period is finished before the next starts"). Within the grace after
    /// midnight only the day that ended is pushing; the new day's records wait for the first run
    /// after it completes. A run that finds many days behind completes them in order. Returns
    /// why no day was reported, when none was.
    async fn run_from(
        &self,
        (first, today, last_complete): (Date, Date, Option<Date>),
        now: OffsetDateTime,
        ctx: DayContext<'_>,
        out: &mut Vec<DayRun>,
    ) -> Result<Option<String>, ReportError> {
        let start = match last_complete {
            Some(d) => d.next_day().unwrap_or(d).max(first),
            None => first,
        };
        let mut day = start;
        // Only leading days without records are left out (the first partition can name a day
        // before the first record); once a day is reported, every later day is.
        let mut before_first_record = last_complete.is_none();
        // Every day up to this one has its manifest.
        let mut complete_through = last_complete.or_else(|| first.previous_day());
        // A day without records that is not complete yet, holding back the days after it.
        let mut waiting = None;
        while day <= today {
            let (_, end) = ctx.calendar.window(day);
            let complete = now >= end + self.settings.grace;
            let r = self
                .report_day(
                    day,
                    complete,
                    now,
                    before_first_record,
                    complete_through,
                    ctx,
                )
                .await?;
            if let Some(r) = r {
                before_first_record = false;
                out.push(r);
            }
            if !complete {
                // Serial: the next day waits until this one is complete.
                if out.is_empty() && day < today {
                    waiting = Some((day, end + self.settings.grace));
                }
                break;
            }
            complete_through = Some(day);
            match day.next_day() {
                Some(d) => day = d,
                None => break,
            }
        }
        if let (true, Some((day, at))) = (out.is_empty(), waiting) {
            return Ok(Some(format!(
                "{} has no records yet and is complete only at {}; the days after it wait (one day is reported at a time), as of {}",
                format_day(day),
                format_time(at),
                format_time(now)
            )));
        }
        Ok(match (out.is_empty(), last_complete) {
            (false, _) => None,
            (true, Some(c)) if start > today => Some(format!(
                "every day through {} is complete, and the next has not begun as of {}",
                format_day(c),
                format_time(now)
            )),
            (true, None) if start > today => Some(format!(
                "the first results partition can hold records of {} at the earliest, after today ({}, as of {})",
                format_day(start),
                format_day(today),
                format_time(now)
            )),
            (true, _) => Some(format!(
                "no records from {} through {} (as of {})",
                format_day(start),
                format_day(today),
                format_time(now)
            )),
        })
    }

    /// Calls `each` with every readable record in the hour partitions that can hold the records
    /// of a day's window, with its processing time, its results object's key, and whether that
    /// object was filed after the day's end; returns how many records could not be read (each is
    /// logged with its object key and line): lines that are not a record, and records whose
    /// `processed_at` is not an RFC 3339 time.
    async fn for_each_record(
        &self,
        window: (OffsetDateTime, OffsetDateTime),
        mut each: impl FnMut(Outcome, OffsetDateTime, &str, bool) -> Result<(), ReportError>,
    ) -> Result<u64, ReportError> {
        let (_, end) = window;
        let mut unreadable = 0u64;
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        // One hour partition at a time, so only that hour's key list is held.
        for (date, hour) in hour_partitions(window, self.settings.grace) {
            let after_end = date
                .with_hms(hour, 0, 0)
                .map(|h| h.assume_utc() + Duration::hours(1) > end)
                .unwrap_or(true);
            let prefix = format!(
                "{}dt={}/hr={hour:02}/",
                self.task_results(),
                format_day(date)
            );
            let mut keys = self.results.list_keys(&prefix).await?;
            // Records are objects directly in the partition; anything in a folder below is not.
            keys.retain(|k| {
                let nested = k.get(prefix.len()..).is_none_or(|rest| rest.contains('/'));
                if nested {
                    tracing::warn!(key = %k, "ignored: in a folder inside a results partition; nothing in it is read");
                }
                !nested
            });
            let mut bodies = futures_util::stream::iter(keys.iter())
                .map(|k| async move { self.results.get(k).await.map(|b| (k, b)) })
                .buffered(self.settings.parallel_reads.max(1));
            while let Some(got) = bodies.next().await {
                let (key, body) = got?;
                for (n, line) in body.split(|b| *b == b'\n').enumerate() {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let o: Outcome = match serde_json::from_slice(line) {
                        Ok(o) => o,
                        Err(e) => {
                            unreadable += 1;
                            tracing::error!(key = %key, line = n + 1, error = %e, "an outcome record cannot be read; it is counted as unreadable");
                            continue;
                        }
                    };
                    match OffsetDateTime::parse(&o.processed_at, rfc3339) {
                        Ok(at) => each(o, at, key, after_end)?,
                        Err(e) => {
                            unreadable += 1;
                            tracing::error!(key = %key, line = n + 1, processed_at = %o.processed_at, error = %e, "an outcome record's processed_at is not an RFC 3339 time; it is counted as unreadable");
                        }
                    }
                }
            }
        }
        Ok(unreadable)
    }

    /// What the complete days among the two before `day` (all up to `complete_through`) read
    /// after their end, from their manifests: only manifests the report wrote
    /// ([`Self::has_manifest`]), as for [`Self::last_complete_day`].
    async fn taken_before(
        &self,
        day: Date,
        complete_through: Option<Date>,
    ) -> Result<Taken, ReportError> {
        let mut taken = Taken::default();
        let mut d = day;
        for _ in 0..2 {
            let Some(prev) = d.previous_day() else { break };
            d = prev;
            if complete_through.is_none_or(|c| d > c) {
                continue;
            }
            let read = if let Some(m) = self.own_manifest(d).await? {
                read_after_end(&m)
            } else {
                // A leading day without records has no report: it read nothing. Nor did a day
                // whose manifest.json the report did not write ([`Self::has_manifest`], logged):
                // the report never completed it, so nothing it names is taken.
                Some(Default::default())
            };
            taken.insert(d, read);
        }
        Ok(taken)
    }

    /// A day's totals so far, straight from the results store: records, files per state, and
    /// the records that could not be read.
    pub async fn day_totals(&self, day: Date) -> Result<(DayTotals, FileTotals, u64), ReportError> {
        let calendar = self.calendar(self.last_complete().await?.as_ref())?;
        let read = self.read_day(day, None, &calendar).await?;
        let mut files = FileTotals::default();
        let mut folder = FileFolder::default();
        for row in read.sorter.finish()? {
            let row = row?;
            if let Some(f) = folder.push(&row.key.0, decode(&row)?) {
                files.add(&f);
            }
        }
        if let Some(f) = folder.finish() {
            files.add(&f);
        }
        Ok((read.totals, files, read.unreadable))
    }

    /// Reads a day's records into totals and the sorter (by file, then time), and, when the
    /// days up to `complete_through` are complete, the records of those days that they did not
    /// take ([`super::late`]) into the late sorter.
    async fn read_day(
        &self,
        day: Date,
        complete_through: Option<Date>,
        calendar: &Calendar,
    ) -> Result<DayRead, ReportError> {
        let (start, end) = calendar.window(day);
        let taken = self.taken_before(day, complete_through).await?;
        let mut read = DayRead {
            totals: DayTotals::default(),
            chart: DayChart::new(self.settings.zone.clone()),
            sorter: ExternalSorter::new(self.settings.sort_budget),
            late: ExternalSorter::new(self.settings.sort_budget / 8),
            unreadable: 0,
            read_after_end: BTreeSet::new(),
        };
        read.unreadable = self
            .for_each_record((start, end), |o, at, object, after_end| {
                let from = calendar.day_of(at);
                if at >= start && at < end {
                    read.totals.add(&o);
                    read.chart.record(&o, at);
                    let body = serde_json::to_vec(&o).map_err(std::io::Error::other)?;
                    read.sorter.push(SortRow {
                        key: sort_key(&o),
                        body,
                    })?;
                } else if at < start
                    && complete_through.is_some_and(|c| from <= c)
                    && taken.is_late(from, object)
                {
                    let (file, time, message) = sort_key(&o);
                    let from = format_day(from);
                    read.late.push(SortRow {
                        body: csv_row(&late_fields(&from, &o)),
                        key: (format!("{from}\0{file}"), time, message),
                    })?;
                } else {
                    return Ok(());
                }
                if after_end {
                    read.read_after_end.insert(object.to_owned());
                }
                Ok(())
            })
            .await?;
        Ok(read)
    }

    async fn report_day(
        &self,
        day: Date,
        complete: bool,
        now: OffsetDateTime,
        skip_if_empty: bool,
        complete_through: Option<Date>,
        ctx: DayContext<'_>,
    ) -> Result<Option<DayRun>, ReportError> {
        let calendar = ctx.calendar;
        let read = self.read_day(day, complete_through, calendar).await?;
        let DayRead {
            totals,
            chart,
            sorter,
            late,
            unreadable,
            read_after_end,
        } = read;
        if skip_if_empty && totals.records == 0 && unreadable == 0 && late.rows == 0 {
            return Ok(None);
        }
        let late_records = late.rows;
        let dir = self.day_dir(day);
        let journal = Journal::read(self.store, &dir).await?;
        let mut lists = DayLists::new(&dir, self.settings.part_bytes, chart, journal);
        let mut folder = FileFolder::default();
        for row in sorter.finish()? {
            let row = row?;
            let o = decode(&row)?;
            lists.attempt(self.store, &o).await?;
            if let Some(f) = folder.push(&row.key.0, o) {
                lists.file(self.store, &f).await?;
            }
        }
        if let Some(f) = folder.finish() {
            lists.file(self.store, &f).await?;
        }
        for row in late.finish()? {
            lists.lists[4]
                .add(self.store, &mut lists.journal, &row?.body)
                .await?;
        }
        let DayLists {
            lists,
            files: file_totals,
            chart,
            mut journal,
        } = lists;
        let mut files = Vec::new();
        let mut list_summary = serde_json::Map::new();
        let mut counts = Vec::new();
        for list in lists {
            let (name, rows, parts) = list.finish(self.store, &mut journal).await?;
            let keys: Vec<&str> = parts.iter().map(|w| w.key.as_str()).collect();
            list_summary.insert(
                name.into(),
                json!({"rows": rows, "parts": parts.len(), "keys": keys}),
            );
            counts.push((name, parts.len() as u32));
            files.extend(parts);
        }
        journal.settle(self.store, &counts).await?;
        let state = if complete { "complete" } else { "pushing" };
        let generated = format_time(now);
        // The parts sit beside the page: links relative to the day's folder.
        let in_day = format!("{dir}/");
        let parts: Vec<PartLink> = files
            .iter()
            .map(|w| PartLink {
                href: w.key.strip_prefix(&in_day).unwrap_or(&w.key).to_owned(),
                rows: w.rows.unwrap_or(0),
                size: w.size,
            })
            .collect();
        let lag = totals.lag();
        let (start, end) = calendar.window(day);
        let utc_offset = format_offset(calendar.zone.offset_at(start));
        let window = json!({"start": format_time(start), "end": format_time(end)});
        let changed_from = calendar.changed_from(day).map(Zone::name);
        let paused: Vec<_> = ctx
            .paused
            .within((start, end))
            .into_iter()
            .map(|p| p.to_json())
            .collect();
        let zone_label = match calendar.zone.name() {
            fixed if fixed.starts_with(['+', '-']) => format!("UTC{fixed}"),
            named => format!("{named} (UTC{utc_offset} at the day's start)"),
        };
        let page_paused: Vec<PausedPeriod> = ctx
            .paused
            .within((start, end))
            .into_iter()
            .map(|p| PausedPeriod {
                from: format_time(p.from),
                to: p.to.map(format_time).unwrap_or_default(),
                reason: p.reason.clone(),
            })
            .collect();
        let day_name = format_day(day);
        let html = Bytes::from(render(&DayPage {
            task: &self.settings.task,
            day: &day_name,
            zone: &zone_label,
            state,
            generated_at: &generated,
            files: &file_totals,
            totals: &totals,
            chart: &chart,
            unreadable,
            late_records,
            parts: &parts,
            paused: &page_paused,
        }));
        let html_key = format!("{dir}/report.html");
        files.push(Written {
            key: html_key.clone(),
            size: html.len() as u64,
            md5: md5_hex(&html),
            rows: None,
        });
        self.store.put(&html_key, html).await?;
        let summary = json!({
            "format_version": FORMAT_VERSION,
            "task": self.settings.task,
            "day": format_day(day),
            TIME_ZONE: calendar.zone.name(),
            "utc_offset": utc_offset,
            WINDOW: window,
            ZONE_CHANGED_FROM: changed_from,
            "paused_periods": paused,
            "state": state,
            "generated_at": generated,
            "file_count": file_totals.files,
            "file_states": file_totals.count_map(),
            "records": totals.records,
            "counts": totals.count_map(),
            "bytes": totals.bytes,
            "lag_ms": lag,
            "first_event": totals.first_event,
            "last_event": totals.last_event,
            "unreadable_records": unreadable,
            "late_records": late_records,
            "lists": list_summary,
            "fileSchema": file_schema(),
        });
        let summary = Bytes::from(serde_json::to_vec_pretty(&summary).unwrap_or_default());
        let summary_key = format!("{dir}/summary.json");
        files.push(Written {
            key: summary_key.clone(),
            size: summary.len() as u64,
            md5: md5_hex(&summary),
            rows: None,
        });
        self.store.put(&summary_key, summary).await?;
        if complete {
            let manifest = json!({
                "format_version": FORMAT_VERSION,
                "task": self.settings.task,
                "day": format_day(day),
                TIME_ZONE: calendar.zone.name(),
                "utc_offset": utc_offset,
                WINDOW: window,
                ZONE_CHANGED_FROM: changed_from,
                "paused_periods": paused,
                "generated_at": generated,
                "file_count": file_totals.files,
                "file_states": file_totals.count_map(),
                "records": totals.records,
                "counts": totals.count_map(),
                "bytes": totals.bytes,
                "unreadable_records": unreadable,
                "late_records": late_records,
                READ_AFTER_END: read_after_end,
                "fileSchema": file_schema(),
                "files": files.iter().map(|f| json!({
                    "key": f.key, "size": f.size, "md5": f.md5, "rows": f.rows,
                })).collect::<Vec<_>>(),
            });
            let manifest = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
            let checksum = md5_hex(&manifest);
            self.store
                .put(&format!("{dir}/manifest.checksum"), Bytes::from(checksum))
                .await?;
            // Last: its presence says the day is final.
            self.store
                .put(&format!("{dir}/manifest.json"), Bytes::from(manifest))
                .await?;
        }
        Ok(Some(DayRun {
            day,
            state,
            records: totals.records,
            files: file_totals.files,
        }))
    }
}
