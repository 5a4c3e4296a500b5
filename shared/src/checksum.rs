//! Checksums OSS reports: CRC-64/XZ ("crc64ecma" in OSS headers), computed while streaming.
//!
//! `crc-fast` computes it with carry-less multiplication (PCLMULQDQ/VPCLMULQDQ on x86-64, PMULL on
//! ARM), tens of times faster than a byte-wise table: at a table's ~0.5 GB/s, checking every byte
//! twice cost more CPU than the rest of a copy.

use crc_fast::CrcAlgorithm::Crc64Xz;

/// CRC-64 of a whole buffer, as OSS computes it.
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(Crc64Xz, data)
}

/// The CRC-64 of `a` followed by `b`, from the CRC-64 of each and the length of `b`, so parts
/// checksummed separately need not be read again for the whole.
pub fn crc64_combine(a: u64, b: u64, b_len: u64) -> u64 {
    crc_fast::checksum_combine(Crc64Xz, a, b, b_len)
}

/// An incremental CRC-64 over a stream of chunks.
#[derive(Clone, Copy)]
pub struct Crc64 {
    digest: crc_fast::Digest,
}

impl Crc64 {
    /// Starts an empty checksum.
    pub fn new() -> Self {
        Self {
            digest: crc_fast::Digest::new(Crc64Xz),
        }
    }

    /// Feeds the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.digest.update(chunk);
    }

    /// The checksum of everything fed so far.
    pub fn finish(self) -> u64 {
        self.digest.finalize()
    }
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

/// The MD5 of some bytes as 32 lower-case hex digits: an S3 ETag of a single-part object, the
/// `Content-MD5` OSS checks (base64 there), the manifest's digest of a report part.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from the vendor's Go SDK (`oss/utils_crc_test.go`), see the signing-vectors reference.
    const CHECK: &[u8] = b"123456789";
    const EBS: &[u8] = b"This is a test of the emergency broadcast system.";

    #[test]
    fn matches_vendor_vectors() {
        assert_eq!(crc64(CHECK), 11_051_210_869_376_104_954);
        assert_eq!(crc64(EBS), 2_871_916_124_362_751_090);
        assert_eq!(crc64(b"hi oss"), 8_707_180_448_768_400_016);
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn streaming_equals_whole() {
        let mut c = Crc64::new();
        c.update(CHECK);
        c.update(EBS);
        assert_eq!(c.finish(), 7_672_622_622_872_733_320);
    }

    #[test]
    fn combined_parts_equal_the_whole() {
        let whole: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for cut in [0, 1, 4095, 65_536, 99_999, 100_000] {
            let (a, b) = whole.split_at(cut);
            assert_eq!(
                crc64_combine(crc64(a), crc64(b), b.len() as u64),
                crc64(&whole),
                "cut at {cut}"
            );
        }
        assert_eq!(
            crc64_combine(crc64(CHECK), crc64(EBS), EBS.len() as u64),
            7_672_622_622_872_733_320
        );
    }
}
