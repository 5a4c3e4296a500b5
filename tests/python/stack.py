"""The local stack: moto (S3 + SQS) and the OSS emulator on 127.0.0.1, free ports, stopped by PID.

Used by the Python tests and by `make demo`. Every process started here records its PID under
`.stack/` so that `make stop` (and CI's exit trap) can stop anything a crashed run left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STACK_DIR = ROOT / ".stack"
VENV_BIN = Path(sys.executable).parent
# Under pytest-xdist every worker runs its own stack: its logs go to `.stack/<worker>/`, so that
# workers never write (or read back) each other's. The PID files stay in `.stack/` (their names
# carry the PID), where `make stop` finds them.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
LOG_DIR = STACK_DIR / WORKER if WORKER else STACK_DIR

# Local-only credentials: moto accepts anything, the emulator accepts exactly these.
AWS_REGION = "us-east-1"
OSS_ACCESS_KEY_ID = "local-oss-ak"
OSS_ACCESS_KEY_SECRET = "local-oss-secret"
OSS_REGION = "cn-hangzhou"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_env() -> dict:
    """The environment for clients of the local stack (no CA bundle: endpoints are plain http)."""
    env = dict(os.environ)
    env.pop("AWS_CA_BUNDLE", None)
    env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_DEFAULT_REGION=AWS_REGION)
    return env


_opened: dict[str, int] = {}


def log_path(name: str) -> Path:
    """`LOG_DIR/NAME.log` for this process's first NAME, then `NAME-2.log`, ...: a second
    emulator started by a test does not write over the session's."""
    _opened[name] = n = _opened.get(name, 0) + 1
    return LOG_DIR / (f"{name}.log" if n == 1 else f"{name}-{n}.log")


class Process:
    """A child process whose PID is kept in `.stack/NAME.pid` while it runs."""

    def __init__(self, name: str, argv: list[str], log: Path, pipe_stdout: bool = True, env: dict | None = None):
        STACK_DIR.mkdir(exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = open(log, "w")
        stdout = subprocess.PIPE if pipe_stdout else self.log
        self.proc = subprocess.Popen(argv, stdout=stdout, stderr=self.log, text=True,
                                     env=local_env() if env is None else env, start_new_session=True)
        self.pidfile = STACK_DIR / f"{name}-{self.proc.pid}.pid"
        self.pidfile.write_text(str(self.proc.pid))

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.pidfile.unlink(missing_ok=True)
        self.log.close()


class Moto:
    """moto's server: real S3 and SQS APIs, and real S3 -> SQS notifications."""

    def __init__(self):
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        # moto_server, with its whole-object reads kept (moto_server.py says why).
        self.process = Process("moto", [str(VENV_BIN / "python"), str(Path(__file__).with_name("moto_server.py")),
                                        "-H", "127.0.0.1", "-p", str(port)], log_path("moto"))
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if self.process.proc.poll() is not None or time.time() > deadline:
                    self.process.stop()
                    raise RuntimeError(f"moto did not start; see {self.process.log.name}")
                time.sleep(0.1)

    def reset(self):
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def client(self, service: str):
        import boto3

        return boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local",
                                     region_name=AWS_REGION).client(service, endpoint_url=self.endpoint)

    def stop(self):
        self.process.stop()


