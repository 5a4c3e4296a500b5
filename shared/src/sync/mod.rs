//! The sync core: one SQS batch of S3 object events in, OSS objects made to match and one outcome
//! record per event out.
//!
//! - [`handler`]: the batch: events parsed, bound to the task, planned, run as jobs under the
//!   invocation's deadline, recorded, and failed messages reported.
//! - [`plan`]: a batch's events grouped by destination key, newest first.
//! - [`decide`]: the pure decisions of a job, as functions of what was read.
//! - [`copy`]: the convergent copy that follows those decisions.
//! - [`metadata`]: S3 metadata mapped to OSS, and the sync marker.
//! - [`resume`]: copies in parts that survive the end of their invocation.
//! - [`recheck`]: a message's events sent again once the deliveries that may still write are over.

pub mod copy;
pub mod decide;
pub mod handler;
pub mod metadata;
pub mod plan;
pub mod recheck;
pub mod resume;
