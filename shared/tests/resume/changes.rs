//! Sources that change, and checkpoints: a copy starting over on a new version, the pinned
//! reads, which parts are kept, and where checkpoints live.

use super::{body, holding, job, limits, Rig, PART};
use s3_oss_sync::outcome::OutcomeKind;
use s3_oss_sync::store::source::SourceMetadata;
use s3_oss_sync::store::upload::ListedPart;
use s3_oss_sync::sync::copy::{CopyOptions, Limits};
use s3_oss_sync::sync::resume::{
    checkpoint_key, plan_resume, Checkpoint, DonePart, CHECKPOINT_VERSION,
};
use s3_oss_sync::testing::hooked::HookedSource;
use std::sync::atomic::{AtomicU32, Ordering};

#[tokio::test(start_paused = true)]
async fn a_source_overwritten_between_runs_starts_over_and_aborts_the_old_upload() {
    let source = holding("big", body((PART * 12) as usize, 1));
    let rig = Rig::new(100, CopyOptions::default());
    let (dest, store, copier) = (&rig.dest, &rig.store, rig.copier(&source));
    let r = copier.run(&job("big"), &limits(400)).await;
    assert_eq!(r.outcome, OutcomeKind::InProgress);
    let newer = body((PART * 9 + 5) as usize, 2);
    source.put("big", newer.clone(), SourceMetadata::default());
    let mut runs = 1;
    loop {
        let r = copier.run(&job("big"), &limits(400)).await;
        runs += 1;
        if r.outcome == OutcomeKind::Copied {
            break;
        }
        assert_eq!(r.outcome, OutcomeKind::InProgress, "{r:?}");
        assert!(runs < 30);
    }
    assert_eq!(dest.get("big").unwrap().1, newer);
    assert_eq!(
        dest.aborted.load(Ordering::SeqCst),
        1,
        "the old upload is aborted"
    );
    assert_eq!(dest.initiated.load(Ordering::SeqCst), 2);
    assert!(dest.open_uploads().is_empty());
    assert!(store.all().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_source_changed_during_a_run_is_noticed_by_the_pinned_reads() {
    let newer = body((PART * 5 + 3) as usize, 9);
    // Overwritten at the fourth ranged read: the copy running then finds its pin gone.
    let (reads, next) = (AtomicU32::new(0), newer.clone());
    let source = HookedSource::new(holding("big", body((PART * 8) as usize, 3))).on_range(
        move |inner, key| {
            if reads.fetch_add(1, Ordering::SeqCst) + 1 == 4 {
                inner.put(key, next.clone(), SourceMetadata::default());
            }
        },
    );
    let rig = Rig::new(10, CopyOptions::default());
    let (dest, store, copier) = (&rig.dest, &rig.store, rig.copier(&source));
    let r = copier.run(&job("big"), &Limits::none()).await;
    assert_eq!((r.outcome, r.rounds), (OutcomeKind::Copied, 2), "{r:?}");
    assert_eq!(dest.get("big").unwrap().1, newer);
    assert_eq!(dest.aborted.load(Ordering::SeqCst), 1);
    assert!(dest.open_uploads().is_empty());
    assert!(store.all().is_empty());
}

fn checkpoint(parts: Vec<DonePart>) -> Checkpoint {
    Checkpoint {
        version: CHECKPOINT_VERSION,
        task: "t".into(),
        source_bucket: "s".into(),
        source_key: "k".into(),
        etag: "e".into(),
        version_id: None,
        size: 250,
        fingerprint: "f".into(),
        dest_bucket: "d".into(),
        dest_key: "k".into(),
        part_size: 100,
        upload_id: "u".into(),
        message_id: None,
        started_at: String::new(),
        updated_at: String::new(),
        parts,
        ranges: Vec::new(),
    }
}

fn done(number: u32, size: u64, crc: u64) -> DonePart {
    DonePart {
        number,
        size,
        etag: format!("\"E{number}\""),
        crc64: format!("{crc:016x}"),
    }
}

fn listed(number: u32, size: u64, crc: Option<u64>) -> ListedPart {
    ListedPart {
        number,
        etag: format!("\"E{number}\""),
        size,
        crc64: crc,
    }
}

#[test]
fn only_parts_both_sides_agree_on_are_kept() {
    let cp = checkpoint(vec![done(1, 100, 11), done(2, 100, 22), done(3, 50, 33)]);
    assert_eq!(cp.parts_total(), 3);
    assert_eq!(cp.range(3), (200, 50));
    // Agreed: kept. Listed with another CRC-64: in doubt. Not listed: missing.
    let (kept, todo) = plan_resume(&cp, &[listed(1, 100, Some(11)), listed(2, 100, Some(99))]);
    assert_eq!(kept, vec![done(1, 100, 11)]);
    assert_eq!(todo, vec![2, 3]);
    // Listed but not in the checkpoint (it landed while its invocation was killed): in doubt.
    let cp = checkpoint(vec![done(1, 100, 11)]);
    let (kept, todo) = plan_resume(&cp, &[listed(1, 100, None), listed(2, 100, Some(22))]);
    assert_eq!((kept.len(), todo), (1, vec![2, 3]));
    // Another size or ETag: in doubt.
    let mut other = listed(1, 100, Some(11));
    other.etag = "\"X\"".into();
    assert_eq!(plan_resume(&cp, &[other]).1, vec![1, 2, 3]);
    assert_eq!(
        plan_resume(&cp, &[listed(1, 99, Some(11))]).1,
        vec![1, 2, 3]
    );
}

#[test]
fn checkpoints_live_beside_the_results_and_refuse_what_they_cannot_read() {
    let k = checkpoint_key("results", "task-1", "dest", "a/b.bin");
    assert!(
        k.starts_with("results-checkpoints/task-1/") && k.ends_with(".json"),
        "{k}"
    );
    assert!(
        !k.starts_with("results/"),
        "never under the results the report reads"
    );
    assert_ne!(k, checkpoint_key("results", "task-1", "dest", "a/b.bin2"));
    let cp = checkpoint(vec![done(1, 100, u64::MAX)]);
    let text = serde_json::to_vec(&cp).unwrap();
    assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
    assert!(String::from_utf8_lossy(&text).contains("\"crc64\":\"ffffffffffffffff\""));
    let mut bad = cp.clone();
    bad.version = 99;
    assert!(Checkpoint::parse(&serde_json::to_vec(&bad).unwrap()).is_err());
    assert!(Checkpoint::parse(b"{").is_err());
}
