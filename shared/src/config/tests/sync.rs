//! The sync function's configuration: defaults, every wrong variable reported at once, the OSS
//! endpoint and credentials, the memory budget, path-style S3 (read by all three configurations).

use crate::config::*;
use crate::oss::Addressing;
use std::collections::HashMap;

fn base() -> HashMap<&'static str, String> {
    [
        ("TASK_ID", "t1"),
        ("SOURCE_BUCKET", "src"),
        ("DEST_BUCKET", "dst"),
        ("OSS_REGION", "cn-hangzhou"),
        ("OSS_ACCESS_KEY_ID", "AK"),
        ("OSS_ACCESS_KEY_SECRET", "very-secret-value"),
        ("RESULTS_BUCKET", "results-bucket"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

fn load(env: &HashMap<&'static str, String>) -> Result<SyncConfig, ConfigError> {
    SyncConfig::from_lookup(|k| env.get(k).cloned())
}

#[test]
fn defaults() {
    let c = load(&base()).unwrap();
    assert_eq!(
        c.oss_endpoint.base(),
        "https://oss-cn-hangzhou.aliyuncs.com"
    );
    assert_eq!(c.oss_endpoint.addressing(), Addressing::VirtualHosted);
    assert!(!c.sync_deletes && !c.sync_tags);
    assert_eq!(
        (c.concurrency, c.part_size, c.parts_in_flight),
        (DEFAULT_CONCURRENCY, 8 << 20, 4)
    );
    assert_eq!(c.results_prefix, "results");
    assert!(!format!("{c:?}").contains("very-secret-value"));
}

#[test]
fn every_wrong_variable_is_reported_at_once() {
    let mut env = base();
    env.insert("TASK_ID", "no spaces allowed".into());
    env.insert("SYNC_CONCURRENCY", "0".into());
    env.insert("STORAGE_CLASS_MAP", "STANDARD".into());
    env.remove("OSS_REGION");
    env.remove("OSS_ACCESS_KEY_SECRET");
    let e = load(&env).unwrap_err();
    let variables: Vec<&str> = e.all().iter().map(|e| e.variable).collect();
    assert_eq!(
        variables,
        [
            "TASK_ID",
            "OSS_REGION",
            "OSS_ACCESS_KEY_SECRET",
            "STORAGE_CLASS_MAP",
            "SYNC_CONCURRENCY"
        ]
    );
    let text = e.to_string();
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.lines().all(|l| l.contains(": ")), "{text}");
    // The report function's reading too.
    let mut env: HashMap<&str, String> = base();
    env.insert("REPORT_GRACE", "forever".into());
    env.insert("TASK_QUEUE_URL", "queue".into());
    let e = ReportConfig::from_lookup(|k| env.get(k).cloned()).unwrap_err();
    let variables: Vec<&str> = e.all().iter().map(|e| e.variable).collect();
    assert_eq!(variables, ["REPORT_GRACE", "TASK_QUEUE_URL"]);
}

#[test]
fn a_region_spelt_as_in_the_host_name_is_signed_with_its_id() {
    let mut env = base();
    env.insert("OSS_REGION", "oss-cn-hangzhou".into());
    let c = load(&env).unwrap();
    assert_eq!(c.oss_region, "cn-hangzhou");
    assert_eq!(
        c.oss_endpoint.base(),
        "https://oss-cn-hangzhou.aliyuncs.com"
    );
}

#[test]
fn the_sync_function_keeps_out_of_the_report_area() {
    let c = load(&base()).unwrap();
    assert_eq!(c.binding.report_area.as_deref(), Some("reports/"));
    let mut env = base();
    env.insert("REPORT_PREFIX", "audit/".into());
    let c = load(&env).unwrap();
    assert_eq!(c.binding.report_area.as_deref(), Some("audit/"));
    env.insert("DEST_PREFIX", "audit/mirror/".into());
    let e = load(&env).unwrap_err();
    assert_eq!(e.variable, "REPORT_PREFIX");
    assert!(e.problem.contains("overlaps DEST_PREFIX"), "{e}");
    env.insert("DEST_PREFIX", "mirror/".into());
    assert!(load(&env).is_ok());
}

#[test]
fn memory_budget_from_the_setting_the_function_memory_or_the_default() {
    const MIB: u64 = 1024 * 1024;
    let mut env = base();
    assert_eq!(load(&env).unwrap().memory_budget, 256 * MIB);
    env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into());
    assert_eq!(
        load(&env).unwrap().memory_budget,
        (128 - FIXED_OVERHEAD_MIB) * MIB
    );
    env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024".into());
    assert_eq!(
        load(&env).unwrap().memory_budget,
        (1024 - FIXED_OVERHEAD_MIB) * MIB
    );
    env.insert("SYNC_MEMORY_BUDGET_MIB", "100".into());
    assert_eq!(load(&env).unwrap().memory_budget, 100 * MIB);
    env.insert("SYNC_MEMORY_BUDGET_MIB", "".into());
    assert_eq!(
        load(&env).unwrap().memory_budget,
        (1024 - FIXED_OVERHEAD_MIB) * MIB,
        "empty means unset"
    );
    // Smaller than one part: refused, naming the variable that decided it.
    env.insert("SYNC_MEMORY_BUDGET_MIB", "4".into());
    let e = load(&env).unwrap_err();
    assert_eq!(e.variable, "SYNC_MEMORY_BUDGET_MIB");
    assert!(e.problem.contains("less than one part of 8 MiB"), "{e}");
    env.remove("SYNC_MEMORY_BUDGET_MIB");
    env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into());
    env.insert("OSS_PART_SIZE_MIB", "100".into());
    let e = load(&env).unwrap_err();
    assert_eq!(e.variable, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "{e}");
    env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "40".into());
    env.remove("OSS_PART_SIZE_MIB");
    assert_eq!(
        load(&env).unwrap_err().variable,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
    );
    env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots".into());
    assert_eq!(
        load(&env).unwrap_err().variable,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
    );
}

