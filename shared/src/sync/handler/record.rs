//! The [`SyncService`] operations that make outcome records: one for a message, one for an event,
//! and one for a job's report.

use super::messages::{MessageInfo, Slot};
use super::SyncService;
use crate::event::ObjectEvent;
use crate::outcome::{format_time, Outcome, OutcomeKind};
use crate::store::destination::DestinationStore;
use crate::store::results::ResultsStore;
use crate::store::source::SourceStore;
use crate::sync::copy::JobReport;
use crate::sync::recheck::RecheckQueue;
use std::time::Instant;
use time::OffsetDateTime;

impl<S: SourceStore, D: DestinationStore, R: ResultsStore, Q: RecheckQueue>
    SyncService<S, D, R, Q>
{
    pub(super) fn record(&self, m: &MessageInfo<'_>, kind: OutcomeKind) -> Outcome {
        Outcome {
            task: self.task_id.clone(),
            processed_at: format_time(OffsetDateTime::now_utc()),
            event_time: None,
            event_name: None,
            bucket: None,
            source_key: None,
            dest_key: None,
            version_id: None,
            sequencer: None,
            source_etag: None,
            size: None,
            bytes_moved: 0,
            outcome: kind,
            error_code: None,
            error_message: None,
            dropped_metadata: Vec::new(),
            attempts: 0,
            is_final: true,
            requests: 0,
            duration_ms: 0,
            request_ids: Vec::new(),
            message_id: m.id.to_owned(),
            receive_count: m.receive_count,
            recheck_of: m.recheck_of.map(str::to_owned),
            crc64: None,
        }
    }

    pub(super) fn event_record(
        &self,
        m: &MessageInfo<'_>,
        e: &ObjectEvent,
        kind: OutcomeKind,
    ) -> Outcome {
        Outcome {
            event_time: e.time.clone(),
            event_name: Some(e.name.clone()),
            bucket: Some(e.bucket.clone()),
            source_key: Some(e.key.clone()),
            version_id: e.version_id.clone(),
            sequencer: e.sequencer.clone(),
            source_etag: e.etag.clone(),
            size: e.size,
            ..self.record(m, kind)
        }
    }

    pub(super) fn with_reason(mut o: Outcome, code: &str, message: String) -> Outcome {
        o.error_code = Some(code.to_owned());
        o.error_message = Some(message);
        o
    }

    pub(super) fn job_record(
        &self,
        info: &MessageInfo<'_>,
        slot: &Slot,
        r: JobReport,
        started: Instant,
    ) -> Outcome {
        let mut o = self.event_record(info, &slot.event, r.outcome);
        o.dest_key = Some(slot.dest_key.clone());
        if r.source_etag.is_some() {
            o.source_etag = r.source_etag;
        }
        if r.version_id.is_some() {
            o.version_id = r.version_id;
        }
        if r.size.is_some() {
            o.size = r.size;
        }
        o.bytes_moved = r.bytes_moved;
        o.crc64 = r.crc64;
        o.attempts = r.rounds.max(1);
        o.requests = r.requests;
        o.request_ids = r.request_ids;
        o.dropped_metadata = r.dropped_metadata;
        o.duration_ms = started.elapsed().as_millis() as u64;
        match r.error {
            Some(e) => {
                o.error_code = Some(e.code);
                o.error_message = Some(e.message);
            }
            None => o.error_message = r.note,
        }
        if o.outcome == OutcomeKind::Deferred {
            o.error_code = Some("InvocationDeadline".to_owned());
        }
        if let Some(code) = r.code {
            o.error_code = Some(code.to_owned());
        }
        o.processed_at = format_time(OffsetDateTime::now_utc());
        o
    }
}
