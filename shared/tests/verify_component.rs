//! The verification runner against in-memory sides: key ranges read at once give what one
//! listing gives, HEADs are made only for the keys the listing cannot settle, the task's key
//! mapping and report area are followed, and the report is written in parts, manifest last.

use s3_oss_sync::report::build::RecordSource;
use s3_oss_sync::task::TaskBinding;
use s3_oss_sync::testing::memory::MemoryBucket;
use s3_oss_sync::testing::verify::{obj, MemorySides};
use s3_oss_sync::verify::report::{parse_part, verify_and_report, Subject, Written};
use s3_oss_sync::verify::run::{Mapping, Progress, VerifyOptions};
use std::sync::atomic::{AtomicBool, Ordering};

const MD5: &str = "0cc175b9c0f1b6a831c399e269772661";
const OTHER: &str = "92eb5ffee6ae2fec3ad71c777531578f";

fn binding(dest_prefix: &str, source_prefix: &str, strip: bool) -> TaskBinding {
    TaskBinding {
        source_bucket: "src".into(),
        source_prefix: source_prefix.into(),
        dest_bucket: "dst".into(),
        dest_prefix: dest_prefix.into(),
        strip_source_prefix: strip,
        report_area: Some("reports/".into()),
    }
}

/// `n` keys copied 10 s after their S3 write, ETags equal: the listing settles every one.
fn mirrored(n: usize, source_prefix: &str, dest_prefix: &str) -> MemorySides {
    let m = MemorySides::default();
    for i in 0..n {
        let rel = format!("{}/{i:05}", ["logs", "img", "a b", "ü"][i % 4]);
        m.source
            .lock()
            .unwrap()
            .insert(format!("{source_prefix}{rel}"), obj(10, MD5, 1000));
        m.dest.lock().unwrap().insert(
            format!("{dest_prefix}{rel}"),
            obj(10, &MD5.to_uppercase(), 1010),
        );
    }
    m
}

async fn run(
    m: &MemorySides,
    mapping: &Mapping,
    parallel: usize,
    bucket: &MemoryBucket,
    part_bytes: usize,
) -> Written {
    let options = VerifyOptions {
        parallel,
        ..VerifyOptions::default()
    };
    let subject = Subject {
        task: "t1".into(),
        source: "list".into(),
        report_prefix: "reports".into(),
        part_bytes,
    };
    verify_and_report(
        m,
        mapping,
        &options,
        bucket,
        &subject,
        &AtomicBool::new(false),
        &Progress::default(),
    )
    .await
    .unwrap()
}

async fn rows(bucket: &MemoryBucket, w: &Written) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for key in &w.summary.differences_list.keys {
        out.extend(parse_part(&bucket.get(key).await.unwrap(), key).unwrap());
    }
    out
}

