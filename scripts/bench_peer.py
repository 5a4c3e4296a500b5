"""Peer benchmark: s3-oss-sync's `sync poll` against a typical Python copier
(`scripts/peer_copier.py`: boto3 `get_object`, the official OSS SDK's `put_object`, message by
message), one process each, on the same events and the same servers: s3s-fs (the S3 server the
other benchmarks use) for the source and results buckets, an SQS stand-in
(`tests/bench/sqs_standin.py`: SQS's JSON protocol with its visibility timeouts, delays, receive
counts and long polls) for the queue, and the OSS emulator, whose every answer waits 0, 20 or
100 ms (a stand-in for the distance between an AWS region and an OSS region). Reports, asserts
nothing.

Why not moto, which the tests use: on this machine moto's S3 serves a request in about 13 ms and
its ReceiveMessage takes about 250 ms with a few hundred messages queued (one core, Python), so
with it both copiers measure moto (BENCHMARKS.md gives those figures too). s3s-fs and the
stand-in answer in about a millisecond, as S3 and SQS do within a region at these sizes.

The events are S3 notifications (the shape S3 and moto send) of OBJECTS objects of SIZE bytes,
sent to the task queue before each run; the destination is emptied between runs.
Runs alternate (Python, then `sync poll` with its defaults, then `sync poll --batches 1`) at each
latency, ROUNDS times, and the medians are reported, so a noisy machine slows both sides alike.
Time: from the copier's start to its last copy landed (each side reports it: the Python copier
itself, `sync poll` by its outcome lines), so neither side's way of noticing an empty queue
counts. The write-ahead rechecks `sync poll` leaves come back after the copies (their delay is the
invocation timeout plus 2 s) and are timed separately, to the queue drained.

Run alone with `.venv/bin/python scripts/bench_peer.py` (release `sync` and `oss-emulator`);
`make bench` runs it as its `peer` section.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import tempfile
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

import stack  # noqa: E402
from stack import OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET, OSS_REGION, STACK_DIR, OssEmulator  # noqa: E402

AK, SK = "bench-access-key", "bench-secret-key-0123456789"

OBJECTS, SIZE = 300, 4096
LATENCIES_MS = (0, 20, 100)
ROUNDS = 3
INVOCATION_TIMEOUT_S = 5


def release(name: str) -> str:
    path = ROOT / "target" / "release" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: cargo build --release -p {name}")
    return str(path)


def serve(argv: list[str], name: str) -> tuple[subprocess.Popen, str]:
    """Starts a server that prints `listening on HOST:PORT` first: the process and its URL."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"{name} said {line!r}")
    return proc, "http://" + line.removeprefix("listening on ")


class S3Source:
    """s3s-fs on a temporary directory, with the buckets `src` and `results`."""

    def __init__(self, root: Path):
        for bucket in ("src", "results"):
            (root / bucket).mkdir(parents=True)
        self.root = root
        self.proc, self.endpoint = serve([release("s3-source"), "--access-key", AK, "--secret-key", SK, str(root)],
                                         "s3-source")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def seed_events(s3: S3Source) -> list[str]:
    """Writes the objects into the source bucket and returns one S3 notification per object."""
    bodies = []
    for i in range(OBJECTS):
        key = f"small/{i:05d}.bin"
        data = os.urandom(SIZE)
        path = s3.root / "src" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        bodies.append(json.dumps({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "src", "arn": "arn:aws:s3:::src"},
                   "object": {"key": key, "size": SIZE, "eTag": hashlib.md5(data).hexdigest()}}}]}))
    return bodies


def environment(queue: Queue, s3: S3Source, emulator: OssEmulator) -> dict:
    """Both copiers' settings (the sync function's variables; the Python copier reads the ones it
    needs)."""
    env = stack.local_env()
    env.update(TASK_ID="task-1", SOURCE_BUCKET="src", DEST_BUCKET="dst-bucket", RESULTS_BUCKET="results",
               TASK_QUEUE_URL=queue.url, AWS_ENDPOINT_URL_S3=s3.endpoint, AWS_ENDPOINT_URL_SQS=queue.endpoint,
               S3_PATH_STYLE="true", AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK,
               OSS_ENDPOINT=emulator.endpoint, OSS_ALLOW_HTTP="true", OSS_REGION=OSS_REGION,
               OSS_ACCESS_KEY_ID=OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET=OSS_ACCESS_KEY_SECRET, RUST_LOG="warn")
    return env


