//! Cold start: the sync binary started the way Lambda starts a bootstrap, against a local Lambda
//! runtime API served here, timed from process start to its first `GET .../invocation/next`
//! ("ready"), then through a first (cold) and a second (warm) event. The same local server stands
//! in for SQS (SendMessageBatch and DeleteMessageBatch only, always accepted): every write is
//! preceded by its recheck on the task queue, and nothing else here serves SQS.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::Notify;

/// What the runtime API saw, in order.
#[derive(Default)]
struct Seen {
    events: VecDeque<String>,
    marks: Vec<(&'static str, Instant, String)>,
}

struct Api {
    seen: Mutex<Seen>,
    changed: Notify,
    /// Messages sent to the stand-in SQS queue (rechecks).
    sqs_sent: std::sync::atomic::AtomicUsize,
}

impl Api {
    fn mark(&self, what: &'static str, body: String) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .marks
            .push((what, Instant::now(), body));
        self.changed.notify_waiters();
    }
}

/// The stand-in SQS (JSON protocol): every entry of a SendMessageBatch or DeleteMessageBatch
/// succeeds; any other action is refused.
fn sqs(api: &Api, target: &str, body: &[u8]) -> Result<Response<Full<Bytes>>, String> {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let ids: Vec<Value> = request["Entries"]
        .as_array()
        .map(|e| e.iter().map(|x| x["Id"].clone()).collect())
        .unwrap_or_default();
    let (status, answer) = match target {
        "AmazonSQS.SendMessageBatch" => {
            let n = api
                .sqs_sent
                .fetch_add(ids.len(), std::sync::atomic::Ordering::Relaxed);
            let ok: Vec<Value> = ids
                .into_iter()
                .enumerate()
                .map(|(i, id)| {
                    json!({"Id": id, "MessageId": format!("bench-{}", n + i), "MD5OfMessageBody": ""})
                })
                .collect();
            (StatusCode::OK, json!({"Successful": ok, "Failed": []}))
        }
        "AmazonSQS.DeleteMessageBatch" => {
            let ok: Vec<Value> = ids.into_iter().map(|id| json!({ "Id": id })).collect();
            (StatusCode::OK, json!({"Successful": ok, "Failed": []}))
        }
        other => (
            StatusCode::BAD_REQUEST,
            json!({"__type": "InvalidAction", "message": format!("{other} is not served here")}),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(answer.to_string())))
        .map_err(|e| e.to_string())
}

async fn serve(api: Arc<Api>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
    let path = req.uri().path().to_owned();
    if let Some(target) = req.headers().get("x-amz-target") {
        let target = target.to_str().unwrap_or_default().to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return sqs(&api, &target, &body);
    }
    let reply = |status: StatusCode| {
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())
    };
    if path == "/2018-06-01/runtime/invocation/next" {
        api.mark("next", String::new());
        let next = api
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .pop_front();
        let Some(event) = next else {
            // No more events: the function waits here, as it would between invocations.
            std::future::pending::<()>().await;
            unreachable!()
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            + 300_000;
        return Response::builder()
            .header("lambda-runtime-aws-request-id", format!("bench-{deadline}"))
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:sync-bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(Bytes::from(event)))
            .map_err(|e| e.to_string());
    }
    let what = if path.ends_with("/response") {
        "response"
    } else {
        "error"
    };
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    api.mark(what, body);
    reply(StatusCode::ACCEPTED)
}

/// One start of the binary: (ready, first event, second event) durations, peak RSS in bytes and
/// the messages it sent to SQS.
async fn one_run(
    binary: &Path,
    events: &[String],
    dest_prefix: &str,
) -> Result<(Duration, Duration, Duration, u64, usize), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let api = Arc::new(Api {
        seen: Mutex::new(Seen {
            events: events.iter().cloned().collect(),
            marks: Vec::new(),
        }),
        changed: Notify::new(),
        sqs_sent: Default::default(),
    });
    let server = {
        let api = api.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let api = api.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| serve(api.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        })
    };
    let start = Instant::now();
    let mut child = Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "sync-bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/sync-bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("DEST_PREFIX", dest_prefix)
        .env("AWS_ENDPOINT_URL_SQS", format!("http://{addr}"))
        .env(
            "SYNC_QUEUE_URL",
            format!("http://{addr}/123456789012/sync-bench"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let wanted = events.len() + 1;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let marks = loop {
        let notified = api.changed.notified();
        {
            let seen = api.seen.lock().unwrap_or_else(|p| p.into_inner());
            let nexts = seen.marks.iter().filter(|m| m.0 == "next").count();
            if nexts >= wanted || seen.marks.iter().any(|m| m.0 == "error") {
                break seen.marks.clone();
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            break api
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .marks
                .clone();
        }
    };
    let peak = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0)
        * 1024;
    let _ = child.kill().await;
    server.abort();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut stderr).await;
    }
    let at = |what: &str, n: usize| marks.iter().filter(|m| m.0 == what).nth(n).map(|m| m.1);
    for (what, _, body) in &marks {
        if *what == "error" || (*what == "response" && !body.contains("\"batchItemFailures\":[]")) {
            return Err(format!("the function answered {what}: {body}; its log: {stderr}").into());
        }
    }
    match (
        at("next", 0),
        at("response", 0),
        at("next", 1),
        at("response", 1),
    ) {
        (Some(n0), Some(r0), Some(n1), Some(r1)) => Ok((
            n0 - start,
            r0 - n0,
            r1 - n1,
            peak,
            api.sqs_sent.load(std::sync::atomic::Ordering::Relaxed),
        )),
        _ => Err(format!("the function did not get through two events; its log: {stderr}").into()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Starts `binary` `runs` times; each start gets the two events `event` makes of `objects`,
/// copied to a fresh destination prefix. Reports medians (ms), the peak RSS and the binary's size.
pub async fn run<T>(
    binary: &Path,
    objects: &[T],
    runs: usize,
    event: impl Fn(&T) -> String,
) -> Result<Value, Box<dyn std::error::Error>> {
    let events: Vec<String> = objects.iter().map(event).collect();
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let (mut ready, mut first, mut second, mut peak) = (vec![], vec![], vec![], 0u64);
    let mut sqs_sent = 0;
    for i in 0..runs.max(1) {
        let (r, f, s, p, q) = one_run(binary, &events, &format!("cold-{nonce}-{i}/")).await?;
        sqs_sent = sqs_sent.max(q);
        ready.push(r.as_secs_f64() * 1000.0);
        first.push(f.as_secs_f64() * 1000.0);
        second.push(s.as_secs_f64() * 1000.0);
        peak = peak.max(p);
    }
    Ok(json!({
        "step": "cold-start",
        "runs": runs,
        "ready_ms": crate::round(median(ready.clone()), 1),
        "ready_ms_all": ready.iter().map(|x| crate::round(*x, 1)).collect::<Vec<_>>(),
        "first_event_ms": crate::round(median(first), 1),
        "second_event_ms": crate::round(median(second), 1),
        "peak_rss_mib": crate::round(crate::mib(peak), 1),
        "sqs_messages_per_start": sqs_sent,
        "binary_bytes": std::fs::metadata(binary)?.len(),
    }))
}
