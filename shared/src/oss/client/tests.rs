//! Tests of key checks, the client's Debug and the server time forms.

use super::*;

#[test]
fn debug_never_shows_the_secret() {
    let cfg = OssConfig::new(
        Endpoint::for_region("cn-hangzhou", super::super::endpoint::Network::Public).unwrap(),
        "cn-hangzhou",
        Credentials::new("AKID", "very-secret-value", Some("sts-token-value".into())),
    );
    let client = OssClient::new(cfg).unwrap();
    let shown = format!("{client:?}");
    assert!(shown.contains("AKID"));
    assert!(!shown.contains("very-secret-value") && !shown.contains("sts-token-value"));
}

#[test]
fn server_time_forms() {
    assert!(parse_server_time("20231216T162057Z").is_some());
    assert!(parse_server_time("2023-12-16T16:20:57Z").is_some());
    assert!(parse_server_time("garbage").is_none());
}
