//! The ports: what the cores need from the stores they read and write, as small traits, and the
//! domain types those traits speak (objects, metadata, bodies, uploads). The real implementations
//! are adapters: S3 in [`crate::aws`], OSS in [`crate::oss`]; in-memory doubles in
//! `crate::testing` (tests and the `test-util` feature).
//!
//! A store's errors: the source's and the results bucket's are [`source::SourceError`]; the
//! destination's are OSS's own ([`crate::oss::error::Error`], a leaf module of the OSS protocol),
//! as the destination of this product is OSS by definition.

pub mod checkpoints;
pub mod destination;
pub mod error;
pub mod listing;
pub mod object;
pub mod queue;
pub mod results;
pub mod source;
pub mod upload;
