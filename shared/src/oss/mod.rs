//! Alibaba Cloud OSS: request signing and the pieces of the REST API the product speaks.

pub mod signing;
