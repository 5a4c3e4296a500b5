//! Seeding the source for the measurements: one large object, or many small ones (set-up, not
//! measured).

use super::Bench;
use aws_sdk_s3::primitives::ByteStream as S3Body;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use s3_oss_sync_bench::{pattern_stream, round};
use serde_json::{json, Value};
use std::time::Instant;

pub(super) async fn seed_large(
    b: &Bench,
    key: &str,
    size_mib: u64,
) -> Result<Value, Box<dyn std::error::Error>> {
    let size = size_mib << 20;
    let mut file = tempfile::NamedTempFile::new()?;
    {
        use std::io::Write;
        let mut stream = pattern_stream(size, 0);
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?)?;
        }
        file.flush()?;
    }
    let t = Instant::now();
    let body = S3Body::from_path(file.path()).await?;
    let put = b
        .s3_setup
        .put_object()
        .bucket(b.bucket())
        .key(key)
        .body(body)
        .send()
        .await?;
    Ok(json!({
        "step": "seed-large", "key": key, "size_mib": size_mib,
        "etag": put.e_tag(), "seconds": round(t.elapsed().as_secs_f64(), 2),
    }))
}

pub(super) async fn seed_small(
    b: &Bench,
    prefix: &str,
    count: usize,
    size: usize,
    parallel: usize,
) -> Result<Value, Box<dyn std::error::Error>> {
    let t = Instant::now();
    futures_util::stream::iter(0..count)
        .map(|i| async move {
            // Distinct bytes per object: its number, then a pattern.
            let mut body = vec![0u8; size];
            for (j, byte) in body.iter_mut().enumerate() {
                *byte = (j as u64 * 31 + i as u64 * 7) as u8;
            }
            body[..8.min(size)].copy_from_slice(&(i as u64).to_be_bytes()[..8.min(size)]);
            b.s3_setup
                .put_object()
                .bucket(b.bucket())
                .key(format!("{prefix}{i:05}.bin"))
                .body(Bytes::from(body).into())
                .send()
                .await
                .map(|_| ())
        })
        .buffer_unordered(parallel)
        .try_collect::<()>()
        .await?;
    Ok(json!({
        "step": "seed-small", "prefix": prefix, "count": count, "size": size,
        "seconds": round(t.elapsed().as_secs_f64(), 2),
    }))
}
