//! Component tests: the sync handler with real SQS event types against in-memory source,
//! destination and results stores.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use s3_oss_sync::aws::sqs_poll::{lambda_event, lambda_message};
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::store::destination::DestinationStore;
use s3_oss_sync::store::source::{SourceMetadata, SourceStore};
use s3_oss_sync::sync::copy::CopyOptions;
use s3_oss_sync::sync::handler::{BatchReport, RecentWrites, SyncService};
use s3_oss_sync::sync::recheck::{string_attribute, HeldRechecks, RECHECK_OF};
use s3_oss_sync::testing::memory::{MemoryDestination, MemoryResults, MemorySource};
use s3_oss_sync::testing::service::sync_service;
use std::sync::{Arc, Mutex};

mod copies;
mod deadlines;
mod deliveries;
mod rechecks;

const BUCKET: &str = "mybucket";

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/s3-events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn message(id: &str, body: &str) -> SqsMessage {
    lambda_message(id, body, 1)
}

/// A recheck standing for message `of`: what a redelivery of `of` becomes (it hands over), and
/// what every write leaves behind.
fn recheck_message(id: &str, body: &str, of: &str) -> SqsMessage {
    let mut m = message(id, body);
    m.message_attributes
        .insert(RECHECK_OF.into(), string_attribute(of));
    m
}

/// A body larger than `decide::WRITE_FIRST_MAX`: its first delivery reads the destination first,
/// as every delivery of a small object did before.
fn large_body(tag: &[u8]) -> Vec<u8> {
    let mut b = tag.to_vec();
    b.resize(
        s3_oss_sync::sync::decide::WRITE_FIRST_MAX as usize + 1,
        b'.',
    );
    b
}

fn batch(messages: Vec<SqsMessage>) -> SqsEvent {
    lambda_event(messages)
}

fn created(key: &str, etag: &str, size: u64, sequencer: Option<&str>) -> String {
    let mut object = serde_json::json!({"key": key, "size": size, "eTag": etag});
    if let Some(s) = sequencer {
        object["sequencer"] = s.into();
    }
    serde_json::json!({"Records": [{
        "eventName": "ObjectCreated:Put", "eventTime": "2026-11-25T03:00:00.000Z",
        "s3": {"bucket": {"name": BUCKET}, "object": object}
    }]})
    .to_string()
}

fn removed(key: &str, sequencer: Option<&str>) -> String {
    let mut object = serde_json::json!({"key": key});
    if let Some(s) = sequencer {
        object["sequencer"] = s.into();
    }
    serde_json::json!({"Records": [{
        "eventName": "ObjectRemoved:Delete", "eventTime": "2026-11-25T03:00:01.000Z",
        "s3": {"bucket": {"name": BUCKET}, "object": object}
    }]})
    .to_string()
}

type Service<S, D = MemoryDestination> = SyncService<S, D, MemoryResults, HeldRechecks>;

fn service<S: SourceStore>(
    source: S,
    options: CopyOptions,
) -> (Service<S>, Arc<Mutex<Vec<String>>>) {
    service_with(source, MemoryDestination::default(), options)
}

/// A [`service`] over a source holding `body` at `key` (with [`meta`]), and that object's ETag.
fn service_holding(
    key: &str,
    body: &'static [u8],
    options: CopyOptions,
) -> (Service<MemorySource>, String) {
    let source = MemorySource::default();
    let etag = source.put(key, body, meta());
    (service(source, options).0, etag)
}

fn service_with<S: SourceStore, D: DestinationStore>(
    source: S,
    dest: D,
    options: CopyOptions,
) -> (Service<S, D>, Arc<Mutex<Vec<String>>>) {
    let (mut svc, lines) = sync_service(BUCKET, "mirror/", source, dest, options);
    // A warm instance, whose writes the destination has accepted (a fresh one:
    // `a_fresh_instance_reads_the_destination_first_until_it_accepts_a_request`).
    svc.recent_writes = RecentWrites::default().accepting();
    (svc, lines)
}

fn deletes_on() -> CopyOptions {
    CopyOptions {
        sync_deletes: true,
        ..CopyOptions::default()
    }
}

fn failed_ids(r: &BatchReport) -> Vec<&str> {
    r.response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

fn kinds(r: &BatchReport) -> Vec<OutcomeKind> {
    r.outcomes.iter().map(|o| o.outcome).collect()
}

fn meta() -> SourceMetadata {
    SourceMetadata {
        content_type: Some("text/plain".into()),
        user: vec![
            ("author".into(), "ann".into()),
            ("bad_name".into(), "x".into()),
        ],
        ..SourceMetadata::default()
    }
}
