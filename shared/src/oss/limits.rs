//! What OSS accepts: the keys it can store and address, the largest single write, and how many
//! parts of what size a multipart upload may have. Pure rules, used by the client before it sends
//! and by the sync core to tell an invalid key from a failure.

use super::error::Error;

/// Largest object one PutObject (or one part) may carry: 5 GiB.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// Smallest part OSS accepts (but for the last).
pub const MIN_PART_SIZE: u64 = 100 * 1024;

/// The part size for an object: the preferred size, raised (to whole MiB) when the object would
/// otherwise need more than 10,000 parts. Fails only for objects OSS cannot hold.
pub fn part_size_for(size: u64, preferred: u64) -> Result<u64, u64> {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(MAX_PARTS);
    let part = if needed > preferred {
        needed.div_ceil(MIB) * MIB
    } else {
        preferred
    }
    .max(MIN_PART_SIZE);
    if part > MAX_PUT_SIZE {
        Err(MAX_PUT_SIZE * MAX_PARTS)
    } else {
        Ok(part)
    }
}

/// Checks that OSS can store a key and that it can be addressed in a URL.
pub fn check_key(key: &str) -> Result<(), Error> {
    let reason = if key.is_empty() {
        "keys must not be empty"
    } else if key.len() > 1023 {
        "keys must be at most 1023 bytes"
    } else if key.starts_with('/') || key.starts_with('\\') {
        "keys must not start with '/' or '\\'"
    } else if key == "." || key == ".." {
        "a key that is only '.' or '..' cannot be addressed in a URL"
    } else {
        return Ok(());
    };
    Err(Error::InvalidKey {
        key: key.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_oss_cannot_store_are_refused() {
        for (key, ok) in [
            ("a", true),
            ("a/../b", true),
            ("...", true),
            ("", false),
            ("/a", false),
            ("\\a", false),
            ("..", false),
            (".", false),
        ] {
            assert_eq!(check_key(key).is_ok(), ok, "{key:?}");
        }
        assert!(check_key(&"k".repeat(1023)).is_ok());
        assert_eq!(
            check_key(&"k".repeat(1024)).unwrap_err().code(),
            "InvalidObjectName"
        );
    }

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
}
