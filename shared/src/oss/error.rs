//! Errors of the OSS client, each knowing whether a retry can help.

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use serde::Deserialize;
use std::fmt;

/// An error document from OSS (from the body, or from `x-oss-err` on HEAD).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServiceError {
    /// HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// OSS error code, e.g. `NoSuchKey`.
    #[serde(rename = "Code")]
    pub code: String,
    /// Message.
    #[serde(rename = "Message")]
    pub message: String,
    /// Request id (also in `x-oss-request-id`).
    #[serde(rename = "RequestId")]
    pub request_id: String,
    /// Host id.
    #[serde(rename = "HostId")]
    pub host_id: String,
    /// Error condition code.
    #[serde(rename = "EC")]
    pub ec: String,
    /// Server time, sent with `RequestTimeTooSkewed`.
    #[serde(rename = "ServerTime")]
    pub server_time: String,
}

impl ServiceError {
    /// Reads an error from a status, the `x-oss-request-id`/`x-oss-err`/`x-oss-ec` headers, and
    /// the body (empty for HEAD). Whatever cannot be parsed falls back to the status line.
    pub fn from_response(
        status: u16,
        request_id: Option<&str>,
        x_oss_err: Option<&str>,
        x_oss_ec: Option<&str>,
        body: &[u8],
    ) -> Self {
        let decoded = x_oss_err.and_then(|h| B64.decode(h.trim()).ok());
        let doc = if body.is_empty() {
            decoded.as_deref().unwrap_or_default()
        } else {
            body
        };
        let mut e: ServiceError = std::str::from_utf8(doc)
            .ok()
            .and_then(|t| quick_xml::de::from_str(t).ok())
            .unwrap_or_default();
        e.status = status;
        if e.code.is_empty() {
            e.code = match status {
                404 => "NotFound".into(),
                403 => "AccessDenied".into(),
                _ => format!("Http{status}"),
            };
            if e.message.is_empty() {
                e.message = String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned();
            }
        }
        if e.request_id.is_empty() {
            e.request_id = request_id.unwrap_or_default().to_owned();
        }
        if e.ec.is_empty() {
            e.ec = x_oss_ec.unwrap_or_default().to_owned();
        }
        e
    }

    /// Whether retrying the same request may succeed: 5xx, 429, 408, and the codes OSS uses for
    /// passing conditions. 403, `NoSuchBucket`, `InvalidArgument` and the like are permanent.
    pub fn is_transient(&self) -> bool {
        is_transient_status_or_code(self.status, &self.code)
    }
}

/// The one place that maps an HTTP status and an OSS code to transient or permanent.
pub fn is_transient_status_or_code(status: u16, code: &str) -> bool {
    matches!(status, 408 | 429 | 500..=599)
        || matches!(
            code,
            "RequestTimeTooSkewed"
                | "RequestTimeout"
                | "InternalError"
                | "ServiceUnavailable"
                | "SlowDown"
                | "QpsLimitExceeded"
                | "DownloadTrafficRateLimitExceeded"
                | "UploadTrafficRateLimitExceeded"
                // The body OSS received does not match the Content-MD5 sent (always one
                // computed from the body or the source's MD5): damaged on the way, so sent again.
                | "InvalidDigest"
        )
}

/// Whether OSS refused the request for the credentials it was signed with: an unknown or
/// disabled key id, a secret that does not match it, or an STS token that is invalid, expired or
/// not the key's. Permanent for the same credentials; re-reading them may help (see
/// [`super::credentials`]).
pub fn is_credential_code(code: &str) -> bool {
    matches!(
        code,
        "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "SecurityTokenExpired"
            | "InvalidSecurityToken"
            | "AccessKeyIdAndSecurityTokenNotMatch"
    )
}

