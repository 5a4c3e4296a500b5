//! s3-oss-sync: keeps an Alibaba Cloud OSS bucket in step with an AWS S3 bucket.
//!
//! This crate holds the logic; the Lambda functions under `functions/` are thin entry points.
//! The layers, and which may import which, are in `docs/ARCHITECTURE.md`:
//!
//! - L0 foundation: [`retry`], [`checksum`], [`budget`], [`errors`], and the OSS protocol's leaves
//!   ([`oss::error`], [`oss::signing`], [`oss::endpoint`], [`oss::limits`]);
//! - L1 domain: [`event`], [`task`], [`outcome`], [`telemetry`]'s lines, and the ports with their
//!   types, [`store`];
//! - L2 cores: [`sync`], [`report`], [`verify`];
//! - L3 adapters: [`aws`] (S3, SQS, Lambda), [`oss`] (the destination), and the cores' own adapter
//!   files (`report::stores`, `report::watch`, `verify::stores`);
//! - L4 application and wiring: [`config`], [`setup`], [`sweep`], `control` (the `ctl` command's
//!   logic, with the `control` feature) and `testing` (test doubles, with `test-util`).

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
