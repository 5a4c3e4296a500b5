"""The local stack: moto (S3 + SQS) and the OSS emulator on 127.0.0.1, free ports, stopped by PID.

Used by the Python tests and by `make demo`. Every process started here records its PID under
`.stack/` so that `make stop` (and CI's exit trap) can stop anything a crashed run left behind.
"""

from __future__ import annotations

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


class Process:
    """A child process whose PID is kept in `.stack/NAME.pid` while it runs."""

    def __init__(self, name: str, argv: list[str], log: Path):
        STACK_DIR.mkdir(exist_ok=True)
        self.name = name
        self.log = open(log, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=local_env(), start_new_session=True)
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
        self.process = Process("moto", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                               STACK_DIR / "moto.log")
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if self.process.proc.poll() is not None or time.time() > deadline:
                    self.process.stop()
                    raise RuntimeError(f"moto did not start; see {STACK_DIR / 'moto.log'}")
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


def emulator_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "oss-emulator"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: build it with 'cargo build -p oss-emulator'")
    return path


class OssEmulator:
    """The project's OSS emulator binary."""

    def __init__(self, secret: str = OSS_ACCESS_KEY_SECRET, *extra: str):
        self.process = Process(
            "oss-emulator",
            [str(emulator_binary()), "--listen", "127.0.0.1:0", "--access-key-id", OSS_ACCESS_KEY_ID,
             "--access-key-secret", secret, "--region", OSS_REGION, *extra],
            STACK_DIR / "oss-emulator.log")
        first = self.process.proc.stdout.readline().strip()
        if not first.startswith("listening on "):
            self.process.stop()
            raise RuntimeError(f"the OSS emulator did not start ({first!r}); see {STACK_DIR / 'oss-emulator.log'}")
        self.addr = first.removeprefix("listening on ")
        self.endpoint = f"http://{self.addr}"

    def reset(self):
        req = urllib.request.Request(f"{self.endpoint}/_emulator/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def stop(self):
        self.process.stop()


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