def binary(name: str) -> Path:
    """A debug binary of the workspace (built by `make test` and `make demo`)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: build it with 'cargo build --workspace --bin {name}'")
    return path


def emulator_binary() -> Path:
    return binary("oss-emulator")


class OssEmulator:
    """The project's OSS emulator binary."""

    def __init__(self, secret: str = OSS_ACCESS_KEY_SECRET, *extra: str):
        self.process = Process(
            "oss-emulator",
            [str(emulator_binary()), "--listen", "127.0.0.1:0", "--access-key-id", OSS_ACCESS_KEY_ID,
             "--access-key-secret", secret, "--region", OSS_REGION, *extra],
            log_path("oss-emulator"))
        first = self.process.proc.stdout.readline().strip()
        if not first.startswith("listening on "):
            self.process.stop()
            raise RuntimeError(f"the OSS emulator did not start ({first!r}); see {self.process.log.name}")
        self.addr = first.removeprefix("listening on ")
        self.endpoint = f"http://{self.addr}"

    def reset(self):
        req = urllib.request.Request(f"{self.endpoint}/_emulator/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def control(self, path: str, data: dict | None = None, timeout: float = 30):
        """The emulator's own API (`/_emulator/...`, never OSS's): GET `path`, or PUT `data` as
        JSON there; the answer's JSON, or None when it is empty."""
        req = urllib.request.Request(f"{self.endpoint}/_emulator/{path}", method="GET" if data is None else "PUT",
                                     data=None if data is None else json.dumps(data).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
        return json.loads(text) if text else None

    def stop(self):
        self.process.stop()


class SyncTask:
    """One sync task on the local stack: a source bucket whose notifications go to a task queue
    (with a DLQ), a results bucket, and the environment the sync function runs with."""

    def __init__(self, moto: Moto, emulator: OssEmulator, task_id: str = "task-1", source: str = "src-bucket",
                 dest: str = "dst-bucket", results: str = "results-bucket", visibility: int = 2,
                 max_receive: int = 3, **settings: str):
        self.moto, self.emulator = moto, emulator
        self.task_id, self.source, self.dest, self.results = task_id, source, dest, results
        self.settings = settings
        self.s3, self.sqs = moto.client("s3"), moto.client("sqs")
        self.s3.create_bucket(Bucket=source)
        self.s3.create_bucket(Bucket=results)
        self.dlq_url = self.sqs.create_queue(QueueName=f"{task_id}-dlq")["QueueUrl"]
        dlq_arn = self.queue_arn(self.dlq_url)
        self.queue_url = self.sqs.create_queue(QueueName=task_id, Attributes={
            "VisibilityTimeout": str(visibility),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)}),
        })["QueueUrl"]
        self.s3.put_bucket_notification_configuration(Bucket=source, NotificationConfiguration={
            "QueueConfigurations": [{"Id": "s3-oss-sync", "QueueArn": self.queue_arn(self.queue_url),
                                     "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})

    def attach_function(self, name: str = "s3-oss-sync-sync") -> str:
        """Registers a sync function and its event source mapping on the task queue in moto, so
        `ctl pause` / `ctl resume` have a mapping to switch and `sync poll --function-name`
        follows it. Returns the function's name.

        moto emulates an enabled mapping by itself receiving the queue's messages on every send
        and invoking the function (in Docker). The local poller is the event source here, so the
        queue is then deleted and created again under the same name, attributes and ARN: moto
        keeps the mapping (its state, its UUID) but no longer feeds it."""
        import io
        import zipfile

        iam, lam = self.moto.client("iam"), self.moto.client("lambda")
        role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        lam.create_function(FunctionName=name, Runtime="provided.al2023", Handler="bootstrap",
                            Role=role["Role"]["Arn"], Code={"ZipFile": code.getvalue()})
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])["Attributes"]
        lam.create_event_source_mapping(FunctionName=name, EventSourceArn=attrs["QueueArn"], BatchSize=10)
        self.sqs.delete_queue(QueueUrl=self.queue_url)
        keep = {k: v for k, v in attrs.items() if k in ("VisibilityTimeout", "RedrivePolicy")}
        self.queue_url = self.sqs.create_queue(QueueName=self.task_id, Attributes=keep)["QueueUrl"]
        self.function_name = name
        return name

    def queue_arn(self, url: str) -> str:
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def env(self) -> dict:
        env = local_env()
        env.update(TASK_ID=self.task_id, SOURCE_BUCKET=self.source, DEST_BUCKET=self.dest,
                   RESULTS_BUCKET=self.results, AWS_ENDPOINT_URL=self.moto.endpoint,
                   OSS_ENDPOINT=self.emulator.endpoint, OSS_ALLOW_HTTP="true", OSS_REGION=OSS_REGION,
                   OSS_ACCESS_KEY_ID=OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET=OSS_ACCESS_KEY_SECRET,
                   RUST_LOG="warn")
        env.update(TASK_QUEUE_URL=self.queue_url)
        if getattr(self, "function_name", None):
            env.update(SYNC_FUNCTION_NAME=self.function_name)
        env.update(self.settings)
        return env

    def ctl(self, *args: str, timeout: int = 600, check: bool = True, **settings: str):
        """Runs `ctl ARGS` with the task's settings; returns the finished process (stdout: the
        JSON summary). `check` raises on a non-zero exit."""
        env = self.env()
        env.update(settings)
        p = subprocess.run([str(binary("ctl")), *args], capture_output=True, text=True, env=env,
                           timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"ctl {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def poll(self, max_seconds: int = 300, batch_size: int = 10, log: Path | None = None,
             until_empty: bool = True, args: tuple[str, ...] = (), queue_url: str | None = None,
             **settings: str) -> subprocess.Popen:
        """Starts `sync poll --until-empty` (or, with `until_empty=False`, a poller that runs until
        stopped or `max_seconds`); stdout (outcome and metric lines) goes to `log`. `args` are
        more options (`--invocation-timeout`), `queue_url` another queue to poll, `settings` more
        environment (`AWS_ENDPOINT_URL_S3` to route S3 through a proxy)."""
        self.log = log or log_path(f"sync-{self.task_id}")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "w")
        follow = ["--function-name", self.function_name] if getattr(self, "function_name", None) else []
        env = self.env()
        env.update(settings)
        if queue_url:
            env.update(TASK_QUEUE_URL=queue_url)
        if "--invocation-timeout" not in args:
            # As a Lambda function's timeout: the tests' short visibility timeouts (for quick
            # redelivery) would otherwise give each batch a sixth of them. Every message that
            # writes leaves a recheck delayed by it (plus 2 s), which --until-empty waits for, so
            # it is kept short.
            args = (*args, "--invocation-timeout", "10")
        return subprocess.Popen([str(binary("sync")), "poll", "--queue-url", queue_url or self.queue_url,
                                 *(["--until-empty"] if until_empty else []), "--batch-size", str(batch_size),
                                 "--max-seconds", str(max_seconds), *follow, *args],
                                stdout=out, stderr=subprocess.STDOUT, env=env)

    def run(self, max_seconds: int = 300, **kw) -> int:
        p = self.poll(max_seconds, **kw)
        return p.wait(timeout=max_seconds + 60)

    def report(self, now: str, **settings: str) -> dict:
        """`report run --now NOW --allow-future` (tests report as of tomorrow to see a day
        complete); returns what it printed (the days it reported)."""
        env = self.env()
        env.update(settings)
        p = subprocess.run([str(binary("report")), "run", "--now", now, "--allow-future"],
                           capture_output=True, text=True,
                           env=env, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"report run failed ({p.returncode}): {p.stderr}")
        return json.loads(p.stdout)

    def records(self) -> list[dict]:
        """Every outcome record in the results store."""
        out = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.results, Prefix="results/")
        for page in pages:
            for o in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.results, Key=o["Key"])["Body"].read().decode()
                out.extend(json.loads(line) for line in body.splitlines())
        return out

    def wait_empty(self, timeout: float = 600):
        """Waits until the task queue holds no message, visible, in flight or delayed (a recheck)."""
        deadline = time.time() + timeout
        while self.pending(self.queue_url):
            if time.time() > deadline:
                raise AssertionError(f"the queue is not empty after {timeout} s: {self.queue_depths(self.queue_url)}, "
                                     f"{self.pending(self.queue_url)} in all with the delayed")
            time.sleep(0.5)

    def pending(self, url: str) -> int:
        """Messages in the queue: visible, in flight and delayed (rechecks wait as delayed messages)."""
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(v) for v in a.values())

    def queue_depths(self, url: str) -> tuple[int, int]:
        a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def without_rechecks(records: list[dict]) -> list[dict]:
    """The records of the messages themselves: every message that writes leaves a delayed recheck
    behind (its records carry `recheck_of`), which, with no race to repair, finds the key current.
    Asserts that of the rechecks."""
    rechecks = [r for r in records if r.get("recheck_of")]
    assert all(r["outcome"] == "skipped" for r in rechecks), [r for r in rechecks if r["outcome"] != "skipped"]
    return [r for r in records if not r.get("recheck_of")]


def stop_leftovers() -> int:
    """Stops every process a previous run recorded and did not stop. Returns how many."""
    n = 0
    for pidfile in STACK_DIR.glob("*.pid") if STACK_DIR.exists() else []:
        try:
            os.killpg(int(pidfile.read_text()), signal.SIGTERM)
            n += 1
        except (ProcessLookupError, ValueError, PermissionError):
            pass
        pidfile.unlink(missing_ok=True)
    return n


if __name__ == "__main__" and sys.argv[1:] == ["stop"]:
    print(f"stopped {stop_leftovers()} leftover process(es)")
