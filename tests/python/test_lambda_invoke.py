"""The sync function under cargo-lambda's Lambda runtime emulator (`cargo lambda watch`), invoked
with the sample events in `events/` (`cargo lambda invoke --data-file`), as docs/emulator.md shows.

The emulator runs with `--only-lambda-apis` and the function is the debug `sync` binary `make
test` built, started with the environment `cargo lambda watch` gives the functions it starts
itself. Left to start it, `cargo lambda watch` runs `cargo run --bin sync`, which resolves the
features of `sync` alone and so builds the whole dependency tree a second time."""

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import alibabacloud_oss_v2 as oss

from conftest import oss_client
from stack import ROOT, VENV_BIN, Process, SyncTask, binary, free_port, local_env, log_path

CARGO_LAMBDA = str(VENV_BIN / "cargo-lambda")


def invoke(port: int, data_file: Path, env: dict, function: Process) -> dict:
    deadline = time.time() + 300  # the first invocation waits for the function to start
    while True:
        p = subprocess.Popen([CARGO_LAMBDA, "lambda", "invoke", "sync", "--invoke-address", "127.0.0.1",
                              "--invoke-port", str(port), "--data-file", str(data_file), "--output-format", "json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            # The invocation waits until the function takes it: a function that died fails it at once.
            until = time.time() + 400
            while p.poll() is None:
                if function.proc.poll() is not None:
                    raise AssertionError(f"the function exited ({function.proc.returncode}); see {function.log.name}")
                if time.time() > until:
                    raise subprocess.TimeoutExpired(p.args, 400)
                time.sleep(0.1)
            out, err = p.communicate()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        if p.returncode == 0:
            return json.loads(out)
        if time.time() > deadline:
            raise AssertionError(f"cargo lambda invoke failed: {out}\n{err}")
        time.sleep(1)


def test_sample_events_through_the_lambda_runtime(moto, emulator):
    task = SyncTask(moto, emulator, source="demo-source", DEST_PREFIX="mirror/", SYNC_DELETES="true")
    photo = b"\xff\xd8\xff" + b"\x00" * 2048
    task.s3.put_object(Bucket="demo-source", Key="photos/2026/summer holiday.jpg", Body=photo,
                       ContentType="image/jpeg")
    port = free_port()
    env = task.env()
    # Where a write leaves its recheck (the sample events' queue ARN is not moto's).
    env["SYNC_QUEUE_URL"] = task.queue_url
    env["PATH"] = f"{Path(CARGO_LAMBDA).parent}{os.pathsep}{env.get('PATH', '')}"
    watch = Process("cargo-lambda-watch", [CARGO_LAMBDA, "lambda", "watch", "--only-lambda-apis", "--ignore-changes",
                                           "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
                    log_path("cargo-lambda-watch"), pipe_stdout=False)
    # The function's environment, as `cargo lambda watch --env-var K=V ...` would start it: its
    # own, the task's settings, then the Lambda variables it sets (the runtime API of the function
    # named `sync`, where `cargo lambda invoke sync` queues the events).
    function_env = local_env()
    function_env["RUST_LOG"] = os.environ.get("RUST_LOG", "")
    for k in ("TASK_ID", "SOURCE_BUCKET", "DEST_BUCKET", "DEST_PREFIX", "RESULTS_BUCKET", "AWS_ENDPOINT_URL",
              "OSS_ENDPOINT", "OSS_ALLOW_HTTP", "OSS_REGION", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET",
              "SYNC_DELETES", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
              "SYNC_QUEUE_URL"):
        function_env[k] = env[k]
    function_env.update(AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="4096",
                        AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{port}/.rt/sync", AWS_LAMBDA_FUNCTION_NAME="sync")
    function = None
    try:
        # The function's first request goes to the runtime API at once: start it once that listens.
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert watch.proc.poll() is None, f"cargo lambda watch exited; see {watch.log.name}"
                assert time.time() < deadline, f"cargo lambda watch is not listening; see {watch.log.name}"
                time.sleep(0.1)
        function = Process("sync-lambda", [str(binary("sync"))], log_path("sync-lambda"), pipe_stdout=False,
                           env=function_env)
        put = invoke(port, ROOT / "events" / "sqs-s3-put.json", env, function)
        assert put == {"batchItemFailures": []}
        mixed = invoke(port, ROOT / "events" / "sqs-mixed.json", env, function)
        # Only the body that is not an S3 event is reported failed (it goes to the DLQ in time).
        assert mixed == {"batchItemFailures": [{"itemIdentifier": "00000000-0000-4000-8000-000000000005"}]}
    finally:
        if function is not None:
            function.stop()
        watch.stop()
    # The copy is in OSS, and each invocation wrote its records to the results store.
    r = oss_client(emulator.endpoint).get_object(
        oss.GetObjectRequest(bucket=task.dest, key="mirror/photos/2026/summer holiday.jpg"))
    assert r.body.read() == photo and r.content_type == "image/jpeg"
    outcomes = sorted(rec["outcome"] for rec in task.records())
    assert outcomes == ["copied", "filtered", "ignored", "invalid", "skipped", "skipped"], outcomes
    assert task.s3.list_objects_v2(Bucket=task.results)["KeyCount"] == 2
    # The copy left its recheck on the queue first, delayed past the function's timeout (the
    # queue's visible messages are moto's own notifications of the put, which nothing polls here).
    delayed = task.sqs.get_queue_attributes(QueueUrl=task.queue_url, AttributeNames=[
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]["ApproximateNumberOfMessagesDelayed"]
    assert delayed == "1"