/// Whether OSS refused the request for the configuration rather than the object: the credentials
/// ([`is_credential_code`]), the key's permissions, or the bucket. Every request of the task
/// fails the same way until an operator fixes it.
pub fn refuses_configuration(code: &str) -> bool {
    is_credential_code(code)
        || matches!(
            code,
            "AccessDenied" | "NoSuchBucket" | "InvalidBucketName" | "UserDisable"
        )
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OSS {} {}: {} (request id {}",
            self.status, self.code, self.message, self.request_id
        )?;
        if !self.ec.is_empty() {
            write!(f, ", EC {}", self.ec)?;
        }
        write!(f, ")")
    }
}

/// Everything the OSS client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// OSS answered with an error document.
    #[error("{0}")]
    Service(Box<ServiceError>),
    /// OSS refused the credentials the request was signed with ([`is_credential_code`]), and
    /// the client has since replaced them: the same request, signed again, may succeed.
    #[error("{0} (the credentials were re-read and have changed; the request is worth repeating)")]
    CredentialsReplaced(Box<ServiceError>),
    /// The request could not be sent or the answer not read.
    #[error("OSS request {op} failed: {source}")]
    Transport {
        /// The operation.
        op: &'static str,
        /// Whether the request may be repeated safely (then timeouts are transient).
        idempotent: bool,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// Reading the source body failed.
    #[error("reading the source for {key:?} failed: {source}")]
    Source {
        /// Destination key.
        key: String,
        /// Whether reading again may succeed.
        transient: bool,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The source body was not the announced size.
    #[error("source for {key:?} gave {actual} bytes, {expected} announced")]
    SizeMismatch {
        /// Destination key.
        key: String,
        /// Announced size.
        expected: u64,
        /// Bytes read.
        actual: u64,
    },
    /// OSS stored different bytes than were sent (CRC-64 mismatch). The object was removed.
    #[error(
        "CRC-64 mismatch for {key:?}: sent {sent}, OSS has {stored} (request id {request_id})"
    )]
    ChecksumMismatch {
        /// Destination key.
        key: String,
        /// CRC-64 of the bytes sent.
        sent: u64,
        /// CRC-64 OSS reported.
        stored: u64,
        /// Request id of the write.
        request_id: String,
    },
    /// OSS cannot store this key (over 1023 bytes, empty, or starting with `/` or `\`).
    #[error("OSS cannot store key {key:?}: {reason}")]
    InvalidKey {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The object is larger than OSS accepts.
    #[error("object {key:?} of {size} bytes exceeds what OSS accepts ({limit} bytes)")]
    TooLarge {
        /// Destination key.
        key: String,
        /// Size.
        size: u64,
        /// Limit.
        limit: u64,
    },
    /// An answer from OSS could not be understood.
    #[error("unexpected OSS answer to {op}: {detail}")]
    Protocol {
        /// The operation.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The client was set up wrongly.
    #[error("OSS client configuration: {0}")]
    Config(String),
}

impl Error {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Service(e) => e.is_transient(),
            Self::CredentialsReplaced(_) => true,
            Self::Transport {
                idempotent, source, ..
            } => {
                // Connection failures are transient. A timeout may mean the server is still
                // acting on the request, so only calls that are safe to repeat are retried.
                if source.is_timeout() {
                    *idempotent
                } else {
                    source.is_connect()
                        || source.is_request()
                        || source.is_body()
                        || source.is_decode()
                }
            }
            Self::Source { transient, .. } => *transient,
            // Reading the source again, or sending again, may give the right bytes.
            Self::ChecksumMismatch { .. } | Self::SizeMismatch { .. } => true,
            Self::InvalidKey { .. }
            | Self::TooLarge { .. }
            | Self::Protocol { .. }
            | Self::Config(_) => false,
        }
    }

    /// The OSS error code, or a short name for client-side errors.
    pub fn code(&self) -> &str {
        match self {
            Self::Service(e) | Self::CredentialsReplaced(e) => &e.code,
            Self::Transport { .. } => "TransportError",
            Self::Source { .. } => "SourceReadError",
            Self::SizeMismatch { .. } => "SourceSizeMismatch",
            Self::ChecksumMismatch { .. } => "ChecksumMismatch",
            Self::InvalidKey { .. } => "InvalidObjectName",
            Self::TooLarge { .. } => "EntityTooLarge",
            Self::Protocol { .. } => "ProtocolError",
            Self::Config(_) => "ConfigError",
        }
    }

    /// The OSS request id, when OSS answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Service(e) | Self::CredentialsReplaced(e) => Some(&e.request_id),
            Self::ChecksumMismatch { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    /// The service error, if OSS answered with one.
    pub fn service(&self) -> Option<&ServiceError> {
        match self {
            Self::Service(e) | Self::CredentialsReplaced(e) => Some(e),
            _ => None,
        }
    }
}

