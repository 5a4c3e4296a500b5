//! s3-oss-sync: keeps an Alibaba Cloud OSS bucket in step with an AWS S3 bucket.
//!
//! This crate holds the logic; the Lambda functions under `functions/` are thin entry points.

#![warn(missing_docs)]

pub mod budget;
pub mod checksum;
pub mod config;
pub mod control;
pub mod copy;
pub mod decide;
pub mod destination;
pub mod event;
pub mod memory;
pub mod metadata;
pub mod oss;
pub mod outcome;
pub mod plan;
pub mod poll;
pub mod recheck;
pub mod report;
pub mod results;
pub mod resume;
pub mod retry;
pub mod setup;
pub mod source;
pub mod sweep;
pub mod sync;
pub mod task;
pub mod telemetry;
pub mod verify;