#[test]
fn local_endpoints_are_path_style_and_http_must_be_allowed() {
    let mut env = base();
    env.insert("OSS_ENDPOINT", "http://127.0.0.1:9000".into());
    assert_eq!(load(&env).unwrap_err().variable, "OSS_ENDPOINT");
    env.insert("OSS_ALLOW_HTTP", "true".into());
    assert_eq!(
        load(&env).unwrap().oss_endpoint.addressing(),
        Addressing::PathStyle
    );
    env.insert("OSS_PATH_STYLE", "off".into());
    assert_eq!(
        load(&env).unwrap().oss_endpoint.addressing(),
        Addressing::VirtualHosted
    );
}

#[test]
fn s3_path_style_is_read_with_the_other_settings() {
    let mut env = base();
    assert!(!load(&env).unwrap().s3_path_style);
    // A local S3-compatible server is reached path-style unless told otherwise.
    env.insert("AWS_ENDPOINT_URL", "http://127.0.0.1:5000".into());
    assert!(load(&env).unwrap().s3_path_style);
    env.insert("S3_PATH_STYLE", "false".into());
    assert!(!load(&env).unwrap().s3_path_style);
    env.insert("AWS_ENDPOINT_URL", "https://s3.example.com".into());
    env.insert("S3_PATH_STYLE", "Yes".into());
    assert!(load(&env).unwrap().s3_path_style);
    // A wrong value is one of the problems reported together, by all three readers.
    env.insert("S3_PATH_STYLE", "sometimes".into());
    env.insert("SYNC_CONCURRENCY", "0".into());
    let e = load(&env).unwrap_err();
    let variables: Vec<&str> = e.all().iter().map(|e| e.variable).collect();
    assert_eq!(variables, ["SYNC_CONCURRENCY", "S3_PATH_STYLE"]);
    assert!(
        e.to_string().contains("\"sometimes\" is not a boolean"),
        "{e}"
    );
    let e = ReportConfig::from_lookup(|k| env.get(k).cloned()).unwrap_err();
    assert_eq!(e.variable, "S3_PATH_STYLE");
    let mut control: HashMap<&str, String> = HashMap::from([
        ("TASK_ID", "t1".into()),
        ("SOURCE_BUCKET", "src".into()),
        (
            "TASK_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/1/t1".into(),
        ),
        ("S3_PATH_STYLE", "1".into()),
    ]);
    assert!(
        ControlConfig::from_lookup(|k| control.get(k).cloned())
            .unwrap()
            .s3_path_style
    );
    control.insert("S3_PATH_STYLE", "maybe".into());
    let e = ControlConfig::from_lookup(|k| control.get(k).cloned()).unwrap_err();
    assert_eq!(e.variable, "S3_PATH_STYLE");
}

#[test]
fn errors_name_the_variable() {
    let cases: [(&str, Option<&str>, &str); 9] = [
        ("TASK_ID", None, "TASK_ID"),
        ("TASK_ID", Some("a/b"), "TASK_ID"),
        ("SOURCE_BUCKET", Some("Bad_Bucket"), "SOURCE_BUCKET"),
        ("SOURCE_PREFIX", Some("/x"), "SOURCE_PREFIX"),
        ("SYNC_DELETES", Some("maybe"), "SYNC_DELETES"),
        ("SYNC_CONCURRENCY", Some("0"), "SYNC_CONCURRENCY"),
        ("OSS_ACCESS_KEY_SECRET", None, "OSS_ACCESS_KEY_SECRET"),
        (
            "STORAGE_CLASS_MAP",
            Some("GLACIER=Frozen"),
            "STORAGE_CLASS_MAP",
        ),
        ("OSS_REGION", Some("Hangzhou!"), "OSS_REGION"),
    ];
    for (var, value, named) in cases {
        let mut env = base();
        match value {
            Some(v) => env.insert(var, v.into()),
            None => env.remove(var),
        };
        let e = load(&env).unwrap_err();
        assert_eq!(e.variable, named, "{var}={value:?}: {e}");
        assert!(!e.to_string().contains("very-secret-value"));
    }
}

#[test]
fn credentials_from_secrets_manager_exclusive_of_a_key_pair() {
    let mut env = base();
    env.insert("OSS_CREDENTIALS_SECRET_ID", "arn:secret".into());
    assert_eq!(
        load(&env).unwrap_err().variable,
        "OSS_CREDENTIALS_SECRET_ID"
    );
    env.remove("OSS_ACCESS_KEY_ID");
    env.remove("OSS_ACCESS_KEY_SECRET");
    assert_eq!(
        load(&env).unwrap().oss_credentials,
        CredentialSource::SecretsManager("arn:secret".into())
    );
}

#[test]
fn storage_class_map() {
    let mut env = base();
    env.insert(
        "STORAGE_CLASS_MAP",
        "STANDARD=Standard, GLACIER=Archive".into(),
    );
    let c = load(&env).unwrap();
    assert_eq!(c.storage_classes[1], ("GLACIER".into(), "Archive".into()));
}
