//! The sync function: SQS messages carrying S3 object events in, OSS objects and outcomes out.
//!
//! Not built yet. Until it is, the binary refuses to run rather than pretend to copy anything.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("sync: the sync function is not built yet; no event was read and nothing was copied");
    ExitCode::FAILURE
}
