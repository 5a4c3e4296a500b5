//! The sync service over in-memory results and held rechecks, as the component tests build it.

use super::memory::MemoryResults;
use crate::store::destination::DestinationStore;
use crate::store::source::SourceStore;
use crate::sync::copy::CopyOptions;
use crate::sync::handler::SyncService;
use crate::sync::recheck::HeldRechecks;
use crate::task::TaskBinding;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The sync service over in-memory results and held rechecks.
pub type TestService<S, D> = SyncService<S, D, MemoryResults, HeldRechecks>;

/// The lines a service logged.
pub type Lines = Arc<Mutex<Vec<String>>>;

/// A sync service for task `task-1` over `source` and `dest`: events of `source_bucket` land in
/// `dst` under `dest_prefix`, reports under `reports/`; 4 jobs at once, records under `results`
/// in memory, rechecks held, no checkpoints, a fresh instance's view of recent writes. The lines
/// it logs are kept in the buffer returned beside it.
pub fn sync_service<S: SourceStore, D: DestinationStore>(
    source_bucket: &str,
    dest_prefix: &str,
    source: S,
    dest: D,
    options: CopyOptions,
) -> (TestService<S, D>, Lines) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let svc = SyncService {
        task_id: "task-1".into(),
        binding: TaskBinding {
            source_bucket: source_bucket.into(),
            source_prefix: String::new(),
            dest_bucket: "dst".into(),
            dest_prefix: dest_prefix.into(),
            strip_source_prefix: false,
            report_area: Some("reports/".into()),
        },
        options,
        concurrency: 4,
        results_prefix: "results".into(),
        max_receive_count: None,
        throughput: Default::default(),
        source,
        dest,
        results: MemoryResults::default(),
        rechecks: HeldRechecks::default(),
        recheck_after: Duration::from_secs(915),
        sink: Arc::new(move |l: &str| {
            if let Ok(mut lines) = sink.lock() {
                lines.push(l.to_owned());
            }
        }),
        checkpoints: None,
        recent_writes: Default::default(),
    };
    (svc, lines)
}
