//! The OSS client against the OSS emulator on 127.0.0.1: keys, sizes, metadata, integrity,
//! retries under faults, permanent errors, clock skew and aborts.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use oss_emulator::{Config, Emulator};
use s3_oss_sync::oss::{Error, OssClient};
use s3_oss_sync::store::object::{ByteStream, ObjectMetadata};
use s3_oss_sync::store::upload::{BodySource, UploadRequest};

#[path = "../common/mod.rs"]
mod common;
use common::{client_with, SK};

mod faults;
mod objects;
mod uploads;

const BUCKET: &str = "dest";

async fn emulator(config: Config) -> Emulator {
    Emulator::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn client(emu: &Emulator) -> OssClient {
    client_with(emu, SK, None, |_| {})
}

fn data(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A source that sends its bytes in small chunks, like a network stream.
struct Chunked(Bytes, usize);

impl BodySource for Chunked {
    fn open(&self) -> BoxFuture<'_, Result<ByteStream, Error>> {
        let (b, n) = (self.0.clone(), self.1);
        Box::pin(async move {
            let chunks: Vec<Result<Bytes, std::io::Error>> = (0..b.len())
                .step_by(n)
                .map(|i| Ok(b.slice(i..(i + n).min(b.len()))))
                .collect();
            Ok(futures_util::stream::iter(chunks).boxed())
        })
    }
}

async fn upload(
    c: &OssClient,
    key: &str,
    body: &Bytes,
) -> Result<s3_oss_sync::store::upload::UploadOutcome, Error> {
    let meta = ObjectMetadata::default();
    let req = UploadRequest {
        bucket: BUCKET,
        key,
        size: body.len() as u64,
        metadata: &meta,
        content_md5: None,
    };
    c.upload(&req, &Chunked(body.clone(), 64 * 1024)).await
}

async fn fetch(c: &OssClient, key: &str) -> Bytes {
    let (_, stream) = c.get_object(BUCKET, key, None).await.unwrap();
    let parts: Vec<Bytes> = stream.try_collect().await.unwrap();
    parts.concat().into()
}

async fn admin(emu: &Emulator, path: &str) -> serde_json::Value {
    reqwest::get(format!("{}/_emulator/{path}", emu.endpoint()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
