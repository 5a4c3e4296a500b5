//! A local Alibaba Cloud OSS emulator for tests and the demo.
//!
//! It speaks the part of the OSS REST API that s3-oss-sync uses, the way OSS does: V4 signatures
//! checked exactly, OSS error documents, ETags and CRC-64 as OSS returns them, and the limits
//! that bite real users. Faults can be injected per run. Use it in-process with
//! [`Emulator::start`], or as the `oss-emulator` binary.

pub mod auth;
pub mod authorization;
pub mod error;
pub mod faults;
pub mod request;
pub mod server;
pub mod store;
pub mod xml;

pub use faults::FaultConfig;
pub use server::Config;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3_oss_sync::oss::signing::Credentials;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running emulator. Dropping it stops accepting connections.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<server::State>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Binds `listen` (use `127.0.0.1:0` for a free port) and serves in the background.
    pub async fn start(config: Config, listen: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(server::State::new(config)?);
        let (stop, mut stopped) = watch::channel(false);
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    c = listener.accept() => c,
                    _ = stopped.changed() => break,
                };
                let Ok((tcp, _)) = conn else { continue };
                // As servers do: without it a response written in two parts waits for the
                // client's delayed ACK (40 ms on Linux).
                let _ = tcp.set_nodelay(true);
                let state = served.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| server::handle(state.clone(), req));
                    // A failed connection (client gone, injected reset) ends only that connection.
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .http1_only()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, for path-style clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the fault configuration.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.state.faults.set(faults);
    }

    /// Replaces the accepted credentials at once (as `PUT /_emulator/credentials` does): a key
    /// rotated under a client.
    pub fn set_credentials(&self, credentials: Vec<Credentials>) {
        self.state.set_credentials(credentials);
    }

    /// Counts of requests and injected faults so far.
    pub fn fault_stats(&self) -> faults::FaultStats {
        self.state.faults.stats()
    }

    /// Makes the multipart uploads in progress under `prefix` look `by` older (as
    /// `POST /_emulator/uploads?age=SECONDS&prefix=P` does); returns how many.
    pub fn age_uploads(&self, prefix: &str, by: std::time::Duration) -> usize {
        self.state.age_uploads(prefix, by)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
