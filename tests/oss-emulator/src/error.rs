//! OSS errors as the service reports them: an XML body (or, for HEAD, base64 XML in `x-oss-err`).

use http::StatusCode;

/// An error the emulator answers with, in OSS's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssError {
    /// HTTP status.
    pub status: StatusCode,
    /// OSS error code, e.g. `NoSuchKey`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Extra elements OSS adds for some errors (`Key`, `StringToSign`, ...), in order.
    pub details: Vec<(&'static str, String)>,
}

impl OssError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds an element to the error document.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.details.push((name, value.into()));
        self
    }

    /// The EC (error-condition) value the emulator reports for this code. These follow OSS's
    /// `NNNN-NNNNNNNN` form; they identify the condition within the emulator and are not
    /// guaranteed to equal the service's catalogue numbers.
    pub fn ec(&self) -> &'static str {
        match self.code {
            "AccessDenied" => "0003-00000001",
            "InvalidAccessKeyId" => "0002-00000902",
            "SignatureDoesNotMatch" => "0002-00000040",
            "RequestTimeTooSkewed" => "0002-00000504",
            "InvalidSecurityToken" => "0002-00000905",
            "NoSuchBucket" => "0015-00000101",
            "InvalidBucketName" => "0015-00000001",
            "NoSuchKey" => "0026-00000001",
            "InvalidObjectName" => "0016-00000005",
            "InvalidDigest" => "0016-00000201",
            "InvalidTag" => "0010-00000217",
            "EntityTooLarge" => "0016-00000102",
            "FileAlreadyExists" => "0016-00000401",
            "EntityTooSmall" => "0042-00000303",
            "InvalidPart" => "0042-00000306",
            "InvalidPartOrder" => "0042-00000304",
            "NoSuchUpload" => "0042-00000002",
            "InvalidRange" => "0027-00000001",
            "PreconditionFailed" => "0026-00000005",
            "MalformedXML" => "0017-00000301",
            "NotImplemented" => "0005-00000001",
            "ServiceUnavailable" => "0000-00000503",
            "InternalError" => "0000-00000001",
            _ => "0017-00000101",
        }
    }

    /// The error document, with the request id and host filled in.
    pub fn to_xml(&self, request_id: &str, host_id: &str) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n");
        let ec = self.ec();
        let mut field = |name: &str, value: &str| {
            x.push_str(&format!("  <{name}>{}</{name}>\n", escape(value)));
        };
        field("Code", self.code);
        field("Message", &self.message);
        field("RequestId", request_id);
        field("HostId", host_id);
        for (name, value) in &self.details {
            field(name, value);
        }
        field("EC", ec);
        field(
            "RecommendDoc",
            &format!("https://api.aliyun.com/troubleshoot?q={ec}"),
        );
        x.push_str("</Error>\n");
        x
    }
}

/// XML-escapes text content.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// Shorthands for the errors the emulator answers with.
pub mod errors {
    use super::OssError;
    use http::StatusCode;

    /// 400 InvalidArgument.
    pub fn invalid_argument(msg: impl Into<String>) -> OssError {
        OssError::new(StatusCode::BAD_REQUEST, "InvalidArgument", msg)
    }

    /// 403 AccessDenied.
    pub fn access_denied(msg: impl Into<String>) -> OssError {
        OssError::new(StatusCode::FORBIDDEN, "AccessDenied", msg)
    }

    /// 404 NoSuchKey for a key.
    pub fn no_such_key(key: &str) -> OssError {
        OssError::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
        .with("Key", key)
    }

    /// 404 NoSuchBucket.
    pub fn no_such_bucket(bucket: &str) -> OssError {
        OssError::new(
            StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        )
        .with("BucketName", bucket)
    }

    /// 404 NoSuchUpload.
    pub fn no_such_upload(upload_id: &str) -> OssError {
        OssError::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with("UploadId", upload_id)
    }

    /// 400 MalformedXML.
    pub fn malformed_xml(msg: impl Into<String>) -> OssError {
        OssError::new(StatusCode::BAD_REQUEST, "MalformedXML", msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_and_orders_fields() {
        let e = errors::no_such_key("a<b>&\"c\"");
        let x = e.to_xml("RID", "bucket.host");
        assert!(x.contains("<Code>NoSuchKey</Code>"));
        assert!(x.contains("<Key>a&lt;b&gt;&amp;&quot;c&quot;</Key>"));
        assert!(x.contains("<RequestId>RID</RequestId>"));
        assert!(x.contains("<EC>0026-00000001</EC>"));
        assert!(x.find("<Code>").unwrap() < x.find("<EC>").unwrap());
    }
}
