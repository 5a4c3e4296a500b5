//! The control endpoints under `/_emulator/` (path-style, no signature checked): health, faults,
//! credentials, stats, uploads in progress and their aging, the journal, and reset.

use super::{full, Reply, State};
use crate::faults::FaultConfig;
use crate::request;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Duration;

/// `POST /_emulator/uploads?age=SECONDS[&prefix=P]`: makes the uploads in progress (under `P`)
/// look `SECONDS` older, for tests of what sweeps stale uploads.
fn age_uploads(state: &State, query: Option<&str>) -> Result<usize, String> {
    let q = request::parse_query(query).map_err(|e| e.message)?;
    let get = |n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let secs: u64 = get("age")
        .and_then(|v| v.parse().ok())
        .ok_or("age=SECONDS is required")?;
    let prefix = get("prefix").unwrap_or_default();
    Ok(state.age_uploads(prefix, Duration::from_secs(secs)))
}

pub(super) async fn admin(state: &State, req: hyper::Request<Incoming>) -> Reply {
    let json = |v: String| {
        Reply::new(StatusCode::OK)
            .header("content-type", "application/json")
            .header("content-length", v.len())
            .body(full(v))
    };
    let bad = |msg: String| {
        Reply::new(StatusCode::BAD_REQUEST)
            .header("content-length", msg.len())
            .body(full(msg))
    };
    let path = req.uri().path().to_owned();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/_emulator/health") => json("{\"ok\":true}".into()),
        (Method::GET, "/_emulator/faults") => {
            json(serde_json::to_string(&state.faults.config()).unwrap_or_default())
        }
        (Method::PUT, "/_emulator/faults") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return bad(format!("unreadable body: {e}")),
            };
            match serde_json::from_slice::<FaultConfig>(&body)
                .map_err(|e| e.to_string())
                .and_then(|c| c.validate().map(|()| c))
            {
                Ok(c) => {
                    state.faults.set(c);
                    Reply::new(StatusCode::NO_CONTENT)
                }
                Err(e) => bad(format!("invalid fault configuration: {e}")),
            }
        }
        (Method::PUT, "/_emulator/credentials") => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return bad(format!("unreadable body: {e}")),
            };
            match crate::auth::parse_credentials(&body) {
                Ok(c) => {
                    state.set_credentials(c);
                    Reply::new(StatusCode::NO_CONTENT)
                }
                Err(e) => bad(format!("invalid credentials: {e}")),
            }
        }
        (Method::GET, "/_emulator/stats") => {
            json(serde_json::to_string(&state.faults.stats()).unwrap_or_default())
        }
        (Method::GET, "/_emulator/uploads") => json(format!(
            "{{\"in_progress\":{}}}",
            state.store().uploads_in_progress()
        )),
        (Method::POST, "/_emulator/uploads") => match age_uploads(state, req.uri().query()) {
            Ok(n) => json(format!("{{\"aged\":{n}}}")),
            Err(e) => bad(e),
        },
        (Method::GET, "/_emulator/journal") => {
            json(serde_json::to_string(state.store().journal()).unwrap_or_default())
        }
        (Method::POST, "/_emulator/reset") => {
            let mut store = state.store();
            store.reset();
            for b in &state.config.buckets {
                store.create_bucket(b);
            }
            drop(store);
            if let Some(dir) = &state.config.data_dir {
                let cleared =
                    std::fs::remove_dir_all(dir).and_then(|()| std::fs::create_dir_all(dir));
                if let Err(e) = cleared {
                    return bad(format!("could not clear the data directory: {e}"));
                }
            }
            state.faults.set(FaultConfig::default());
            state.set_credentials(state.config.credentials.clone());
            Reply::new(StatusCode::NO_CONTENT)
        }
        _ => bad(format!("unknown admin endpoint {path}")),
    }
}
