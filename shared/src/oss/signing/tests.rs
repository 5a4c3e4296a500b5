//! Every vector from the vendor's SDK tests (`oss-v4-signing-vectors.md`), intermediates included.
use super::*;

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn sdk_query() -> Vec<(String, String)> {
    pairs(&[
        ("param1", "value1"),
        ("+param1", "value3"),
        ("|param1", "value4"),
        ("+param2", ""),
        ("|param2", ""),
        ("param2", ""),
    ])
}

fn sdk_headers(content_type: &str) -> Vec<(String, String)> {
    pairs(&[
        ("x-oss-head1", "value"),
        ("abc", "value"),
        ("ZAbc", "value"),
        ("XYZ", "value"),
        ("content-type", content_type),
    ])
}

const HANGZHOU: Scope<'static> = Scope {
    region: "cn-hangzhou",
    product: PRODUCT_OSS,
};
const SDK_KEY: &str = "1234+-/123/1.txt";
/// The object the SDK's vectors sign.
const SDK_OBJECT: (&str, &str) = ("bucket", SDK_KEY);
/// The object the vendor's documented examples sign.
const EXAMPLE_OBJECT: (&str, &str) = ("examplebucket", "exampleobject");

/// The parts of a request for `(bucket, key)`.
fn request<'a>(
    method: &'a str,
    (bucket, key): (&'a str, &'a str),
    query: &'a [(String, String)],
    headers: &'a [(String, String)],
    additional_headers: &'a [String],
) -> RequestParts<'a> {
    RequestParts {
        method,
        bucket: Some(bucket),
        key: Some(key),
        query,
        headers,
        additional_headers,
    }
}

/// Header-mode request as the SDK vectors build it: SDK headers plus the signer's own.
fn header_signed(
    creds: &Credentials,
    t: OffsetDateTime,
    scope: Scope<'_>,
    additional: &[String],
) -> (String, String, String) {
    let mut headers = sdk_headers("text/plain");
    headers.extend(signing_headers(creds, t));
    let query = sdk_query();
    let parts = request("PUT", SDK_OBJECT, &query, &headers, additional);
    let cr = canonical_request(&parts);
    let sts = string_to_sign(t, scope, &cr);
    (cr, sts, authorization(creds, t, scope, &parts))
}

const SDK_CANON_QUERY: &str =
    "%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2";

#[test]
fn vector_1_header_auth() {
    let creds = Credentials::new("ak", "sk", None);
    let (cr, sts, auth) = header_signed(&creds, at(1702743657), HANGZHOU, &[]);
    assert_eq!(
        cr,
        format!(
            "PUT\n/bucket/1234%2B-/123/1.txt\n{SDK_CANON_QUERY}\ncontent-type:text/plain\n\
             x-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\n\
             x-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
        )
    );
    assert_eq!(
        sts,
        "OSS4-HMAC-SHA256\n20231216T162057Z\n20231216/cn-hangzhou/oss/aliyun_v4_request\n\
         f4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4"
    );
    assert_eq!(
        auth,
        "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
         Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"
    );
}

#[test]
fn vector_2_header_auth_with_sts_token() {
    let creds = Credentials::new("ak", "sk", Some("token".into()));
    let (cr, sts, auth) = header_signed(&creds, at(1702784856), HANGZHOU, &[]);
    assert_eq!(
        auth,
        "OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,\
         Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea"
    );
    // The token is signed as a header.
    assert!(cr.contains("x-oss-head1:value\nx-oss-security-token:token\n\n\n"));
    assert!(sts.ends_with("69494678fb11579d4ee12996e2796d9e2ba43c34aa4c723c4aec018f3d6b86b8"));
}

