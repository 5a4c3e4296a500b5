"""Fixtures: the OSS emulator binary on a free loopback port, and clients for it."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ACCESS_KEY_ID = "test-ak"
ACCESS_KEY_SECRET = "test-secret-value"
REGION = "cn-hangzhou"


def emulator_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "oss-emulator"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: build it with 'cargo build -p oss-emulator'")
    return path


class RunningEmulator:
    """An `oss-emulator` process; stopped by PID when the test ends."""

    def __init__(self, secret: str = ACCESS_KEY_SECRET, *extra: str):
        self.proc = subprocess.Popen(
            [str(emulator_binary()), "--listen", "127.0.0.1:0",
             "--access-key-id", ACCESS_KEY_ID, "--access-key-secret", secret,
             "--region", REGION, *extra],
            stdout=subprocess.PIPE, text=True)
        first = self.proc.stdout.readline().strip()
        if not first.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"emulator did not start: {first!r}")
        self.addr = first.removeprefix("listening on ")
        self.endpoint = f"http://{self.addr}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def emulator():
    e = RunningEmulator()
    yield e
    e.stop()


def oss_client(endpoint: str, secret: str = ACCESS_KEY_SECRET):
    """The official Alibaba Cloud OSS SDK (alibabacloud-oss-v2), pointed at the emulator."""
    import alibabacloud_oss_v2 as oss

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(ACCESS_KEY_ID, secret)
    cfg.region = REGION
    cfg.endpoint = endpoint
    cfg.use_path_style = True
    cfg.retry_max_attempts = 1
    return oss.Client(cfg)
