//! The `ctl` command's configuration: the task's variables, the backfill prefix, the sweep settings.

use crate::config::*;

/// A control configuration from the required settings and `extra`.
fn env(extra: &[(&str, &str)]) -> Result<ControlConfig, ConfigError> {
    let mut m: std::collections::HashMap<String, String> = [
        ("TASK_ID", "t1"),
        ("SOURCE_BUCKET", "src"),
        ("TASK_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/1/t1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        m.insert(k.to_string(), v.to_string());
    }
    ControlConfig::from_lookup(move |k| m.get(k).cloned())
}

#[test]
fn control_settings_and_prefixes() {
    let c = env(&[]).unwrap();
    assert_eq!(
        (c.source_prefix.as_str(), c.function_name.as_deref()),
        ("", None)
    );
    assert_eq!(c.backfill_prefix(Some("a/b")).unwrap(), "a/b");
    let c = env(&[("SOURCE_PREFIX", "logs/"), ("SYNC_FUNCTION_NAME", "f")]).unwrap();
    assert_eq!(c.function_name.as_deref(), Some("f"));
    assert_eq!(c.backfill_prefix(None).unwrap(), "logs/");
    assert_eq!(c.backfill_prefix(Some("logs/2026/")).unwrap(), "logs/2026/");
    assert_eq!(c.backfill_prefix(Some("lo")).unwrap(), "logs/");
    assert_eq!(
        c.backfill_prefix(Some("other/")).unwrap_err().variable,
        "--prefix"
    );
    assert_eq!(
        env(&[("TASK_QUEUE_URL", "t1")]).unwrap_err().variable,
        "TASK_QUEUE_URL"
    );
    assert_eq!(env(&[("TASK_ID", "")]).unwrap_err().variable, "TASK_ID");
}

#[test]
fn control_sweep_settings() {
    let c = env(&[]).unwrap();
    assert_eq!(
        (
            c.dest_bucket.as_deref(),
            c.dest_prefix.as_str(),
            c.upload_sweep_age_hours
        ),
        (None, "", 24)
    );
    let c = env(&[
        ("DEST_BUCKET", "dst"),
        ("DEST_PREFIX", "mirror/"),
        ("UPLOAD_SWEEP_AGE_HOURS", "720"),
    ])
    .unwrap();
    assert_eq!(
        (
            c.dest_bucket.as_deref(),
            c.dest_prefix.as_str(),
            c.upload_sweep_age_hours
        ),
        (Some("dst"), "mirror/", 720)
    );
    for (var, value) in [
        ("DEST_BUCKET", "Bad_Bucket"),
        ("DEST_PREFIX", "/x"),
        ("UPLOAD_SWEEP_AGE_HOURS", "721"),
    ] {
        assert_eq!(env(&[(var, value)]).unwrap_err().variable, var);
    }
}
