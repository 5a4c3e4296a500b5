//! Tests of the tally of a streamed body.

use super::put::{tallied, Tally};
use crate::store::object::ByteStream;
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::Mutex;

#[tokio::test]
async fn tally_counts_checksums_and_caps() {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let s: ByteStream = futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"1234")),
        Ok(Bytes::from_static(b"56789")),
    ])
    .boxed();
    let out: Vec<_> = tallied(s, tally.clone(), 9).collect().await;
    assert!(out.iter().all(Result::is_ok));
    {
        let t = tally.lock().unwrap();
        assert_eq!((t.bytes, t.crc.finish()), (9, 11_051_210_869_376_104_954));
        assert!(t.ended);
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let s: ByteStream =
        futures_util::stream::iter(vec![Ok(Bytes::from_static(b"1234567890"))]).boxed();
    let out: Vec<_> = tallied(s, tally.clone(), 9).collect().await;
    assert!(out[0].is_err() && tally.lock().unwrap().overflow);
}
