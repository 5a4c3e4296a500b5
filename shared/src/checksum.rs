//! Checksums OSS reports: CRC-64/XZ ("crc64ecma" in OSS headers), computed while streaming.

use crc::{Crc, Digest, CRC_64_XZ};

/// The CRC-64 variant OSS returns in `x-oss-hash-crc64ecma` (CRC-64/XZ, reflected ECMA-182).
pub const OSS_CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_XZ);

/// CRC-64 of a whole buffer, as OSS computes it.
pub fn crc64(data: &[u8]) -> u64 {
    OSS_CRC64.checksum(data)
}

/// An incremental CRC-64 over a stream of chunks.
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest<'static, u64>,
}

impl Crc64 {
    /// Starts an empty checksum.
    pub fn new() -> Self {
        Self {
            digest: OSS_CRC64.digest(),
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
}