class Queue:
    """The SQS stand-in with one task queue."""

    def __init__(self):
        self.proc, self.endpoint = serve([sys.executable, str(ROOT / "tests" / "bench" / "sqs_standin.py")],
                                         "sqs_standin")
        import boto3

        self.sqs = boto3.session.Session(aws_access_key_id=AK, aws_secret_access_key=SK,
                                         region_name="us-east-1").client("sqs", endpoint_url=self.endpoint)
        self.url = self.sqs.create_queue(QueueName="task-1", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]

    def pending(self) -> int:
        a = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(v) for v in a.values())

    def wait_empty(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while self.pending():
            if time.time() > deadline:
                raise RuntimeError(f"the queue still holds {self.pending()} messages after {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def load(task: Queue, bodies: list[str]) -> None:
    for i in range(0, len(bodies), 10):
        task.sqs.send_message_batch(QueueUrl=task.url, Entries=[
            {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i:i + 10])])


def fresh(task: Queue, emulator: OssEmulator, latency_ms: int) -> int:
    """An empty destination and an empty queue, the latency set; the emulator's request count."""
    task.wait_empty(timeout=120)
    emulator.reset()
    emulator.control("faults", {"latency_ms": latency_ms})
    return emulator.control("stats")["requests"]


def python_run(task: Queue, emulator: OssEmulator, env: dict, bodies: list[str], latency_ms: int) -> dict:
    oss0 = fresh(task, emulator, latency_ms)
    load(task, bodies)
    p = subprocess.run([sys.executable, str(ROOT / "scripts" / "peer_copier.py")], env=env,
                       capture_output=True, text=True, timeout=900, check=True)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    oss = emulator.control("stats")["requests"] - oss0
    if out["copied"] != OBJECTS:
        raise RuntimeError(f"the Python copier copied {out['copied']} of {OBJECTS}")
    secs = out["seconds_to_last_copy"]
    return {"side": "python", "latency_ms": latency_ms, "seconds": secs,
            "objects_per_sec": round(OBJECTS / secs, 1), "oss_requests_per_object": round(oss / OBJECTS, 2)}


def sync_run(task: Queue, emulator: OssEmulator, env: dict, bodies: list[str], latency_ms: int,
             batches: int | None) -> dict:
    oss0 = fresh(task, emulator, latency_ms)
    load(task, bodies)
    args = [release("sync"), "poll", "--queue-url", task.url, "--until-empty", "--batch-size", "10",
            "--max-seconds", "600", "--invocation-timeout", str(INVOCATION_TIMEOUT_S)]
    args += ["--batches", str(batches or 5)]
    copied: list[dict] = []
    rechecks: list[dict] = []
    done = threading.Event()
    started = time.monotonic()
    last_copy = [0.0]
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def read() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            if not line.startswith("{"):
                continue
            rec = json.loads(line)
            if rec.get("message") != "outcome":
                continue
            if rec.get("recheck_of"):
                rechecks.append(rec)
            elif rec.get("outcome") == "copied":
                copied.append(rec)
                last_copy[0] = time.monotonic() - started
                if len(copied) == OBJECTS:
                    done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    rc = p.wait(timeout=900)
    drained = time.monotonic() - started
    reader.join(timeout=30)
    oss = emulator.control("stats")["requests"] - oss0
    if rc != 0 or len(copied) != OBJECTS:
        raise RuntimeError(f"sync poll exited {rc} with {len(copied)} of {OBJECTS} copied")
    secs = last_copy[0]
    job_requests = sum(r.get("requests", 0) for r in copied)
    recheck_requests = sum(r.get("requests", 0) for r in rechecks)
    return {"side": "sync" if batches is None else f"sync-batches-{batches}", "latency_ms": latency_ms,
            "seconds": round(secs, 3), "objects_per_sec": round(OBJECTS / secs, 1),
            "drained_seconds": round(drained, 2), "rechecks": len(rechecks),
            "requests_per_copy": round(job_requests / OBJECTS, 2),
            "requests_per_recheck": round(recheck_requests / max(1, len(rechecks)), 2),
            "oss_requests_per_object": round(oss / OBJECTS, 2),
            "recheck_outcomes": sorted({r["outcome"] for r in rechecks})}


def measure() -> dict:
    stack.emulator_binary = lambda: Path(release("oss-emulator"))
    data = Path(tempfile.mkdtemp(prefix="s3-oss-sync-peer-"))
    emulator, s3, task = OssEmulator(), S3Source(data), Queue()
    runs: list[dict] = []
    try:
        bodies = seed_events(s3)
        env = environment(task, s3, emulator)
        for _ in range(ROUNDS):
            for latency in LATENCIES_MS:
                for run in (lambda: python_run(task, emulator, env, bodies, latency),
                            lambda: sync_run(task, emulator, env, bodies, latency, None),
                            lambda: sync_run(task, emulator, env, bodies, latency, 1)):
                    r = run()
                    print(json.dumps(r), file=sys.stderr, flush=True)
                    runs.append(r)
        emulator.control("faults", {"latency_ms": 0})
    finally:
        task.stop()
        s3.stop()
        emulator.stop()
        shutil.rmtree(data, ignore_errors=True)
    rows = []
    for latency in LATENCIES_MS:
        def med(side: str, field: str) -> float:
            return statistics.median(r[field] for r in runs if r["side"] == side and r["latency_ms"] == latency)

        def first(side: str) -> dict:
            return next(r for r in runs if r["side"] == side and r["latency_ms"] == latency)

        py, rs, one = (med(s, "objects_per_sec") for s in ("python", "sync", "sync-batches-1"))
        rows.append({"latency_ms": latency, "python": py, "sync": rs, "sync_batches_1": one,
                     "ratio": round(rs / py, 1), "ratio_batches_1": round(one / py, 1),
                     "drained_seconds": med("sync", "drained_seconds"),
                     "requests_per_copy": first("sync")["requests_per_copy"],
                     "requests_per_recheck": first("sync")["requests_per_recheck"],
                     "oss_requests_per_object": first("sync")["oss_requests_per_object"],
                     "python_oss_requests_per_object": first("python")["oss_requests_per_object"],
                     "recheck_outcomes": first("sync")["recheck_outcomes"]})
    return {"objects": OBJECTS, "size": SIZE, "rounds": ROUNDS, "invocation_timeout_s": INVOCATION_TIMEOUT_S,
            "rows": rows, "runs": runs, "cores": os.cpu_count()}


if __name__ == "__main__":
    STACK_DIR.mkdir(exist_ok=True)
    print(json.dumps(measure()))
