//! The OSS credentials kept in a Secrets Manager secret: read with `GetSecretValue` and parsed
//! from the secret's JSON. Errors name the secret and never quote its value.

use crate::errors::BoxError;
use crate::oss::signing::Credentials;

/// A credentials secret could not be read or understood. Never carries the secret's value.
#[derive(Debug, thiserror::Error)]
#[error("OSS credentials secret {secret_id}: {source}")]
pub struct SecretError {
    /// The secret's id or ARN.
    pub secret_id: String,
    /// What went wrong: the SDK's error, or what is wrong with the value (never the value).
    #[source]
    pub source: BoxError,
    /// Whether reading again may succeed (a timeout, throttling, a server error).
    pub transient: bool,
}

impl crate::retry::Transient for SecretError {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

/// The JSON a credentials secret holds.
#[derive(serde::Deserialize)]
struct SecretCredentials {
    #[serde(alias = "AccessKeyId", alias = "access_key_id")]
    #[serde(rename = "accessKeyId")]
    access_key_id: String,
    #[serde(alias = "AccessKeySecret", alias = "access_key_secret")]
    #[serde(rename = "accessKeySecret")]
    access_key_secret: String,
    #[serde(alias = "SecurityToken", alias = "security_token", default)]
    #[serde(rename = "securityToken")]
    security_token: Option<String>,
}

/// Parses a credentials secret's JSON. Errors never quote the value.
pub fn parse_secret(secret_id: &str, json: &str) -> Result<Credentials, SecretError> {
    let s: SecretCredentials = serde_json::from_str(json).map_err(|e| SecretError {
        secret_id: secret_id.to_owned(),
        // Only where: serde's message can quote the value.
        source: format!(
            "expected JSON {{\"accessKeyId\": ..., \"accessKeySecret\": ..., \"securityToken\"?: ...}} \
             (error at line {}, column {})",
            e.line(),
            e.column()
        )
        .into(),
        transient: false,
    })?;
    Ok(Credentials::new(
        s.access_key_id,
        s.access_key_secret,
        s.security_token,
    ))
}

/// Reads and parses a credentials secret (`GetSecretValue`). Errors never quote the value.
pub async fn read_credentials(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Credentials, SecretError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| SecretError {
            secret_id: secret_id.to_owned(),
            transient: super::error::is_transient(&e),
            source: e.into(),
        })?;
    let json = out.secret_string().ok_or_else(|| SecretError {
        secret_id: secret_id.to_owned(),
        source: "the secret has no string value".into(),
        transient: false,
    })?;
    parse_secret(secret_id, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_and_errors_never_quote_them() {
        let c = parse_secret("s", r#"{"accessKeyId":"AK","accessKeySecret":"SK-value"}"#).unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.access_key_secret()),
            ("AK", "SK-value")
        );
        let c = parse_secret(
            "s",
            r#"{"AccessKeyId":"AK","AccessKeySecret":"S","SecurityToken":"T"}"#,
        )
        .unwrap();
        assert_eq!(c.security_token.as_deref(), Some("T"));
        let e = parse_secret("s", r#"{"accessKeyId":"AK","secret":"SK-value"}"#).unwrap_err();
        assert!(!e.to_string().contains("SK-value"), "{e}");
        let e = parse_secret("s", "SK-value-not-json").unwrap_err();
        assert!(!e.to_string().contains("SK-value"), "{e}");
    }
}
