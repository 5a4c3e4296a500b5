"""The sync function under cargo-lambda's Lambda runtime emulator (`cargo lambda watch`), invoked
with the sample events in `events/` (`cargo lambda invoke --data-file`), as docs/emulator.md shows."""

import json
import os
import subprocess
import time
from pathlib import Path

import alibabacloud_oss_v2 as oss

from conftest import oss_client
from stack import ROOT, STACK_DIR, VENV_BIN, Process, SyncTask, free_port

CARGO_LAMBDA = str(VENV_BIN / "cargo-lambda")


def invoke(port: int, data_file: Path, env: dict) -> dict:
    deadline = time.time() + 300  # the first invocation waits for the build
    while True:
        p = subprocess.run([CARGO_LAMBDA, "lambda", "invoke", "sync", "--invoke-address", "127.0.0.1",
                            "--invoke-port", str(port), "--data-file", str(data_file), "--output-format", "json"],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=400)
        if p.returncode == 0:
            return json.loads(p.stdout)
        if time.time() > deadline:
            raise AssertionError(f"cargo lambda invoke failed: {p.stdout}\n{p.stderr}")
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
    args = [CARGO_LAMBDA, "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
            "--ignore-changes"]
    for k in ("TASK_ID", "SOURCE_BUCKET", "DEST_BUCKET", "DEST_PREFIX", "RESULTS_BUCKET", "AWS_ENDPOINT_URL",
              "OSS_ENDPOINT", "OSS_ALLOW_HTTP", "OSS_REGION", "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET",
              "SYNC_DELETES", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
              "SYNC_QUEUE_URL"):
        args += ["--env-var", f"{k}={env[k]}"]
    watch = Process("cargo-lambda-watch", args, STACK_DIR / "cargo-lambda-watch.log", pipe_stdout=False)
    try:
        put = invoke(port, ROOT / "events" / "sqs-s3-put.json", env)
        assert put == {"batchItemFailures": []}
        mixed = invoke(port, ROOT / "events" / "sqs-mixed.json", env)
        # Only the body that is not an S3 event is reported failed (it goes to the DLQ in time).
        assert mixed == {"batchItemFailures": [{"itemIdentifier": "00000000-0000-4000-8000-000000000005"}]}
    finally:
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
