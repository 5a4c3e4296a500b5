#!/usr/bin/env python3
"""Benchmark of `ctl verify`: 100,000 equal keys, settled by the listings alone. Rewrites the
section "13. Verify: 100,000 equal keys" of BENCHMARKS.md (and only it); figures also in
target/bench-verify.json. Reports, asserts nothing about time.

The S3 side is moto, run in this process (moto's server on a thread), its 100,000 objects put
straight into moto's backend (no HTTP, no notification: the fast path); the OSS side is the
project's emulator (release build), its objects put over HTTP with the official OSS SDK, with the
same bytes (so the same MD5 ETags) and written after the S3 objects by more than the clock
tolerance. Then `ctl verify` (release build) runs with 1 and with 8 key ranges listed at once;
each run's wall time, peak memory (the process's VmHWM) and requests are recorded: its own
counts of listing pages, probes and HEADs, and the emulator's count of requests it served.

Needs the Python tools of the local stack (`.venv`: moto and alibabacloud-oss-v2) and cargo.
Usage: python scripts/bench_verify.py [--keys N] [--debug]"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
TARGET = RELEASE  # `--debug`: the debug build, for trying the script out
SECTION = "13. Verify: 100,000 equal keys"
OSS_AK, OSS_SK, REGION = "bench-oss-ak", "bench-oss-sk-0123456789", "cn-hangzhou"
RANGES = [1, 8]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body(i: int) -> bytes:
    return f"object {i}\n".encode()


def start_moto(keys: int) -> tuple[object, str]:
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    backend = s3_backends["123456789012"]["global"]
    backend.create_bucket("src", "us-east-1")
    backend.create_bucket("results", "us-east-1")
    t = time.time()
    for i in range(keys):
        backend.put_object("src", f"obj/{i:06d}", body(i), disable_notification=True)
    log(f"moto: {keys} objects in {time.time() - t:.1f} s")
    return server, f"http://127.0.0.1:{port}"


def start_emulator() -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([str(TARGET / "oss-emulator"), "--listen", "127.0.0.1:0", "--access-key-id", OSS_AK,
                          "--access-key-secret", OSS_SK, "--region", REGION, "--bucket", "dst"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = p.stdout.readline().strip()
    if not first.startswith("listening on "):
        raise RuntimeError(f"the emulator did not start: {first!r}")
    return p, "http://" + first.removeprefix("listening on ")


def fill_oss(endpoint: str, keys: int) -> None:
    import alibabacloud_oss_v2 as oss

    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(OSS_AK, OSS_SK)
    cfg.region, cfg.endpoint, cfg.use_path_style = REGION, endpoint, True
    client = oss.Client(cfg)
    t = time.time()

    def put(i: int) -> None:
        client.put_object(oss.PutObjectRequest(bucket="dst", key=f"obj/{i:06d}", body=body(i)))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(keys), chunksize=256))
    log(f"emulator: {keys} objects in {time.time() - t:.1f} s")


def stats(endpoint: str) -> dict:
    return json.loads(urllib.request.urlopen(f"{endpoint}/_emulator/stats", timeout=10).read())


def run_verify(env: dict, ranges: int, oss_endpoint: str) -> dict:
    before = stats(oss_endpoint)
    import tempfile
    with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
        t = time.time()
        p = subprocess.Popen([str(TARGET / "ctl"), "verify", "--json", "--parallel", str(ranges)], env=env,
                             stdout=out_f, stderr=err_f, text=True)
        # Peak memory: VmHWM, the high-water mark of the program since its exec (a child's rusage
        # would count the pages it shared with this process between fork and exec), sampled
        # until it exits.
        peak_kib = 0
        while p.poll() is None:
            try:
                status = Path(f"/proc/{p.pid}/status").read_text()
                peak_kib = max(peak_kib, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
            except (OSError, AttributeError):
                pass
            time.sleep(0.02)
        wall = time.time() - t
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read(), err_f.read()
    if p.returncode != 0:
        raise RuntimeError(f"ctl verify exited {p.returncode}: {err}")
    after = stats(oss_endpoint)
    summary = json.loads(out.splitlines()[0])["summary"]
    c = summary["counts"]
    return {
        "ranges": summary["ranges"],
        "keys": c["kinds"]["equal"] + summary["differences"],
        "differences": summary["differences"],
        "seconds": round(wall, 2),
        "objects_per_s": round((c["kinds"]["equal"] + summary["differences"]) / wall),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "s3_list_pages": c["requests"]["source_pages"],
        "s3_probes": c["requests"]["probes"],
        "oss_list_pages": c["requests"]["dest_pages"],
        "heads_oss": c["heads"]["dest"],
        "heads_s3": c["heads"]["source"],
        "oss_requests_served": after["requests"] - before["requests"],
    }


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.machine())
    return f"{os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}"


def render(results: list[dict], keys: int) -> str:
    rows = "\n".join(
        f"| {r['ranges']} | {r['seconds']} | {r['objects_per_s']:,} | {r['peak_rss_mib']} | "
        f"{r['s3_list_pages']} + {r['s3_probes']} probes | {r['oss_list_pages']} | {r['heads_oss']} / {r['heads_s3']} "
        f"| {r['oss_requests_served']} | {r['differences']} |"
        for r in results)
    return f"""## {SECTION}

