//! Parses an OSS V4 `Authorization` header and its credential scope, as the emulator reads
//! them from a request (the client only writes them, in `s3_oss_sync::oss::signing`).

use s3_oss_sync::oss::signing::{ALGORITHM, SCOPE_TERMINATOR};

/// A parsed V4 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// The AccessKey ID from the credential.
    pub access_key_id: String,
    /// The day (`yyyymmdd`) from the credential scope.
    pub date: String,
    /// The region from the credential scope.
    pub region: String,
    /// The product from the credential scope.
    pub product: String,
    /// Additional signed header names, as listed.
    pub additional_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
}

/// Parses `<AK>/<date>/<region>/<product>/aliyun_v4_request` into its parts.
pub fn parse_credential(credential: &str) -> Option<(String, String, String, String)> {
    let mut it = credential.rsplitn(5, '/');
    let terminator = it.next()?;
    let product = it.next()?;
    let region = it.next()?;
    let date = it.next()?;
    let ak = it.next()?;
    (terminator == SCOPE_TERMINATOR && !ak.is_empty()).then(|| {
        (
            ak.to_owned(),
            date.to_owned(),
            region.to_owned(),
            product.to_owned(),
        )
    })
}

/// Parses a V4 `Authorization` header value; `None` if it is not V4 or is malformed.
/// Fields may be separated by `,` or `, ` (both appear in the vendor's material).
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.strip_prefix(ALGORITHM)?.strip_prefix(' ')?;
    let (mut credential, mut additional, mut sig) = (None, Vec::new(), None);
    for field in rest.split(',') {
        let (name, val) = field.trim().split_once('=')?;
        match name {
            "Credential" => credential = Some(val),
            "AdditionalHeaders" => {
                additional = val.split(';').map(str::to_owned).collect();
            }
            "Signature" => sig = Some(val),
            _ => return None,
        }
    }
    let (access_key_id, date, region, product) = parse_credential(credential?)?;
    Some(ParsedAuthorization {
        access_key_id,
        date,
        region,
        product,
        additional_headers: additional,
        signature: sig?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3_oss_sync::oss::signing::{
        authorization, signing_headers, Credentials, RequestParts, Scope, PRODUCT_OSS,
    };
    use time::OffsetDateTime;

    /// The vendor's realistic PutObject (vector 8, pinned in the shared signer's tests), signed
    /// by the shared signer.
    #[test]
    fn vector_8_realistic_put_object_parses() {
        let creds = Credentials::new("testid", "yourAccessKeySecret", None);
        let t = OffsetDateTime::from_unix_timestamp(1744353684).unwrap();
        let mut headers: Vec<(String, String)> = [
            ("Content-Disposition", "attachment"),
            ("Content-Length", "3"),
            ("Content-MD5", "ICy5YqxZB1uWSwcVLSNLcA=="),
            ("Content-Type", "text/plain"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
        headers.extend(signing_headers(&creds, t));
        let additional: Vec<String> = vec!["content-disposition".into(), "content-length".into()];
        let parts = RequestParts {
            method: "PUT",
            bucket: Some("examplebucket"),
            key: Some("exampleobject"),
            query: &[],
            headers: &headers,
            additional_headers: &additional,
        };
        let hangzhou = Scope {
            region: "cn-hangzhou",
            product: PRODUCT_OSS,
        };
        let auth = authorization(&creds, t, hangzhou, &parts);
        // The vendor's reqsign formats with ", "; both forms parse to the same fields.
        let spaced =
            "OSS4-HMAC-SHA256 Credential=testid/20250411/cn-hangzhou/oss/aliyun_v4_request, \
             AdditionalHeaders=content-disposition;content-length, \
             Signature=d3694c2dfc5371ee6acd35e88c4871ac95a7ba01d3a2f476768fe61218590097";
        assert_eq!(parse_authorization(spaced), parse_authorization(&auth));
        let parsed = parse_authorization(spaced).unwrap();
        assert_eq!(parsed.access_key_id, "testid");
        assert_eq!(parsed.region, "cn-hangzhou");
        assert_eq!(
            parsed.additional_headers,
            ["content-disposition", "content-length"]
        );
    }

    #[test]
    fn malformed_authorizations_are_rejected() {
        for bad in [
            "",
            "OSS ak:sig",
            "OSS4-HMAC-SHA256 Signature=abc",
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/wrong,Signature=x",
            "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request",
            "OSS4-HMAC-SHA256 Credential=/20231216/r/oss/aliyun_v4_request,Signature=x",
            "OSS4-HMAC-SHA256 Credential=ak/d/r/oss/aliyun_v4_request,Bogus=1,Signature=x",
        ] {
            assert_eq!(parse_authorization(bad), None, "{bad:?}");
        }
    }
}
