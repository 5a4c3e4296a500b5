//! The report function's configuration: the zone, the grace, the sweep settings, the report area.

use crate::config::*;

/// A report configuration from the required settings and `extra`.
fn env(extra: &[(&str, &str)]) -> Result<ReportConfig, ConfigError> {
    let mut m: std::collections::HashMap<String, String> = [
        ("TASK_ID", "t1"),
        ("RESULTS_BUCKET", "results-bucket"),
        ("DEST_BUCKET", "dst"),
        ("OSS_REGION", "cn-hangzhou"),
        ("OSS_ACCESS_KEY_ID", "AK"),
        ("OSS_ACCESS_KEY_SECRET", "SK"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        m.insert(k.to_string(), v.to_string());
    }
    ReportConfig::from_lookup(move |k| m.get(k).cloned())
}

#[test]
fn report_settings_and_errors() {
    let c = env(&[]).unwrap();
    assert_eq!((c.report_prefix.as_str(), c.grace_minutes), ("reports", 30));
    assert_eq!(env(&[("REPORT_GRACE", "1h")]).unwrap().grace_minutes, 60);
    assert_eq!(env(&[("REPORT_GRACE", "45m")]).unwrap().grace_minutes, 45);
    assert_eq!(
        env(&[("REPORT_GRACE", "soon")]).unwrap_err().variable,
        "REPORT_GRACE"
    );
    assert_eq!(c.zone.name(), "+00:00");
    let c = env(&[("REPORT_UTC_OFFSET", "+08:00")]).unwrap();
    assert_eq!(c.zone.name(), "+08:00");
    let c = env(&[
        ("REPORT_TIME_ZONE", "Asia/Shanghai"),
        ("REPORT_UTC_OFFSET", ""),
    ])
    .unwrap();
    assert_eq!(c.zone.name(), "Asia/Shanghai");
    let c = env(&[("REPORT_TIME_ZONE", "-05:00")]).unwrap();
    assert_eq!(c.zone.name(), "-05:00");
    let c = env(&[
        ("REPORT_TIME_ZONE", "+08:00"),
        ("REPORT_UTC_OFFSET", "+0800"),
    ])
    .unwrap();
    assert_eq!(c.zone.name(), "+08:00", "both, the same zone");
    let e = env(&[
        ("REPORT_TIME_ZONE", "Asia/Shanghai"),
        ("REPORT_UTC_OFFSET", "+08:00"),
    ])
    .unwrap_err();
    assert_eq!(e.variable, "REPORT_TIME_ZONE");
    assert!(e.to_string().contains("REPORT_UTC_OFFSET"), "{e}");
    assert_eq!(
        env(&[("REPORT_TIME_ZONE", "Mars/Olympus")])
            .unwrap_err()
            .variable,
        "REPORT_TIME_ZONE"
    );
    assert_eq!((c.event_source_mapping, c.task_queue_url), (None, None));
    let q = "https://sqs.us-east-1.amazonaws.com/1/t1";
    let c = env(&[("SYNC_EVENT_SOURCE_MAPPING", "a1b2"), ("TASK_QUEUE_URL", q)]).unwrap();
    assert_eq!(c.event_source_mapping.as_deref(), Some("a1b2"));
    assert_eq!(c.task_queue_url.as_deref(), Some(q));
    assert_eq!(
        env(&[("TASK_QUEUE_URL", "t1")]).unwrap_err().variable,
        "TASK_QUEUE_URL"
    );
    assert_eq!(
        env(&[("REPORT_UTC_OFFSET", "8")]).unwrap_err().variable,
        "REPORT_UTC_OFFSET"
    );
    assert_eq!(
        env(&[("REPORT_GRACE", "0")]).unwrap_err().variable,
        "REPORT_GRACE"
    );
}

#[test]
fn report_sweep_settings() {
    let c = env(&[]).unwrap();
    assert_eq!((c.dest_prefix.as_str(), c.upload_sweep_age_hours), ("", 24));
    let c = env(&[("DEST_PREFIX", "mirror/"), ("UPLOAD_SWEEP_AGE_HOURS", "1")]).unwrap();
    assert_eq!(
        (c.dest_prefix.as_str(), c.upload_sweep_age_hours),
        ("mirror/", 1)
    );
    for bad in ["0", "721", "24h", ""] {
        assert_eq!(
            env(&[("UPLOAD_SWEEP_AGE_HOURS", bad)])
                .unwrap_err()
                .variable,
            "UPLOAD_SWEEP_AGE_HOURS",
            "{bad:?}"
        );
    }
    assert_eq!(
        env(&[("DEST_PREFIX", "\\x")]).unwrap_err().variable,
        "DEST_PREFIX"
    );
}

#[test]
fn a_report_area_overlapping_dest_prefix_is_refused() {
    assert_eq!(env(&[]).unwrap().lease_minutes, 30);
    for (dest, report) in [
        ("reports/", "reports"),
        ("reports/t1/", "reports"),
        ("rep", "reports"),
        ("reports", "reports"),
        ("mirror/", "mirror/reports"),
        ("t1/", ""),
    ] {
        let e = env(&[("DEST_PREFIX", dest), ("REPORT_PREFIX", report)]).unwrap_err();
        assert_eq!(e.variable, "REPORT_PREFIX", "{dest:?} {report:?}");
        assert!(e.problem.contains("overlaps DEST_PREFIX"), "{e}");
    }
    for (dest, report) in [
        ("", "reports"),
        ("mirror/", "reports"),
        ("reports2/", "reports"),
        ("data/", ""),
    ] {
        assert!(
            env(&[("DEST_PREFIX", dest), ("REPORT_PREFIX", report)]).is_ok(),
            "{dest:?} {report:?}"
        );
    }
    assert_eq!(report_area("", "t1"), "t1/");
    assert_eq!(report_area("/reports/", "t1"), "reports/");
}
