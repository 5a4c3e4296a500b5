//! A deterministic simulation of the sync protocol: in-memory S3, OSS, results store and SQS,
//! users and an operator writing, invocations interleaved at every await point by a seeded
//! executor, faults and kills; then the checks that the destination converged.

pub mod exec;
pub mod rng;
pub mod schedule;
pub mod sqs;
pub mod stores;
pub mod users;
pub mod world;
