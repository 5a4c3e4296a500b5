//! Verification: proves that the destination matches the source for the task's prefix, at the
//! cost of listing both sides, and finds what events missed.
//!
//! Events are not a complete record of change (two writes may give one notification, events can
//! be late or lost in an expired DLQ, the bucket's notification configuration can be replaced),
//! so a verification compares the two sides themselves: the S3 listing (ListObjectsV2, or an S3
//! Inventory) and the OSS listing (ListObjectsV2) of the task's prefix, merged in key order
//! ([`join`]), each key mapped as the sync function maps it (`DEST_PREFIX`,
//! `STRIP_SOURCE_PREFIX`, the report area kept out).
//!
//! **The rule.** ListObjectsV2 gives key, size, ETag and LastModified on both sides, and no
//! metadata. A copy made by one PutObject has the same ETag on both sides (the MD5 of the bytes);
//! a copy in parts, or of an S3 object uploaded in parts, has not; every copy carries the sync
//! marker (`x-oss-meta-s3sync-source-etag`, `-meta`: the S3 ETag and a fingerprint of the
//! metadata of the version it copied), which only a HEAD reads. So:
//!
//! - one side only: `missing` or `extra`; sizes differ: `size_differs` (no request);
//! - equal MD5 ETags, and the OSS object written after S3's `LastModified` (by more than the
//!   clock tolerance): `equal` (no request). The bytes are the same, and the copy was written
//!   after the S3 version it holds was, so it carries that version's metadata. A change of
//!   metadata alone (S3's copy onto itself) keeps the ETag but moves `LastModified`, so it fails
//!   this test;
//! - otherwise the OSS HEAD (its marker), plus the S3 HEAD (its metadata) when OSS is not later
//!   than S3: `equal` when the ETags or the marker tie the bytes to S3's ETag and, when S3 was
//!   asked, the marker's fingerprint is S3's metadata's; else `may_differ` with the reason.
//!
//! HEADs are made only for the keys the listing cannot settle, and counted. The listing is read in
//! pages as the join consumes it, several key ranges at once ([`ranges`]), and differences are
//! spilled to temporary files, so memory does not grow with the number of keys.
//!
//! The rooms: [`join`] (the pure join and rule), [`ranges`] (key ranges), [`run`] (the runner,
//! its I/O behind [`run::Sides`]), [`stores`] (S3 and OSS), [`report`] (the verification report
//! in the report area, manifest last), [`repair`] (its differences as events, for `ctl verify
//! --repair`).

pub mod join;
pub mod metrics;
pub mod ranges;
pub mod repair;
pub mod report;
pub mod run;
pub mod stores;