impl crate::retry::Transient for Error {
    fn is_transient(&self) -> bool {
        Error::is_transient(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The specified key does not exist.</Message>
  <RequestId>5C3D9175B6FC201293AD4890</RequestId>
  <HostId>bucket.oss-cn-hangzhou.aliyuncs.com</HostId>
  <Key>k</Key>
  <EC>0026-00000001</EC>
</Error>"#;

    #[test]
    fn parses_body_and_head_forms() {
        let e = ServiceError::from_response(404, Some("X"), None, None, DOC.as_bytes());
        assert_eq!(e.code, "NoSuchKey");
        assert_eq!(e.request_id, "5C3D9175B6FC201293AD4890");
        assert_eq!(e.ec, "0026-00000001");
        assert!(!e.is_transient());
        let head = ServiceError::from_response(404, Some("X"), Some(&B64.encode(DOC)), None, b"");
        assert_eq!(head, e);
        assert!(e.to_string().contains("NoSuchKey") && e.to_string().contains("5C3D9175"));
    }

    #[test]
    fn unparseable_answers_fall_back_to_the_status() {
        let e =
            ServiceError::from_response(502, Some("RID"), None, Some("EC1"), b"<html>bad gateway");
        assert_eq!(
            (e.code.as_str(), e.request_id.as_str(), e.ec.as_str()),
            ("Http502", "RID", "EC1")
        );
        assert!(e.is_transient());
        let e = ServiceError::from_response(403, None, Some("!!notbase64"), None, b"");
        assert_eq!(e.code, "AccessDenied");
        assert!(!e.is_transient());
    }

    #[test]
    fn classification() {
        for (status, code, transient) in [
            (500, "InternalError", true),
            (503, "ServiceUnavailable", true),
            (429, "", true),
            (408, "", true),
            (403, "RequestTimeTooSkewed", true),
            (403, "SignatureDoesNotMatch", false),
            (403, "AccessDenied", false),
            (404, "NoSuchBucket", false),
            (400, "InvalidArgument", false),
            (400, "EntityTooSmall", false),
        ] {
            assert_eq!(
                is_transient_status_or_code(status, code),
                transient,
                "{status} {code}"
            );
        }
    }

    #[test]
    fn credential_refusals_are_permanent_until_the_credentials_change() {
        for code in [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "SecurityTokenExpired",
            "InvalidSecurityToken",
            "AccessKeyIdAndSecurityTokenNotMatch",
        ] {
            assert!(is_credential_code(code), "{code}");
            let e = ServiceError {
                status: 403,
                code: code.into(),
                ..ServiceError::default()
            };
            assert!(
                !Error::Service(Box::new(e.clone())).is_transient(),
                "{code}"
            );
            let replaced = Error::CredentialsReplaced(Box::new(e));
            assert!(replaced.is_transient(), "{code}");
            assert_eq!(replaced.code(), code);
        }
        for code in ["AccessDenied", "RequestTimeTooSkewed", "NoSuchKey"] {
            assert!(!is_credential_code(code), "{code}");
        }
    }
}
