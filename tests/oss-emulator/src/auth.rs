//! Checks a request's OSS V4 signature (header or presigned) the way OSS does.

use crate::authorization::{parse_authorization, parse_credential};
use crate::error::{errors, OssError};
use http::StatusCode;
use s3_oss_sync::oss::signing::{
    self, Credentials, RequestParts, Scope, MAX_PRESIGN_EXPIRES_SECS, PRODUCT_OSS,
};
use time::{Duration, OffsetDateTime};

/// How far a request's `x-oss-date` may be from the emulator's clock.
pub const MAX_SKEW: Duration = Duration::minutes(15);

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn query<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The verifier: known credentials and the region this endpoint serves.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// Accepted credentials (with their STS token, if the key is temporary).
    pub credentials: Vec<Credentials>,
    /// The region id (`cn-hangzhou`).
    pub region: String,
}

impl Verifier {
    fn lookup(&self, access_key_id: &str) -> Result<&Credentials, OssError> {
        self.credentials
            .iter()
            .find(|c| c.access_key_id == access_key_id)
            .ok_or_else(|| {
                OssError::new(
                    StatusCode::FORBIDDEN,
                    "InvalidAccessKeyId",
                    "The OSS Access Key Id you provided does not exist in our records.",
                )
                .with("OSSAccessKeyId", access_key_id)
            })
    }

    fn check_scope(&self, region: &str, product: &str) -> Result<(), OssError> {
        if region != self.region || product != PRODUCT_OSS {
            return Err(errors::invalid_argument(format!(
                "Invalid signing region or product in credential: {region}/{product}, expected {}/{PRODUCT_OSS}",
                self.region
            )));
        }
        Ok(())
    }

    fn check_token(creds: &Credentials, token: Option<&str>) -> Result<(), OssError> {
        if creds.security_token.as_deref() != token {
            return Err(OssError::new(
                StatusCode::FORBIDDEN,
                "InvalidSecurityToken",
                "The security token you provided is invalid.",
            ));
        }
        Ok(())
    }

    /// Accepts the request, or says why not, in OSS's words. The request's `additional_headers`
    /// are ignored: the signature itself says which headers it covers.
    pub fn verify(&self, req: &RequestParts<'_>, now: OffsetDateTime) -> Result<(), OssError> {
        if let Some(auth) = header(req.headers, "authorization") {
            return self.verify_header(req, auth, now);
        }
        if query(req.query, "x-oss-signature-version").is_some() {
            return self.verify_presigned(req, now);
        }
        if query(req.query, "Signature").is_some() {
            return Err(errors::invalid_argument(
                "V1 presigned URLs are not supported by this emulator; sign with OSS4-HMAC-SHA256",
            ));
        }
        Err(errors::access_denied(
            "You have no right to access this object because of bucket acl.",
        ))
    }

    fn verify_header(
        &self,
        req: &RequestParts<'_>,
        auth: &str,
        now: OffsetDateTime,
    ) -> Result<(), OssError> {
        if auth.starts_with("OSS ") {
            return Err(errors::invalid_argument(
                "V1 signatures are not supported by this emulator; sign with OSS4-HMAC-SHA256",
            ));
        }
        let parsed = parse_authorization(auth).ok_or_else(|| {
            errors::invalid_argument(format!("Authorization header is invalid: {auth}"))
        })?;
        let creds = self.lookup(&parsed.access_key_id)?;
        let date = header(req.headers, "x-oss-date").ok_or_else(|| {
            errors::access_denied("x-oss-date header is required for V4 signatures")
        })?;
        let time = signing::parse_datetime(date)
            .ok_or_else(|| errors::invalid_argument(format!("x-oss-date is invalid: {date}")))?;
        if (time - now).abs() > MAX_SKEW {
            return Err(OssError::new(
                StatusCode::FORBIDDEN,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
            )
            .with("RequestTime", date)
            .with("ServerTime", signing::format_datetime(now)));
        }
        if header(req.headers, "x-oss-content-sha256").is_none() {
            return Err(errors::invalid_argument(
                "x-oss-content-sha256 header is required for V4 signatures",
            ));
        }
        if !date.starts_with(&parsed.date) {
            return Err(errors::invalid_argument(format!(
                "Credential date {} does not match x-oss-date {date}",
                parsed.date
            )));
        }
        self.check_scope(&parsed.region, &parsed.product)?;
        Self::check_token(creds, header(req.headers, "x-oss-security-token"))?;
        let parts = RequestParts {
            additional_headers: &parsed.additional_headers,
            ..*req
        };
        self.compare(creds, time, &parts, &parsed.signature)
    }

