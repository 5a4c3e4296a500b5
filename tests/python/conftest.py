"""Fixtures: the local stack (moto, the OSS emulator) and an official OSS SDK client for it.

Under pytest-xdist (`make python-test` runs `-n 4 --dist loadgroup -m "not alone"`, then the
`alone` tests by themselves) every worker starts its own stack: the fixtures are per session, and
a session is a worker."""

import pytest

from stack import OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET, OSS_REGION, Moto, OssEmulator


def pytest_configure(config):
    config.addinivalue_line("markers", "long: a test of half a minute or more, run before the others")
    config.addinivalue_line("markers", "alone: a test with a time bound that other tests' load breaks; "
                            "make python-test runs it by itself after the parallel pass")


def pytest_collection_modifyitems(items):
    """The long tests first (in file order, then the others in file order): spread over workers,
    they start at once and the short ones fill in around them instead of trailing after."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def _server_fixtures(server_class, name: str):
    """Two fixtures: `{name}_server`, one server of `server_class` for the session, stopped when
    it ends, and `{name}`, that server emptied for the test."""

    @pytest.fixture(scope="session", name=f"{name}_server")
    def server():
        started = server_class()
        yield started
        started.stop()

    @pytest.fixture(name=name)
    def fresh(request):
        running = request.getfixturevalue(f"{name}_server")
        running.reset()
        return running

    return server, fresh


moto_server, moto = _server_fixtures(Moto, "moto")
emulator_server, emulator = _server_fixtures(OssEmulator, "emulator")


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