#[test]
fn vector_3_header_auth_with_additional_headers() {
    let creds = Credentials::new("ak", "sk", None);
    let expected = "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,\
         AdditionalHeaders=abc;zabc,\
         Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f";
    let plain: Vec<String> = vec!["ZAbc".into(), "abc".into()];
    let (cr, sts, auth) = header_signed(&creds, at(1702747512), HANGZHOU, &plain);
    assert_eq!(
        cr,
        format!(
            "PUT\n/bucket/1234%2B-/123/1.txt\n{SDK_CANON_QUERY}\nabc:value\n\
             content-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\n\
             x-oss-date:20231216T172512Z\nx-oss-head1:value\nzabc:value\n\n\
             abc;zabc\nUNSIGNED-PAYLOAD"
        )
    );
    assert!(sts.ends_with("16b86004ed2cc3406dd7a13081bd940ef6a5ad49e508da2d4fdf84e8a5dd2145"));
    assert_eq!(auth, expected);
    // Default-signed and absent names are dropped: same result.
    let noisy: Vec<String> = ["x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        header_signed(&creds, at(1702747512), HANGZHOU, &noisy).2,
        expected
    );
}

#[test]
fn vector_4_cloudbox_product() {
    let creds = Credentials::new("ak", "sk", None);
    let scope = Scope {
        region: "cb-123",
        product: "oss-cloudbox",
    };
    let (_, sts, auth) = header_signed(&creds, at(1702743657), scope, &[]);
    assert!(sts.ends_with("f4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4"));
    assert_eq!(
        auth,
        "OSS4-HMAC-SHA256 Credential=ak/20231216/cb-123/oss-cloudbox/aliyun_v4_request,\
         Signature=94ce1f12c17d148ea681030275a94449d3357f5b5b21133996eec80af3e08a43"
    );
}

/// Presigns the SDK's PUT; returns (canonical request, string to sign, signature).
fn presigned(
    creds: &Credentials,
    t: OffsetDateTime,
    expires: u64,
    additional: &[String],
) -> (String, String, String) {
    let headers = sdk_headers("application/octet-stream");
    let mut query = sdk_query();
    let effective = effective_additional_headers(additional, &headers);
    query.extend(presign_query(creds, t, HANGZHOU, expires, &effective));
    let parts = request("PUT", SDK_OBJECT, &query, &headers, additional);
    let cr = canonical_request(&parts);
    let sts = string_to_sign(t, HANGZHOU, &cr);
    (cr, sts, presign_signature(creds, t, HANGZHOU, &parts))
}

#[test]
fn vector_5_presigned() {
    let creds = Credentials::new("ak", "sk", None);
    let (cr, sts, sig) = presigned(&creds, at(1702781677), 599, &[]);
    assert_eq!(
        cr,
        format!(
            "PUT\n/bucket/1234%2B-/123/1.txt\n{SDK_CANON_QUERY}&x-oss-credential=ak%2F20231217%2F\
             cn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20231217T025437Z&x-oss-expires=599\
             &x-oss-signature-version=OSS4-HMAC-SHA256\ncontent-type:application/octet-stream\n\
             x-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
        )
    );
    assert!(sts.ends_with("48814c11f278d51662015bf2f896b66ca10b6de0187ed8d952e341bbce0aa336"));
    assert_eq!(
        sig,
        "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"
    );
    // The vendor's long-expiry case.
    assert_eq!(
        presigned(&creds, at(1702781677), 432_000, &[]).2,
        "31029123dc7732d2d2cfd4006ea4fdb6cf86da6478f813e2bf8f87877c7b9fec"
    );
}

#[test]
fn vector_6_presigned_with_sts_token() {
    let creds = Credentials::new("ak", "sk", Some("token".into()));
    let (cr, sts, sig) = presigned(&creds, at(1702785388), 599, &[]);
    assert!(cr.contains(
        "&x-oss-expires=599&x-oss-security-token=token&x-oss-signature-version=OSS4-HMAC-SHA256\n"
    ));
    assert!(sts.ends_with("458705026c021c95dd317d008cff79df19ce99bf2b241d1ecb20f4d65bb851a5"));
    assert_eq!(
        sig,
        "3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5"
    );
}

