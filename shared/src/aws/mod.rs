//! The AWS adapters: S3 as the source, the results bucket and the bucket lister; SQS as the task
//! queue and the local event source; Lambda's event source mapping; Secrets Manager. Everything
//! here speaks to an AWS SDK client and maps its answers to the ports' types ([`crate::store`]).

pub mod error;
pub mod lambda_mapping;
#[cfg(feature = "control")]
pub mod s3_inventory;
pub mod s3_lister;
pub mod s3_results;
pub mod s3_source;
pub mod secrets;
pub mod sqs;
pub mod sqs_poll;
pub mod sqs_rechecks;
#[cfg(feature = "control")]
pub mod sqs_redrive;
