//! s3-oss-sync: keeps an Alibaba Cloud OSS bucket in step with an AWS S3 bucket.
//!
//! This crate holds the logic; the Lambda functions under `functions/` are thin entry points.
//! The layers, and which may import which, are in `docs/ARCHITECTURE.md`:
//!
//! - foundation: [`retry`], [`checksum`], [`budget`], [`errors`];
//! - domain: [`event`], [`task`], [`outcome`], and the ports with their types, [`store`];
//! - adapters: [`oss`] (the destination, and the OSS protocol), [`aws`] (S3, SQS, Lambda);
//! - cores: [`sync`], [`report`], [`sweep`], [`verify`], and `control` (the `ctl` command's logic,
//!   with the `control` feature);
//! - wiring: [`config`], [`setup`], [`telemetry`].

pub mod aws;
pub mod budget;
pub mod checksum;
pub mod config;
#[cfg(feature = "control")]
pub mod control;
pub mod errors;
pub mod event;
pub mod oss;
pub mod outcome;
pub mod report;
pub mod retry;
pub mod setup;
pub mod store;
pub mod sweep;
pub mod sync;
pub mod task;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod verify;
