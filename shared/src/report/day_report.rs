//! One day's report: its records read from the hour partitions that can hold them (with the late
//! records of the complete days before it), sorted by file, and written as the day's lists, page,
//! summary and, once the day is complete, manifest ([`Reporter::report_day`]); and a day's totals
//! read straight from the results store ([`Reporter::day_totals`]).

use super::build::{DayContext, DayRun, Reporter, FORMAT_VERSION};
use super::change::{TIME_ZONE, WINDOW, ZONE_CHANGED_FROM};
use super::day::{format_day, format_offset, hour_partitions, Calendar, Zone};
use super::files::{FileFolder, FileTotals};
use super::html::{render, DayChart, DayPage, PartLink, PausedPeriod};
use super::late::{read_after_end, Taken, READ_AFTER_END};
use super::lists::{DayLists, Journal, Written};
use super::ports::{RecordSource, ReportError, ReportStore};
use super::rows::{csv_row, file_schema, late_fields, sort_key};
use super::sort::{ExternalSorter, SortRow};
use super::stats::DayTotals;
use crate::checksum::md5_hex;
use crate::outcome::{format_time, Outcome};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use std::collections::BTreeSet;
use time::{Date, Duration, OffsetDateTime};

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

impl<R: RecordSource, S: ReportStore> Reporter<'_, R, S> {
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

    pub(super) async fn report_day(
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
        put_listed(self.store, &mut files, format!("{dir}/report.html"), html).await?;
        // What the summary and the manifest both say of the day.
        let day_fields = json!({
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
            "fileSchema": file_schema(),
        });
        let mut summary = day_fields.clone();
        summary["state"] = json!(state);
        summary["lag_ms"] = json!(lag);
        summary["first_event"] = json!(totals.first_event);
        summary["last_event"] = json!(totals.last_event);
        summary["lists"] = json!(list_summary);
        let summary = Bytes::from(serde_json::to_vec_pretty(&summary).unwrap_or_default());
        put_listed(
            self.store,
            &mut files,
            format!("{dir}/summary.json"),
            summary,
        )
        .await?;
        if complete {
            let mut manifest = day_fields;
            manifest[READ_AFTER_END] = json!(read_after_end);
            manifest["files"] = json!(files
                .iter()
                .map(|f| json!({
                    "key": f.key, "size": f.size, "md5": f.md5, "rows": f.rows,
                }))
                .collect::<Vec<_>>());
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

/// Writes `body` at `key` and adds it to the day's `files`, as a file of no list (no row count).
async fn put_listed<S: ReportStore>(
    store: &S,
    files: &mut Vec<Written>,
    key: String,
    body: Bytes,
) -> Result<(), ReportError> {
    files.push(Written {
        key: key.clone(),
        size: body.len() as u64,
        md5: md5_hex(&body),
        rows: None,
    });
    store.put(&key, body).await
}
