//! The report function: merges outcomes into the daily report and writes `manifest.json` last.
//!
//! Not built yet. Until it is, the binary refuses to run rather than pretend to write a report.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("report: the report function is not built yet; no report was written");
    ExitCode::FAILURE
}
