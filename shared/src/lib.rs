//! s3-oss-sync: keeps an Alibaba Cloud OSS bucket in step with an AWS S3 bucket.
//!
//! This crate holds the logic; the Lambda functions under `functions/` are thin entry points.

#![warn(missing_docs)]

pub mod checksum;
pub mod destination;
pub mod oss;
pub mod retry;
