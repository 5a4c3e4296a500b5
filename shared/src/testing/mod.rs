//! Test doubles: in-memory stores with the same traits as S3 and OSS, for component tests of the
//! cores, the examples and the benchmarks. Built only for tests or with the `test-util` feature.

pub mod hooked;
pub mod memory;
pub mod report;
pub mod service;
pub mod verify;
