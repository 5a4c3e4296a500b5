//! Shared pieces of the benchmarks: process memory readings and an emulator in its own process.

use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Peak resident set size of this process so far, in bytes (`VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    status_field("VmHWM:")
}

/// Current resident set size of this process, in bytes (`VmRSS`).
pub fn rss_bytes() -> Option<u64> {
    status_field("VmRSS:")
}

fn status_field(name: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// An `oss-emulator` process (so its memory is not counted in ours), killed on drop.
pub struct EmulatorProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl EmulatorProcess {
    /// Starts the binary at `bin` with a key pair and reads its address.
    pub async fn start(bin: &Path, ak: &str, sk: &str) -> std::io::Result<Self> {
        let mut child = Command::new(bin)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--access-key-id",
                ak,
                "--access-key-secret",
                sk,
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| std::io::Error::other(format!("emulator said {line:?}")))?;
        Ok(Self {
            endpoint: format!("http://{addr}"),
            child,
        })
    }

    /// Stops the process.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// MiB, for printing.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