`python scripts/bench_verify.py` (its own script, which `make bench` runs last; alone: `python3 scripts/bench.py verify`). {keys:,} keys
in S3 (moto, objects put straight into its backend) and the same bytes under the same keys in
the OSS emulator, written more than the clock tolerance after them: every key is `equal`, settled
by the listings alone. `ctl verify` (release build) on {machine()}, once with one listing of each
side and once with up to 8 key ranges listed at once (placed by probing the S3 listing). Requests
are `ctl`'s own counts (ListObjectsV2 pages of 1,000 keys, one-key probes, HEADs) and the
requests the emulator served (its listing pages plus the report's writes: one differences part,
`summary.json`, `manifest.json`).

| key ranges | seconds | keys/s | peak memory, VmHWM (MiB) | S3 requests | OSS list pages | HEADs (OSS / S3) | OSS requests served | differences |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

No HEAD is made for a key the listings settle: the OSS emulator served only listing pages and
the report's three writes, and `ctl` counted no HEAD on either side. Peak memory stays small
with either number of ranges (each range adds its own pages and spill buffer), and by design
does not depend on the number of keys: the join holds a page of each side
per range, at most 32 HEADs in flight per range, and spills differences to a temporary file per
range. The time is moto's: it answers each ListObjectsV2 by scanning its keys, one request at a
time under Python's lock, so here the probes placing the ranges and the ranges' own listings add
work instead of overlapping it, and 8 ranges take longer than one. The ranges are for S3, whose
listings of different key ranges proceed independently; this local stack cannot show that gain.
"""


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    start = doc.find(f"## {SECTION}")
    if start >= 0:
        nxt = doc.find("\n## ", start + 1)
        doc = doc[:start] + text + (doc[nxt + 1:] if nxt >= 0 else "")
    else:
        at = doc.find("\n## Profile findings")
        doc = doc[:at + 1] + text + "\n" + doc[at + 1:] if at >= 0 else doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--debug", action="store_true", help="use the debug build; BENCHMARKS.md is left alone")
    args = ap.parse_args()
    global TARGET
    if args.debug:
        TARGET = ROOT / "target" / "debug"
    else:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "ctl", "-p", "oss-emulator"], cwd=ROOT,
                       check=True)
    for k in ("AWS_CA_BUNDLE",):
        os.environ.pop(k, None)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    moto, s3_endpoint = start_moto(args.keys)
    emulator, oss_endpoint = start_emulator()
    try:
        time.sleep(2.5)  # the OSS copies are written after S3's objects, beyond the tolerance
        fill_oss(oss_endpoint, args.keys)
        import boto3
        sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name="us-east-1")
        queue = sqs.create_queue(QueueName="bench")["QueueUrl"]
        env = dict(os.environ)
        env.update(TASK_ID="bench", SOURCE_BUCKET="src", DEST_BUCKET="dst", RESULTS_BUCKET="results",
                   AWS_ENDPOINT_URL=s3_endpoint, OSS_ENDPOINT=oss_endpoint, OSS_ALLOW_HTTP="true",
                   OSS_REGION=REGION, OSS_ACCESS_KEY_ID=OSS_AK, OSS_ACCESS_KEY_SECRET=OSS_SK,
                   TASK_QUEUE_URL=queue, RUST_LOG="warn")
        results = []
        for ranges in RANGES:
            r = run_verify(env, ranges, oss_endpoint)
            log(json.dumps(r))
            results.append(r)
    finally:
        emulator.terminate()
        emulator.wait()
        moto.stop()
    (ROOT / "target" / "bench-verify.json").write_text(json.dumps(results, indent=2))
    if args.keys == 100_000 and not args.debug:
        write_section(render(results, args.keys))
        log(f"rewrote section {SECTION!r} of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
