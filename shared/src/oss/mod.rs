//! Alibaba Cloud OSS: request signing, endpoints, errors, and the client the product writes with.

pub mod abandoned;
pub mod client;
pub mod credentials;
pub mod destination;
pub mod endpoint;
pub mod error;
pub mod limits;
pub mod multipart_list;
pub mod object;
pub mod signing;
pub mod upload;
pub mod xml;

pub use client::{OssClient, OssConfig};
pub use credentials::{CredentialRefresh, RefreshCredentials, RefreshError};
pub use endpoint::{Addressing, Endpoint, Network};
pub use error::{Error, ServiceError};
pub use multipart_list::{MultipartUpload, UploadsPage};
