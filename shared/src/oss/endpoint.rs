//! Where OSS requests go: the endpoint for a region and network, or a custom one, and how a
//! bucket and key become a URL (virtual-hosted, path-style, or a bucket's own domain).

use super::error::Error;
use super::signing::uri_encode;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The OSS networks a region is reached through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// `oss-<region>.aliyuncs.com`.
    Public,
    /// `oss-<region>-internal.aliyuncs.com`, from inside Alibaba Cloud.
    Internal,
    /// `oss-accelerate.aliyuncs.com` (transfer acceleration).
    Accelerate,
    /// `<region>.oss.aliyuncs.com` (IPv4 and IPv6).
    DualStack,
}

/// How the bucket appears in a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `https://bucket.host/key` (OSS's default).
    VirtualHosted,
    /// `http://host/bucket/key` (local emulators, IP endpoints).
    PathStyle,
    /// `https://custom-domain/key`: the host is bound to one bucket.
    Cname,
}

/// A resolved endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    scheme: &'static str,
    host: String,
    addressing: Addressing,
}

/// Keeps the RFC 3986 unreserved characters and `/`.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

impl Endpoint {
    /// The https endpoint of a region on a network, virtual-hosted.
    pub fn for_region(region: &str, network: Network) -> Result<Self, Error> {
        let ok = !region.is_empty()
            && region
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !ok {
            return Err(Error::Config(format!(
                "region {region:?} is not a region id like cn-hangzhou"
            )));
        }
        let region = region.strip_prefix("oss-").unwrap_or(region);
        let host = match network {
            Network::Public => format!("oss-{region}.aliyuncs.com"),
            Network::Internal => format!("oss-{region}-internal.aliyuncs.com"),
            Network::Accelerate => "oss-accelerate.aliyuncs.com".to_owned(),
            Network::DualStack => format!("{region}.oss.aliyuncs.com"),
        };
        Ok(Self {
            scheme: "https",
            host,
            addressing: Addressing::VirtualHosted,
        })
    }

