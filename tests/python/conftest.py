"""Fixtures: the local stack (moto, the OSS emulator) and an official OSS SDK client for it."""

import pytest

from stack import OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET, OSS_REGION, Moto, OssEmulator


@pytest.fixture(scope="session")
def moto_server():
    m = Moto()
    yield m
    m.stop()


@pytest.fixture
def moto(moto_server):
    moto_server.reset()
    return moto_server


@pytest.fixture(scope="session")
def emulator_server():
    e = OssEmulator()
    yield e
    e.stop()


@pytest.fixture
def emulator(emulator_server):
    emulator_server.reset()
    return emulator_server


def oss_client(endpoint: str, secret: str = OSS_ACCESS_KEY_SECRET):
    """The official Alibaba Cloud OSS SDK (alibabacloud-oss-v2), pointed at the emulator."""
    import alibabacloud_oss_v2 as oss

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(OSS_ACCESS_KEY_ID, secret)
    cfg.region = OSS_REGION
    cfg.endpoint = endpoint
    cfg.use_path_style = True
    cfg.retry_max_attempts = 1
    return oss.Client(cfg)
