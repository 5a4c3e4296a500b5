//! The OSS settings the sync and report functions (and `ctl sweep-uploads`) share: the endpoint,
//! the region id and where the key pair comes from.

use super::env::Env;
use super::{problem, ConfigError, Problems};
use crate::oss::signing::Credentials;
use crate::oss::{Addressing, Endpoint, Network};

/// Where the OSS key pair comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given directly (`OSS_ACCESS_KEY_ID`, `OSS_ACCESS_KEY_SECRET`, `OSS_SECURITY_TOKEN`).
    Static(Credentials),
    /// An AWS Secrets Manager secret (`OSS_CREDENTIALS_SECRET_ID`) holding JSON with
    /// `accessKeyId`, `accessKeySecret` and optionally `securityToken`.
    SecretsManager(String),
}

/// The OSS endpoint and credentials shared by the sync and report functions.
#[derive(Debug, Clone)]
pub struct OssSettings {
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Region id.
    pub region: String,
    /// Credentials.
    pub credentials: CredentialSource,
}

impl OssSettings {
    /// Reads `OSS_ENDPOINT`, `OSS_REGION`, `OSS_NETWORK`, `OSS_PATH_STYLE`, `OSS_ALLOW_HTTP` and
    /// the credential variables.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(Env::new(get))
    }

    /// Reads the settings from `env`: the endpoint's problem and the credentials' both reported.
    pub(super) fn read(env: Env) -> Result<Self, ConfigError> {
        let mut p = Problems::default();
        let endpoint = p.check(Self::endpoint(env));
        let credentials = p.check(Self::credentials(env));
        p.finish()?;
        let (Some((endpoint, region)), Some(credentials)) = (endpoint, credentials) else {
            unreachable!("every setting read without a problem")
        };
        Ok(Self {
            endpoint,
            region,
            credentials,
        })
    }

    /// The endpoint and the region id.
    fn endpoint(env: Env) -> Result<(Endpoint, String), ConfigError> {
        let region = env
            .var("OSS_REGION")
            .required("a region id like cn-hangzhou")?;
        // The endpoint's host name spells a region `oss-cn-hangzhou`; the signature's scope needs
        // the id, `cn-hangzhou`. Either is taken, and the id kept for both.
        let region = match region.strip_prefix("oss-") {
            Some(id) => id.to_owned(),
            None => region,
        };
        let allow_http = env.var("OSS_ALLOW_HTTP").flag()?;
        let endpoint = match env.var("OSS_ENDPOINT").non_empty().value() {
            Some(url) => {
                let path_style = env.var("OSS_PATH_STYLE").bool()?;
                let probe = Endpoint::custom(&url, Addressing::VirtualHosted, allow_http)
                    .map_err(|e| problem("OSS_ENDPOINT", e.to_string()))?;
                let path_style = path_style.unwrap_or_else(|| probe.is_ip_or_localhost());
                let addressing = if path_style {
                    Addressing::PathStyle
                } else {
                    Addressing::VirtualHosted
                };
                Endpoint::custom(&url, addressing, allow_http)
                    .map_err(|e| problem("OSS_ENDPOINT", e.to_string()))?
            }
            None => {
                let network = env.var("OSS_NETWORK").choice(
                    "public",
                    &[
                        ("public", Network::Public),
                        ("internal", Network::Internal),
                        ("accelerate", Network::Accelerate),
                        ("dualstack", Network::DualStack),
                    ],
                )?;
                Endpoint::for_region(&region, network)
                    .map_err(|e| problem("OSS_REGION", e.to_string()))?
            }
        };
        Ok((endpoint, region))
    }

    /// Where the key pair comes from.
    fn credentials(env: Env) -> Result<CredentialSource, ConfigError> {
        let set = |name| env.var(name).non_empty().value();
        let id = set("OSS_ACCESS_KEY_ID");
        let secret = set("OSS_ACCESS_KEY_SECRET");
        let token = set("OSS_SECURITY_TOKEN");
        let secret_id = set("OSS_CREDENTIALS_SECRET_ID");
        let credentials = match (id, secret, secret_id) {
            (Some(_), Some(_), Some(_)) => {
                return Err(problem(
                    "OSS_CREDENTIALS_SECRET_ID",
                    "set either it or OSS_ACCESS_KEY_ID/OSS_ACCESS_KEY_SECRET, not both",
                ))
            }
            (Some(id), Some(secret), None) => {
                CredentialSource::Static(Credentials::new(id, secret, token))
            }
            (None, None, Some(s)) => CredentialSource::SecretsManager(s),
            (Some(_), None, _) => {
                return Err(problem(
                    "OSS_ACCESS_KEY_SECRET",
                    "is required with OSS_ACCESS_KEY_ID",
                ))
            }
            (None, Some(_), _) => {
                return Err(problem(
                    "OSS_ACCESS_KEY_ID",
                    "is required with OSS_ACCESS_KEY_SECRET",
                ))
            }
            (None, None, None) => {
                return Err(problem(
                    "OSS_CREDENTIALS_SECRET_ID",
                    "OSS credentials are required: a Secrets Manager secret id, or \
                     OSS_ACCESS_KEY_ID and OSS_ACCESS_KEY_SECRET",
                ))
            }
        };
        Ok(credentials)
    }
}