    /// A custom endpoint such as `https://oss-cn-hangzhou.aliyuncs.com`, `http://127.0.0.1:9000`
    /// or a bucket's own domain. `http` is refused unless `allow_http`, so credentials and data do
    /// not cross a network in the clear by accident.
    pub fn custom(url: &str, addressing: Addressing, allow_http: bool) -> Result<Self, Error> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
            ("https", r)
        } else if let Some(r) = url.strip_prefix("http://") {
            if !allow_http {
                return Err(Error::Config(format!(
                    "endpoint {url} is not https; allow plain http explicitly to use it"
                )));
            }
            ("http", r)
        } else if url.contains("://") {
            return Err(Error::Config(format!(
                "endpoint {url} must be http or https"
            )));
        } else {
            ("https", url)
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') || host.contains('?') || host.contains('@') {
            return Err(Error::Config(format!(
                "endpoint {url} must be scheme://host[:port] with no path"
            )));
        }
        Ok(Self {
            scheme,
            host: host.to_owned(),
            addressing,
        })
    }

    /// Whether the host is an IP address or `localhost`, where virtual-hosted names cannot work.
    pub fn is_ip_or_localhost(&self) -> bool {
        let h = self
            .host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(h, p)| {
                if p.bytes().all(|c| c.is_ascii_digit()) {
                    h
                } else {
                    &self.host
                }
            });
        h == "localhost" || h.starts_with('[') || h.parse::<std::net::IpAddr>().is_ok()
    }

    /// The addressing style in use.
    pub fn addressing(&self) -> Addressing {
        self.addressing
    }

    /// `scheme://host`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// The URL of a bucket (and key) with an already-encoded query string.
    pub fn url(&self, bucket: &str, key: Option<&str>, query: &str) -> String {
        let path = key.map(encode_key_path).unwrap_or_default();
        let mut url = match self.addressing {
            Addressing::VirtualHosted => format!("{}://{bucket}.{}/{path}", self.scheme, self.host),
            Addressing::PathStyle => format!("{}://{}/{bucket}/{path}", self.scheme, self.host),
            Addressing::Cname => format!("{}://{}/{path}", self.scheme, self.host),
        };
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

/// Encodes a key for the URL path. `/` is kept, except in keys with `.` or `..` segments, where
/// every `/` is sent as `%2F` so that no URL library can collapse the segments (OSS decodes the
/// path back to the same key either way).
pub fn encode_key_path(key: &str) -> String {
    let has_dot_segment = key.split('/').any(|s| s == "." || s == "..");
    if has_dot_segment {
        uri_encode(key)
    } else {
        utf8_percent_encode(key, PATH).to_string()
    }
}

/// Encodes query pairs (`name=value`, or bare `name` when the value is empty).
pub fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                uri_encode(k)
            } else {
                format!("{}={}", uri_encode(k), uri_encode(v))
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_networks() {
        let url = |n| {
            Endpoint::for_region("cn-hangzhou", n)
                .unwrap()
                .url("b", Some("k"), "")
        };
        for (network, want) in [
            (Network::Public, "https://b.oss-cn-hangzhou.aliyuncs.com/k"),
            (
                Network::Internal,
                "https://b.oss-cn-hangzhou-internal.aliyuncs.com/k",
            ),
            (
                Network::Accelerate,
                "https://b.oss-accelerate.aliyuncs.com/k",
            ),
            (
                Network::DualStack,
                "https://b.cn-hangzhou.oss.aliyuncs.com/k",
            ),
        ] {
            assert_eq!(url(network), want, "{network:?}");
        }
        assert!(Endpoint::for_region("CN hangzhou", Network::Public).is_err());
    }

    #[test]
    fn custom_endpoints_and_addressing() {
        let local = Endpoint::custom("http://127.0.0.1:9000", Addressing::PathStyle, true).unwrap();
        assert!(local.is_ip_or_localhost());
        assert_eq!(
            local.url("b", Some("a b/c"), "uploads"),
            "http://127.0.0.1:9000/b/a%20b/c?uploads"
        );
        assert_eq!(
            local.url("b", None, "list-type=2"),
            "http://127.0.0.1:9000/b/?list-type=2"
        );
        let cname =
            Endpoint::custom("https://files.example.com/", Addressing::Cname, false).unwrap();
        assert!(!cname.is_ip_or_localhost());
        assert_eq!(cname.url("b", Some("k"), ""), "https://files.example.com/k");
        let bare = Endpoint::custom(
            "oss-cn-beijing.aliyuncs.com",
            Addressing::VirtualHosted,
            false,
        )
        .unwrap();
        assert_eq!(
            bare.url("b", Some("k"), ""),
            "https://b.oss-cn-beijing.aliyuncs.com/k"
        );
    }

    #[test]
    fn plain_http_needs_consent_and_junk_is_refused() {
        let e = Endpoint::custom("http://oss.example.com", Addressing::VirtualHosted, false);
        assert!(e.unwrap_err().to_string().contains("not https"));
        for bad in ["ftp://x", "https://", "https://h/path", "https://u@h"] {
            assert!(
                Endpoint::custom(bad, Addressing::PathStyle, true).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn key_paths_survive_url_normalisation() {
        assert_eq!(encode_key_path("a/b c+d%?#"), "a/b%20c%2Bd%25%3F%23");
        assert_eq!(encode_key_path("a/../b"), "a%2F..%2Fb");
        assert_eq!(encode_key_path("./x"), ".%2Fx");
        assert_eq!(encode_key_path("a..b/c"), "a..b/c");
        assert_eq!(
            encode_query(&[
                ("uploads".into(), "".into()),
                ("prefix".into(), "a/b c".into())
            ]),
            "uploads&prefix=a%2Fb%20c"
        );
    }
}