    fn verify_presigned(
        &self,
        req: &RequestParts<'_>,
        now: OffsetDateTime,
    ) -> Result<(), OssError> {
        let need = |name: &str| {
            query(req.query, name).ok_or_else(|| {
                errors::invalid_argument(format!("{name} is required in a presigned URL"))
            })
        };
        if need("x-oss-signature-version")? != signing::ALGORITHM {
            return Err(errors::invalid_argument(
                "Unsupported x-oss-signature-version",
            ));
        }
        let (ak, day, region, product) = parse_credential(need("x-oss-credential")?)
            .ok_or_else(|| errors::invalid_argument("x-oss-credential is invalid"))?;
        let creds = self.lookup(&ak)?;
        let date = need("x-oss-date")?;
        let time = signing::parse_datetime(date)
            .filter(|_| date.starts_with(&day))
            .ok_or_else(|| errors::invalid_argument(format!("x-oss-date is invalid: {date}")))?;
        let expires: u64 = need("x-oss-expires")?
            .parse()
            .ok()
            .filter(|e| (1..=MAX_PRESIGN_EXPIRES_SECS).contains(e))
            .ok_or_else(|| errors::invalid_argument("x-oss-expires must be 1..604800 seconds"))?;
        if now > time + Duration::seconds(expires as i64) {
            return Err(errors::access_denied("Request has expired.")
                .with(
                    "Expires",
                    signing::format_datetime(time + Duration::seconds(expires as i64)),
                )
                .with("ServerTime", signing::format_datetime(now)));
        }
        self.check_scope(&region, &product)?;
        Self::check_token(creds, query(req.query, "x-oss-security-token"))?;
        let signature = need("x-oss-signature")?.to_owned();
        let unsigned: Vec<(String, String)> = req
            .query
            .iter()
            .filter(|(n, _)| n != "x-oss-signature")
            .cloned()
            .collect();
        let additional: Vec<String> = query(req.query, "x-oss-additional-headers")
            .map(|v| v.split(';').map(str::to_owned).collect())
            .unwrap_or_default();
        let parts = RequestParts {
            query: &unsigned,
            additional_headers: &additional,
            ..*req
        };
        self.compare(creds, time, &parts, &signature)
    }

    fn compare(
        &self,
        creds: &Credentials,
        time: OffsetDateTime,
        parts: &RequestParts<'_>,
        given: &str,
    ) -> Result<(), OssError> {
        let scope = Scope {
            region: &self.region,
            product: PRODUCT_OSS,
        };
        let canonical = signing::canonical_request(parts);
        let sts = signing::string_to_sign(time, scope, &canonical);
        let expected = signing::signature(creds.access_key_secret(), time, scope, &sts);
        if constant_time_eq(expected.as_bytes(), given.as_bytes()) {
            Ok(())
        } else {
            Err(OssError::new(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            )
            .with("OSSAccessKeyId", creds.access_key_id.clone())
            .with("CanonicalRequest", canonical)
            .with("StringToSign", sts))
        }
    }
}

/// One key pair as the admin endpoint `PUT /_emulator/credentials` takes it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPair {
    access_key_id: String,
    access_key_secret: String,
    #[serde(default)]
    security_token: Option<String>,
}

/// One key pair or a list of them.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum KeyPairs {
    One(KeyPair),
    Many(Vec<KeyPair>),
}