#[tokio::test]
async fn equal_keys_take_no_head_and_ranges_give_what_one_listing_gives() {
    let m = mirrored(3000, "", "mirror/");
    let mapping = Mapping::new(binding("mirror/", "", false), "");
    let bucket = MemoryBucket::default();
    let one = run(&m, &mapping, 1, &bucket, 1 << 20).await;
    let eight = run(&m, &mapping, 8, &bucket, 1 << 20).await;
    assert_eq!(m.dest_heads.load(Ordering::Relaxed), 0);
    assert_eq!(m.source_heads.load(Ordering::Relaxed), 0);
    assert_eq!(one.summary.ranges, 1);
    assert!(eight.summary.ranges > 2, "{}", eight.summary.ranges);
    for w in [&one, &eight] {
        assert_eq!(w.summary.differences, 0);
        assert_eq!(w.summary.counts["kinds"]["equal"], 3000);
        assert_eq!(w.summary.counts["source_listed"], 3000);
        assert_eq!(w.summary.counts["dest_listed"], 3000);
        assert!(w.summary.complete);
    }
    assert!(eight.summary.counts["requests"]["probes"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn each_divergence_is_found_with_only_the_heads_it_needs() {
    for parallel in [1, 8] {
        let m = mirrored(400, "data/", "mirror/");
        {
            let mut s = m.source.lock().unwrap();
            let mut d = m.dest.lock().unwrap();
            d.remove("mirror/logs/00000");
            d.insert("mirror/img/00001".into(), obj(10, OTHER, 2000)); // other bytes, later, no marker
            d.get_mut("mirror/img/00001").unwrap().marker = None;
            d.insert("mirror/zz-extra".into(), obj(3, MD5, 1010));
            d.insert("mirror/a b/00002".into(), obj(11, MD5, 1010)); // size
            s.get_mut("data/ü/00003").unwrap().modified = 1020; // metadata only: later, same ETag
            s.get_mut("data/ü/00003").unwrap().fingerprint = "f2".into();
            s.get_mut("data/logs/00004").unwrap().modified = 1020; // later, same metadata: equal
            s.insert("data/logs/99999".into(), obj(10, MD5, 1000)); // no event
                                                                    // Multipart on S3, a marked copy: the marker settles it.
            s.get_mut("data/img/00005").unwrap().etag = "abc-2".into();
            d.get_mut("mirror/img/00005").unwrap().marker = Some("abc-2".into());
            // The report area and a key the task filters are passed over.
            d.insert("reports/t1/2026-11-24/manifest.json".into(), obj(1, MD5, 0));
        }
        // STRIP_SOURCE_PREFIX: data/x lands at mirror/x; "data/" itself names no object.
        m.source
            .lock()
            .unwrap()
            .insert("data/".into(), obj(0, MD5, 0));
        let mapping = Mapping::new(binding("mirror/", "data/", true), "data/");
        assert_eq!(mapping.dest_prefix, "mirror/");
        let bucket = MemoryBucket::default();
        let w = run(&m, &mapping, parallel, &bucket, 1 << 20).await;
        let got: Vec<(String, String, String, String)> = rows(&bucket, &w)
            .await
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()))
            .collect();
        let want = [
            ("mirror/a b/00002", "data/a b/00002", "size_differs", ""),
            ("mirror/img/00001", "data/img/00001", "may_differ", "etag"),
            ("mirror/logs/00000", "data/logs/00000", "missing", ""),
            ("mirror/logs/99999", "data/logs/99999", "missing", ""),
            ("mirror/zz-extra", "data/zz-extra", "extra", ""),
            ("mirror/ü/00003", "data/ü/00003", "may_differ", "metadata"),
        ]
        .map(|(a, b, c, d)| (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned()));
        assert_eq!(got, want, "parallel {parallel}");
        // HEADs: img/00001 (OSS), ü/00003 and logs/00004 (both sides), img/00005 (OSS).
        assert_eq!(m.dest_heads.load(Ordering::Relaxed), 4);
        assert_eq!(m.source_heads.load(Ordering::Relaxed), 2);
        assert_eq!(w.summary.counts["heads"]["dest"], 4);
        assert_eq!(w.summary.counts["filtered"], 1);
        assert_eq!(w.summary.differences, 6);
    }
}

#[tokio::test]
async fn the_report_is_written_in_parts_in_key_order_manifest_last() {
    let m = mirrored(300, "", "");
    m.dest.lock().unwrap().clear();
    let mapping = Mapping::new(binding("", "", false), "");
    let bucket = MemoryBucket::default();
    let w = run(&m, &mapping, 8, &bucket, 2000).await;
    assert_eq!(w.summary.differences, 300);
    assert!(w.summary.differences_list.keys.len() > 5);
    let all = rows(&bucket, &w).await;
    assert_eq!(all.len(), 300);
    assert!(all
        .windows(2)
        .all(|p| p[0][0].as_bytes() < p[1][0].as_bytes()));
    let journal = bucket.journal();
    assert!(journal.last().unwrap().ends_with("manifest.json"));
    assert!(w.dir.starts_with("reports/t1/verify/") && w.dir.ends_with("Z/"));
    let manifest: serde_json::Value = serde_json::from_slice(
        &bucket
            .get(&format!("{}manifest.json", w.dir))
            .await
            .unwrap(),
    )
    .unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), w.summary.differences_list.keys.len() + 1);
    for part in &w.summary.differences_list.keys {
        let body = bucket.get(part).await.unwrap();
        assert!(body.starts_with(b"dest_key,source_key,kind,reason,"));
    }
    // No difference: one part, its header alone.
    let m = mirrored(10, "", "");
    let w = run(&m, &mapping, 1, &bucket, 2000).await;
    assert_eq!(w.summary.differences_list.keys.len(), 1);
    assert!(rows(&bucket, &w).await.is_empty());
}

#[tokio::test]
async fn a_source_that_cannot_be_split_is_one_listing_and_one_out_of_order_is_refused() {
    let mut m = mirrored(500, "", "");
    m.inventory = true;
    let mapping = Mapping::new(binding("", "", false), "");
    let bucket = MemoryBucket::default();
    let w = run(&m, &mapping, 8, &bucket, 1 << 20).await;
    assert_eq!(w.summary.ranges, 1);
    assert_eq!(w.summary.counts["requests"]["probes"], 0);
    assert_eq!(w.summary.counts["kinds"]["equal"], 500);
    m.unsorted = true;
    let e = s3_oss_sync::verify::run::verify(
        &m,
        &mapping,
        &VerifyOptions::default(),
        &AtomicBool::new(false),
        &Progress::default(),
    )
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("not in key order"), "{e}");
}

#[tokio::test]
async fn a_stopped_verification_is_written_incomplete() {
    let m = mirrored(200, "", "");
    let mapping = Mapping::new(binding("", "", false), "");
    let bucket = MemoryBucket::default();
    let subject = Subject {
        task: "t1".into(),
        source: "list".into(),
        report_prefix: "reports".into(),
        part_bytes: 1 << 20,
    };
    let w = verify_and_report(
        &m,
        &mapping,
        &VerifyOptions::default(),
        &bucket,
        &subject,
        &AtomicBool::new(true),
        &Progress::default(),
    )
    .await
    .unwrap();
    assert!(!w.summary.complete);
    assert!(bucket.journal().last().unwrap().ends_with("manifest.json"));
}
