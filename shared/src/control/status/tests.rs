//! Tests of `ctl status`: the rendering of every part, parts that could not be read, an
//! endpoint without CloudWatch, and the copies in progress.

use super::*;

#[test]
fn render_shows_every_part_and_problems() {
    let mut st = Status {
        task: "t1".into(),
        queue_url: "http://q/t1".into(),
        queue: Some(Depths {
            visible: 5,
            in_flight: 2,
            delayed: 0,
        }),
        dlq: Some(DlqStatus {
            url: "http://q/t1-dlq".into(),
            depths: Depths {
                visible: 1,
                ..Depths::default()
            },
        }),
        delivery: Some("Disabled".into()),
        last_complete_day: Some("2026-11-24".into()),
        last_verification: Some(crate::verify::report::LastVerification {
            at: "20261124T030000Z".into(),
            dir: "reports/t1/verify/20261124T030000Z/".into(),
            finished: true,
            complete: Some(true),
            differences: Some(3),
            kinds: Some(serde_json::json!({"equal": 7, "extra": 1, "missing": 2, "may_differ": 0})),
        }),
        today: Some(TodayStatus {
            day: "2026-11-25".into(),
            files: 2,
            counts: [("copied", 2), ("failed", 0), ("pending", 0)]
                .into_iter()
                .collect(),
            records: 3,
            record_counts: [("copied", 2), ("failed", 1), ("skipped", 0)]
                .into_iter()
                .collect(),
            bytes: 10,
            unreadable: 0,
        }),
        ..Status::default()
    };
    st.problem("today", "access denied");
    st.unavailable("delivery", "SYNC_FUNCTION_NAME is not set");
    let text = st.render();
    for want in [
        "5 waiting, 2 in flight",
        "t1-dlq",
        "1 waiting",
        "paused (Disabled)",
        "2026-11-24",
        "2 files (copied 2), 10 bytes",
        "attempts        3 records (copied 2, failed 1)",
        "problem           today: access denied",
        "unavailable       delivery: SYNC_FUNCTION_NAME is not set",
        "oldest message  none (no CloudWatch datapoint",
        "last verification 20261124T030000Z: 3 differences (extra 1, missing 2)",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let json = serde_json::to_value(&st).unwrap();
    assert_eq!(json["queue"]["in_flight"], 2);
    assert_eq!(json["today"]["counts"]["failed"], 0);
    assert_eq!(json["today"]["record_counts"]["failed"], 1);
}

#[test]
fn every_part_that_could_not_be_read_says_unknown_not_none() {
    let mut st = Status {
        task: "t1".into(),
        ..Status::default()
    };
    st.problem("dead-letter queue", "SQS GetQueueAttributes: access denied");
    st.problem("reports", "OSS: SignatureDoesNotMatch");
    st.unavailable(
        "oldest message",
        "CloudWatch GetMetricStatistics: no permission",
    );
    let text = st.render();
    for want in [
        "dead-letter queue unknown (see below)",
        "oldest message  unknown (see below)",
        "last complete day unknown (see below)",
        "last verification unknown (see below)",
        "today             unknown (see below)",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(!text.contains("dead-letter queue none"), "{text}");
    st.unavailable.clear();
    st.cloudwatch_not_asked = true;
    assert!(st
        .render()
        .contains("oldest message  not asked (--no-cloudwatch)"));
    // Read and empty: none.
    let text = Status::default().render();
    assert!(text.contains("dead-letter queue none") && text.contains("last complete day none"));
}

#[test]
fn an_endpoint_that_does_not_speak_cloudwatch_is_named_in_one_sentence() {
    use aws_sdk_cloudwatch::config::http::HttpResponse;
    use aws_smithy_types::body::SdkBody;
    let html = HttpResponse::new(
        404.try_into().unwrap(),
        SdkBody::from("<!DOCTYPE html><title>404 Not Found</title>"),
    );
    let mut html = html;
    html.headers_mut()
        .insert("content-type", "text/html; charset=utf-8");
    let why = not_cloudwatch(&html).expect("HTML is not CloudWatch");
    assert!(why.contains("HTTP 404 with text/html"), "{why}");
    assert!(why.contains("does not serve CloudWatch"), "{why}");
    let mut cbor = HttpResponse::new(400.try_into().unwrap(), SdkBody::empty());
    cbor.headers_mut()
        .insert("content-type", "application/cbor");
    assert_eq!(not_cloudwatch(&cbor), None);
}

#[test]
fn copies_in_progress_are_listed_and_unreadable_ones_are_problems() {
    use crate::sweep::copies::tests::{checkpoint, NOW};
    let day = std::time::Duration::from_secs(24 * 3600);
    let mut st = Status {
        task: "t1".into(),
        copies_in_progress: Some(vec![
            CopyInProgress::of(
                "k1",
                &checkpoint("big", "UP1", 4 << 30, 1 << 30, 1, 0),
                &[],
                NOW,
                day,
            ),
            CopyInProgress::of(
                "k2",
                &checkpoint("old", "UP2", 100, 10, 2, 30),
                &[],
                NOW,
                day,
            ),
        ]),
        ..Status::default()
    };
    st.problem(
        "copy in progress results-checkpoints/t1/x.json",
        "damaged: expected value at line 1 column 1",
    );
    let text = st.render();
    for want in [
        "copies in progress 2\n",
        "  m/big  1.0 GiB of 4.0 GiB (25.0%)  parts 1/4  upload UP1  age 30.0 h  last progress 0 s ago\n",
        "  m/old  20 B of 100 B (20.0%)  parts 2/10  upload UP2  age 30.0 h  last progress 30.0 h ago  STALE",
        "problem           copy in progress results-checkpoints/t1/x.json: damaged",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let json = serde_json::to_value(&st).unwrap();
    let first = &json["copies_in_progress"][0];
    assert_eq!(first["dest_key"], "m/big");
    assert_eq!(first["bytes_done"], 1u64 << 30);
    assert_eq!(first["size"], 4u64 << 30);
    assert_eq!(first["percent"], 25.0);
    assert_eq!(
        (first["parts_done"].as_u64(), first["parts_total"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(first["upload_id"], "UP1");
    assert_eq!(first["age_secs"], 30 * 3600);
    assert_eq!(first["since_progress_secs"], 0);
    assert_eq!(first["stale"], false);
    assert_eq!(json["copies_in_progress"][1]["stale"], true);

    st.copies_in_progress = Some(Vec::new());
    assert!(st.render().contains("copies in progress none\n"));
    st.copies_in_progress = None;
    st.unavailable("copies in progress", "RESULTS_BUCKET is not set");
    assert!(st
        .render()
        .contains("copies in progress unknown (see below)"));
}
