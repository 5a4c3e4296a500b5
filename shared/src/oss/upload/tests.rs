//! Tests of the part size and of the tally of a streamed body.

use super::put::{tallied, Tally};
use super::*;
use crate::store::object::ByteStream;
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;

#[test]
fn part_size_fits_any_object_oss_accepts() {
    const MIB: u64 = 1024 * 1024;
    assert_eq!(part_size_for(100 * MIB, 8 * MIB), Ok(8 * MIB));
    assert_eq!(part_size_for(1, 1), Ok(MIN_PART_SIZE));
    // 1 TiB needs > 10,000 parts of 8 MiB: raised to whole MiB.
    let tib = 1024 * 1024 * MIB;
    let p = part_size_for(tib, 8 * MIB).unwrap();
    assert!(tib.div_ceil(p) <= MAX_PARTS && p.is_multiple_of(MIB), "{p}");
    let max = MAX_PUT_SIZE * MAX_PARTS;
    let p = part_size_for(max, 8 * MIB).unwrap();
    assert!(max.div_ceil(p) <= MAX_PARTS && p <= MAX_PUT_SIZE);
    assert!(part_size_for(max + 1, 8 * MIB).is_err());
}

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