#[test]
fn vector_7_presigned_with_additional_headers() {
    let creds = Credentials::new("ak", "sk", None);
    let additional: Vec<String> = vec!["ZAbc".into(), "abc".into()];
    let (cr, sts, sig) = presigned(&creds, at(1702783809), 599, &additional);
    assert!(cr.contains("param2&x-oss-additional-headers=abc%3Bzabc&x-oss-credential="));
    assert!(cr.ends_with(
        "abc:value\ncontent-type:application/octet-stream\nx-oss-head1:value\nzabc:value\n\n\
         abc;zabc\nUNSIGNED-PAYLOAD"
    ));
    assert!(sts.ends_with("e06541af14a8dc30dd12d3b75557af47f405e37784a76eae1a844c3426777df9"));
    assert_eq!(
        sig,
        "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7"
    );
}

#[test]
fn vector_8_realistic_put_object() {
    let creds = Credentials::new("testid", "yourAccessKeySecret", None);
    let t = at(1744353684);
    let mut headers = pairs(&[
        ("Content-Disposition", "attachment"),
        ("Content-Length", "3"),
        ("Content-MD5", "ICy5YqxZB1uWSwcVLSNLcA=="),
        ("Content-Type", "text/plain"),
    ]);
    headers.extend(signing_headers(&creds, t));
    let additional: Vec<String> = vec!["content-disposition".into(), "content-length".into()];
    let parts = request("PUT", EXAMPLE_OBJECT, &[], &headers, &additional);
    let cr = canonical_request(&parts);
    assert_eq!(
        cr,
        "PUT\n/examplebucket/exampleobject\n\ncontent-disposition:attachment\n\
         content-length:3\ncontent-md5:ICy5YqxZB1uWSwcVLSNLcA==\ncontent-type:text/plain\n\
         x-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20250411T064124Z\n\n\
         content-disposition;content-length\nUNSIGNED-PAYLOAD"
    );
    assert!(string_to_sign(t, HANGZHOU, &cr)
        .ends_with("c46d96390bdbc2d739ac9363293ae9d710b14e48081fcb22cd8ad54b63136eca"));
    let auth = authorization(&creds, t, HANGZHOU, &parts);
    assert!(auth
        .ends_with("Signature=d3694c2dfc5371ee6acd35e88c4871ac95a7ba01d3a2f476768fe61218590097"));
}

#[test]
fn vector_9_presigned_get_with_host() {
    let creds = Credentials::new("testid", "yourAccessKeySecret", None);
    let t = at(1733196187);
    let headers = pairs(&[("host", "examplebucket.oss-cn-hangzhou.aliyuncs.com")]);
    let additional: Vec<String> = vec!["host".into()];
    let query = presign_query(&creds, t, HANGZHOU, 86_400, &additional);
    let parts = request("GET", EXAMPLE_OBJECT, &query, &headers, &additional);
    assert_eq!(
        canonical_request(&parts),
        "GET\n/examplebucket/exampleobject\nx-oss-additional-headers=host&x-oss-credential=\
         testid%2F20241203%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20241203T032307Z\
         &x-oss-expires=86400&x-oss-signature-version=OSS4-HMAC-SHA256\n\
         host:examplebucket.oss-cn-hangzhou.aliyuncs.com\n\nhost\nUNSIGNED-PAYLOAD"
    );
    assert_eq!(
        presign_signature(&creds, t, HANGZHOU, &parts),
        "a9ad2ce702a93c7c36ace35dd4e1b80cb76a999c890d7dfe78ff342a23dac8e0"
    );
}

#[test]
fn canonical_uri_forms() {
    assert_eq!(canonical_uri(None, None), "/");
    assert_eq!(canonical_uri(Some("b"), None), "/b/");
    assert_eq!(
        canonical_uri(Some("b"), Some("a b/ü?#&=%+")),
        "/b/a%20b/%C3%BC%3F%23%26%3D%25%2B"
    );
}

#[test]
fn datetime_round_trips() {
    let t = at(1702743657);
    assert_eq!(format_datetime(t), "20231216T162057Z");
    assert_eq!(parse_datetime("20231216T162057Z"), Some(t));
    assert_eq!(parse_datetime("2023-12-16"), None);
}

#[test]
fn debug_masks_secrets() {
    let c = Credentials::new("AKID", "the-secret-value", Some("the-token".into()));
    let shown = format!("{c:?}");
    assert!(shown.contains("AKID"));
    assert!(!shown.contains("the-secret-value"));
    assert!(!shown.contains("the-token"));
}
