"""A fault-injecting HTTP proxy on 127.0.0.1 in front of moto's S3.

Everything is forwarded as it comes: request bodies with a Content-Length or chunked (passed on
verbatim, so `aws-chunked` uploads keep their framing), responses streamed back in blocks. A test
can tell it to answer `503 SlowDown` (S3's XML error body; none for HEAD, as S3 sends) to the
requests a rule matches (method, bucket, key; every one, a share, or a number of them) until the
rule is removed, and it counts what it saw, so a test can wait until a request went through.

The sync process is pointed at it with `AWS_ENDPOINT_URL_S3` (the AWS SDKs' service-specific
endpoint variable) while SQS stays on moto through `AWS_ENDPOINT_URL`. Note that the SDK retries
a 503 itself (standard retry mode: 3 attempts in all, with jittered back-off) before the job sees
the error, so a rule must fail three requests in a row for one S3 call to fail.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade"}
BLOCK = 64 * 1024


@dataclass
class Rule:
    """Which requests are answered 503: `method` (None: any), `bucket` and `key` (None: any), a
    share of the matching ones (`rate`), at most `times` of them (None: until removed). With
    `burst` N, a request picked by the dice fails with the next N - 1 matching requests of the same
    key (N = 3 defeats the SDK's standard retries)."""

    method: str | None = None
    bucket: str | None = None
    key: str | None = None
    rate: float = 1.0
    times: int | None = None
    burst: int = 1
    failed: int = 0
    pending: dict = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def matches(self, method: str, bucket: str, key: str) -> bool:
        return ((self.method is None or self.method == method)
                and (self.bucket is None or self.bucket == bucket)
                and (self.key is None or self.key == key))


def split_path(path: str) -> tuple[str, str]:
    """Path-style `/bucket/key?query` -> (bucket, decoded key)."""
    raw = urllib.parse.urlsplit(path).path
    bucket, _, key = raw.lstrip("/").partition("/")
    return urllib.parse.unquote(bucket), urllib.parse.unquote(key)


class FaultProxy:
    """The proxy: `start()`, `endpoint`, `fail(...)`, `clear()`, `count(...)`, `wait_for(...)`,
    `stop()`. Counts are kept per (method, bucket, key, status answered)."""

    def __init__(self, upstream: str):
        parts = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self.lock = threading.Lock()
        self.rules: list[Rule] = []
        self.seen: Counter = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_any(self):
                proxy.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_any

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client killed mid-request: not news
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FaultProxy":
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # --- what a test calls ---

    def fail(self, method: str | None = None, bucket: str | None = None, key: str | None = None,
             rate: float = 1.0, times: int | None = None, burst: int = 1, seed: int = 0) -> Rule:
        """Answers 503 SlowDown to matching requests from now on; returns the rule (its `failed`
        counts the requests it answered)."""
        rule = Rule(method, bucket, key, rate, times, burst, rng=random.Random(seed))
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self, rule: Rule | None = None):
        """Removes one rule, or all: requests are forwarded again."""
        with self.lock:
            self.rules = [r for r in self.rules if rule is not None and r is not rule]

    def count(self, method: str | None = None, bucket: str | None = None, key: str | None = None,
              status: int | None = None) -> int:
        """Requests seen matching the filters (status: what the client was answered)."""
        with self.lock:
            return sum(n for (m, b, k, s), n in self.seen.items()
                       if (method is None or m == method) and (bucket is None or b == bucket)
                       and (key is None or k == key) and (status is None or s == status))

    def wait_for(self, at_least: int = 1, timeout: float = 60, **filters) -> int:
        """Waits until `count(**filters)` reaches `at_least`; returns it."""
        deadline = time.time() + timeout
        while (n := self.count(**filters)) < at_least:
            if time.time() > deadline:
                raise AssertionError(f"the proxy saw {n} requests matching {filters}, waited for {at_least}")
            time.sleep(0.05)
        return n

    # --- the forwarding ---

    def pick(self, method: str, bucket: str, key: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if not rule.matches(method, bucket, key) or (rule.times is not None and rule.failed >= rule.times):
                    continue
                if rule.pending.get((bucket, key)):
                    rule.pending[(bucket, key)] -= 1
                elif rule.rng.random() < rule.rate:
                    rule.pending[(bucket, key)] = rule.burst - 1
                else:
                    continue
                rule.failed += 1
                return rule
        return None

    def note(self, method: str, bucket: str, key: str, status: int):
        with self.lock:
            self.seen[(method, bucket, key, status)] += 1

    def handle(self, h: BaseHTTPRequestHandler):
        method = h.command
        bucket, key = split_path(h.path)
        body = read_body(h)  # a generator: the body is passed on as it arrives
        if self.pick(method, bucket, key):
            for _ in body:  # read (and drop) it, so the connection stays usable
                pass
            self.note(method, bucket, key, 503)
            answer_slow_down(h, method, bucket, key)
            return
        conn = getattr(h, "upstream", None)
        if conn is None:
            conn = h.upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        headers["Host"] = f"{self.upstream_host}:{self.upstream_port}"
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            headers["Transfer-Encoding"] = "chunked"  # the body is passed on with its framing
        try:
            conn.putrequest(method, h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.endheaders()
            for piece in body:
                conn.send(piece)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            conn.close()
            h.upstream = None
            h.send_error(502, "upstream unreachable")
            return
        self.note(method, bucket, key, resp.status)
        h.send_response_only(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                h.send_header(k, v)
        chunked = method != "HEAD" and length is None and resp.status not in (204, 304)
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if method == "HEAD":
            resp.read()
            return
        while block := resp.read(BLOCK):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
        if chunked:
            h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()


def read_body(h: BaseHTTPRequestHandler):
    """The request body, in pieces as they arrive, to send upstream. Chunked bodies keep their
    framing (chunk sizes, extensions, trailers)."""
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        while True:
            line = h.rfile.readline()
            yield line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, up to the empty line
                    t = h.rfile.readline()
                    yield t
                    if t in (b"\r\n", b"\n", b""):
                        return
            yield from read_exactly(h.rfile, size + 2)  # the data and its CRLF
    yield from read_exactly(h.rfile, int(h.headers.get("Content-Length") or 0))


def read_exactly(rfile, n: int):
    """Yields `n` bytes of `rfile` in blocks (fewer if it ends early)."""
    while n:
        block = rfile.read(min(n, BLOCK))
        if not block:
            return
        yield block
        n -= len(block)


def answer_slow_down(h: BaseHTTPRequestHandler, method: str, bucket: str, key: str):
    request_id = uuid.uuid4().hex[:16].upper()
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
            f"<Message>Please reduce your request rate.</Message><Resource>/{bucket}/{key}</Resource>"
            f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>").encode()
    h.send_response_only(503, "Slow Down")
    h.send_header("Content-Type", "application/xml")
    h.send_header("x-amz-request-id", request_id)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if method != "HEAD":
        h.wfile.write(body)
    h.wfile.flush()
