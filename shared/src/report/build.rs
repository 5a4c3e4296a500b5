//! The report run: finds the days to report, strictly oldest first, and reports each (in
//! `day_report.rs`): its outcome records merged into sorted CSV lists (one row per file in the
//! file lists, one per record in `attempts_list`, written by `lists.rs`), a page to look at
//! (`report.html`, [`super::html`]), a summary, and, once the day is complete, `manifest.json`,
//! written after every file it lists. The stores it reads and writes are its ports
//! ([`super::ports`]).

use super::change::zone_change;
use super::day::{format_day, parse_day, partition_day, partition_hour, Calendar, Zone};
use super::pauses::{Journal as PauseJournal, PauseWatch, JOURNAL as PAUSE_JOURNAL};
use crate::outcome::format_time;
use bytes::Bytes;
use time::{Date, Duration, OffsetDateTime};

pub use super::lists::{part_key, FORMAT_VERSION, JOURNAL};
pub use super::ports::{Listing, RecordSource, ReportError, ReportStore};
use crate::checksum::md5_hex;

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
pub(super) struct DayContext<'a> {
    pub(super) calendar: &'a Calendar,
    pub(super) paused: &'a PauseJournal,
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
    pub(super) fn task_results(&self) -> String {
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
    pub(super) async fn last_complete(
        &self,
    ) -> Result<Option<(Date, serde_json::Value)>, ReportError> {
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
    pub(super) fn calendar(
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
}
