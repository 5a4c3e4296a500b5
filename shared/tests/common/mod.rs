//! What the OSS client tests share: the key pair, the part size, and a client for an emulator
//! with quick retries.

use oss_emulator::Emulator;
use s3_oss_sync::oss::signing::Credentials;
use s3_oss_sync::oss::{Addressing, Endpoint, OssClient, OssConfig};
use s3_oss_sync::retry::RetryPolicy;
use std::time::Duration;

/// The access key id the emulators accept.
pub const AK: &str = "client-ak";
/// The secret; a test proves it never reaches a log line.
pub const SK: &str = "client-secret-never-logged";
/// Part size and multipart threshold, small so tests cross them cheaply.
pub const PART: u64 = 1024 * 1024;

/// A path-style client of `emu` with `secret` (and an STS token, if given), 1 MiB parts and
/// quick retries; `tweak` adjusts the configuration.
pub fn client_with(
    emu: &Emulator,
    secret: &str,
    token: Option<&str>,
    tweak: impl FnOnce(&mut OssConfig),
) -> OssClient {
    let endpoint = Endpoint::custom(&emu.endpoint(), Addressing::PathStyle, true).unwrap();
    let credentials = Credentials::new(AK, secret, token.map(str::to_owned));
    let mut cfg = OssConfig::new(endpoint, "cn-hangzhou", credentials);
    cfg.part_size = PART;
    cfg.multipart_threshold = PART;
    cfg.retry = RetryPolicy {
        max_attempts: 8,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        deadline: Duration::from_secs(60),
    };
    tweak(&mut cfg);
    OssClient::new(cfg).unwrap()
}