/// Parses the body of `PUT /_emulator/credentials`: `{"access_key_id": ..., "access_key_secret":
/// ..., "security_token": null}`, or a list of those. At least one key pair; errors never quote
/// a secret.
pub fn parse_credentials(json: &[u8]) -> Result<Vec<Credentials>, String> {
    let pairs = match serde_json::from_slice::<KeyPairs>(json) {
        Ok(KeyPairs::One(p)) => vec![p],
        Ok(KeyPairs::Many(ps)) => ps,
        Err(e) => {
            return Err(format!(
                "expected {{\"access_key_id\": ..., \"access_key_secret\": ..., \"security_token\": ...}} or a list of them (error at line {}, column {})",
                e.line(),
                e.column()
            ))
        }
    };
    if pairs.is_empty() || pairs.iter().any(|p| p.access_key_id.is_empty()) {
        return Err("at least one key pair, each with an access_key_id, is required".into());
    }
    Ok(pairs
        .into_iter()
        .map(|p| Credentials::new(p.access_key_id, p.access_key_secret, p.security_token))
        .collect())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> Verifier {
        Verifier {
            credentials: vec![Credentials::new("ak", "sk", None)],
            region: "cn-hangzhou".into(),
        }
    }

    fn signed_headers(creds: &Credentials, t: OffsetDateTime) -> Vec<(String, String)> {
        let mut headers = vec![("content-type".to_owned(), "text/plain".to_owned())];
        headers.extend(signing::signing_headers(creds, t));
        let parts = RequestParts {
            method: "PUT",
            bucket: Some("b"),
            key: Some("k"),
            query: &[],
            headers: &headers,
            additional_headers: &[],
        };
        let scope = Scope {
            region: "cn-hangzhou",
            product: PRODUCT_OSS,
        };
        let auth = signing::authorization(creds, t, scope, &parts);
        headers.push(("authorization".into(), auth));
        headers
    }

    fn check(headers: &[(String, String)], now: OffsetDateTime) -> Result<(), OssError> {
        verifier().verify(
            &RequestParts {
                method: "PUT",
                bucket: Some("b"),
                key: Some("k"),
                query: &[],
                headers,
                additional_headers: &[],
            },
            now,
        )
    }

    #[test]
    fn accepts_good_and_names_each_failure() {
        let now = OffsetDateTime::now_utc();
        let good = Credentials::new("ak", "sk", None);
        assert_eq!(check(&signed_headers(&good, now), now), Ok(()));
        let code = |h: &[(String, String)], at| check(h, at).unwrap_err().code;
        let wrong_secret = Credentials::new("ak", "other", None);
        assert_eq!(
            code(&signed_headers(&wrong_secret, now), now),
            "SignatureDoesNotMatch"
        );
        let unknown = Credentials::new("nobody", "sk", None);
        assert_eq!(
            code(&signed_headers(&unknown, now), now),
            "InvalidAccessKeyId"
        );
        let old = now - Duration::minutes(16);
        assert_eq!(
            code(&signed_headers(&good, old), now),
            "RequestTimeTooSkewed"
        );
        assert_eq!(code(&[], now), "AccessDenied");
        let token = Credentials::new("ak", "sk", Some("t".into()));
        assert_eq!(
            code(&signed_headers(&token, now), now),
            "InvalidSecurityToken"
        );
    }

    #[test]
    fn admin_credentials_one_or_many_and_never_quoted() {
        let one = parse_credentials(
            br#"{"access_key_id":"a","access_key_secret":"s","security_token":null}"#,
        )
        .unwrap();
        assert_eq!(one, vec![Credentials::new("a", "s", None)]);
        let many = parse_credentials(
            br#"[{"access_key_id":"a","access_key_secret":"s"},
                 {"access_key_id":"b","access_key_secret":"t","security_token":"tok"}]"#,
        )
        .unwrap();
        assert_eq!(many[1], Credentials::new("b", "t", Some("tok".into())));
        for bad in [
            &b"[]"[..],
            br#"{"access_key_id":"","access_key_secret":"s"}"#,
            br#"{"access_key_id":"a","secret":"very-secret"}"#,
            b"very-secret",
        ] {
            let e = parse_credentials(bad).unwrap_err();
            assert!(!e.contains("very-secret"), "{e}");
        }
    }
}
