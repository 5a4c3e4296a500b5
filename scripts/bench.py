#!/usr/bin/env python3
"""`make bench`: every benchmark on 127.0.0.1, then BENCHMARKS.md rewritten with the figures.

Benchmarks report; they assert nothing about time. Ratios compare runs made side by side in this
one invocation, alternating, so a noisy machine slows both sides of a ratio alike.

Servers: s3s-fs (an S3-compatible server on local files, pinned in tests/bench/s3-source, served
with TCP_NODELAY) is the source and results store; the project's OSS emulator is the destination. Each measurement is a separate `sync-bench` process (tests/bench), so its memory and
CPU figures are its own. Standard library only; needs cargo.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
S3S_FS_VERSION = "0.14.1"
PROFILE = "profiling" if os.environ.get("BENCH_PROFILE") else "release"
RELEASE = ROOT / "target" / PROFILE
AK, SK = "bench-access-key", "bench-secret-key-0123456789"
OSS_AK, OSS_SK = "bench-oss-ak", "bench-oss-sk-0123456789"
LARGE_MIB = 1024
SMALL_COUNT, SMALL_SIZE = 10_000, 4096
REPEATS = 3
SCALING = [1, 2, 4, 8, 16]
SCALING_OBJECTS, SCALING_LATENCY_OBJECTS, LATENCY_MS = 2000, 400, 20
FUNCTION_MEMORY_MB = [128, 256, 1024]
BUDGET_OBJECTS, BUDGET_OBJECT_MIB = 10, 100


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cargo_build() -> None:
    cmd = ["cargo", "build", "--profile", PROFILE, "-q", "-p", "oss-emulator", "-p", "sync",
           "-p", "s3-oss-sync-bench"]
    log("running: " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)
    # The S3 source server: its own package and lock file (s3s-fs pinned), not a workspace member.
    cmd = ["cargo", "build", "--release", "-q", "--locked", "--manifest-path",
           "tests/bench/s3-source/Cargo.toml", "--target-dir", "target"]
    log("running: " + " ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)


class Servers:
    """s3s-fs and two OSS emulators (one plain, one with added latency), on 127.0.0.1."""

    def __init__(self, data: Path):
        self.procs: list[subprocess.Popen] = []
        s3_root = data / "s3"
        for bucket in ("src", "results"):
            (s3_root / bucket).mkdir(parents=True)
        self.s3 = self.start(
            [str(ROOT / "target" / "release" / "s3-source"), "--access-key", AK,
             "--secret-key", SK, str(s3_root)])
        self.oss = self.emulator()
        self.oss_slow = self.emulator("--fault-latency-ms", str(LATENCY_MS))

    def start(self, cmd: list[str]) -> str:
        """Starts a server that prints `listening on ADDR` once ready; returns its URL."""
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        line = p.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"{cmd[0]} said {line!r}")
        return "http://" + line.removeprefix("listening on ")

    def emulator(self, *extra: str) -> str:
        return self.start(
            [str(RELEASE / "oss-emulator"), "--listen", "127.0.0.1:0", "--access-key-id", OSS_AK,
             "--access-key-secret", OSS_SK, "--bucket", "dest", *extra])

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) each server has used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for name, p in zip(("s3", "oss", "oss_slow"), self.procs):
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / tick
        return out

    def reset(self, endpoint: str) -> None:
        req = urllib.request.Request(endpoint + "/_emulator/reset", method="POST")
        urllib.request.urlopen(req, timeout=30).close()

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


class Runner:
    def __init__(self, servers: Servers):
        self.servers = servers
        self.env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        self.env.update({
            "AWS_ENDPOINT_URL": servers.s3, "AWS_ACCESS_KEY_ID": AK,
            "AWS_SECRET_ACCESS_KEY": SK, "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
            "TASK_ID": "bench", "SOURCE_BUCKET": "src", "DEST_BUCKET": "dest",
            "RESULTS_BUCKET": "results", "OSS_ENDPOINT": servers.oss, "OSS_REGION": "cn-hangzhou",
            "OSS_ACCESS_KEY_ID": OSS_AK, "OSS_ACCESS_KEY_SECRET": OSS_SK, "OSS_ALLOW_HTTP": "true",
            "RUST_LOG": "warn",
        })
        self.commands: dict[str, str] = {}

    def run(self, label: str, *args: str, oss: str | None = None) -> dict:
        env = dict(self.env)
        if oss:
            env["OSS_ENDPOINT"] = oss
        cmd = [f"target/{PROFILE}/sync-bench", *args]
        shown = " ".join(cmd)
        self.commands.setdefault(label, shown)
        if os.environ.get("BENCH_PROFILE"):
            # perf's software clock works where hardware counters are not offered.
            out_dir = ROOT / "target" / "bench-profile"
            out_dir.mkdir(parents=True, exist_ok=True)
            cmd = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "499", "--call-graph",
                   "dwarf,16384", "-o", str(out_dir / f"{label}.data"), "--", *cmd]
        log("running: " + shown)
        before = self.servers.cpu()
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{shown} failed ({out.returncode}): {out.stderr.strip()}")
        after = self.servers.cpu()
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["server_cpu_seconds"] = {k: round(after[k] - before[k], 3) for k in after}
        log("  " + json.dumps(result))
        return result


def large(r: Runner, s: Servers) -> dict:
    r.run("seed-large", "seed-large", "--key", "large/1GiB.bin", "--size-mib", str(LARGE_MIB))
    rows: dict[str, list[dict]] = {"get": [], "put": [], "copy": []}
    for _ in range(REPEATS):
        rows["get"].append(r.run("get-only", "get-only", "--key", "large/1GiB.bin"))
        rows["put"].append(r.run("put-only", "put-only", "--size-mib", str(LARGE_MIB)))
        s.reset(s.oss)
        rows["copy"].append(r.run("copy", "copy", "--key", "large/1GiB.bin"))
        s.reset(s.oss)
    memory = []
    for part, inflight in ((8, 2), (16, 4)):
        env_args = ("copy", "--key", "large/1GiB.bin")
        r.env["OSS_PART_SIZE_MIB"], r.env["OSS_PARTS_IN_FLIGHT"] = str(part), str(inflight)
        try:
            row = r.run(f"copy-{part}x{inflight}", *env_args)
        finally:
            del r.env["OSS_PART_SIZE_MIB"], r.env["OSS_PARTS_IN_FLIGHT"]
        row["part_mib"], row["parts_in_flight"] = part, inflight
        memory.append(row)
        s.reset(s.oss)
    return {"rows": rows, "memory": memory, "cores": os.cpu_count()}


def seed_small(r: Runner) -> None:
    r.run("seed-small", "seed-small", "--prefix", "small/", "--count", str(SMALL_COUNT),
          "--size", str(SMALL_SIZE))


def small(r: Runner, s: Servers) -> dict:
    count = str(SMALL_COUNT)
    fresh = r.run("handler", "--dest-prefix", "fresh/", "handler", "--prefix", "small/",
                  "--count", count, "--batch", "10")
    dup = r.run("handler-dup", "--dest-prefix", "fresh/", "handler", "--prefix", "small/",
                "--count", count, "--batch", "10")
    s.reset(s.oss)
    return {"fresh": fresh, "duplicate": dup}


def cold(r: Runner) -> dict:
    return r.run("cold-start", "cold-start", "--binary", f"target/{PROFILE}/sync",
                 "--keys", "small/00000.bin", "small/00001.bin", "--runs", "5")


def scaling(r: Runner, s: Servers) -> dict:
    out: dict[str, list[dict]] = {"loopback": [], "latency": []}
    for c in SCALING:
        out["loopback"].append(r.run(
            "scaling", "--concurrency", str(c), "--dest-prefix", f"scale-{c}/", "handler",
            "--prefix", "small/", "--count", str(SCALING_OBJECTS), "--batch", "16"))
        s.reset(s.oss)
        out["latency"].append(r.run(
            "scaling-latency", "--concurrency", str(c), "--dest-prefix", f"scale-{c}/",
            "handler", "--prefix", "small/", "--count", str(SCALING_LATENCY_OBJECTS),
            "--batch", "16", oss=s.oss_slow))
        # Not reset: a reset would also clear its latency. Each run has its own prefix.
    return out


def budget(r: Runner, s: Servers) -> list[dict]:
    """One batch of 10 objects of 100 MiB through the handler, as a function of 128, 256 and
    1024 MB would run it (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE` set, defaults otherwise)."""
    for i in range(BUDGET_OBJECTS):
        r.run("seed-budget", "seed-large", "--key", f"budget/{i:02}.bin", "--size-mib",
              str(BUDGET_OBJECT_MIB))
    rows = []
    for mb in FUNCTION_MEMORY_MB:
        r.env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(mb)
        try:
            row = r.run("budget", "--dest-prefix", f"budget-{mb}/", "handler", "--prefix",
                        "budget/", "--count", str(BUDGET_OBJECTS), "--batch",
                        str(BUDGET_OBJECTS))
        finally:
            del r.env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        row["function_memory_mb"] = mb
        rows.append(row)
        s.reset(s.oss)
    r.commands["budget"] = ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=MB " + r.commands["budget"]
                            .replace("budget-128/", "budget-MB/"))
    return rows


def report_merge(r: Runner) -> list[dict]:
    rows = []
    for n in (1_000_000, 10_000_000):
        cmd = [f"target/{PROFILE}/report-merge", "--records", str(n), "--sort-mib", "128",
               "--part-mib", "32"]
        r.commands.setdefault("report-merge", " ".join(cmd).replace(str(n), "N"))
        log("running: " + " ".join(cmd))
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        log("  " + json.dumps(rows[-1]))
    return rows


def main() -> int:
    cargo_build()
    only = set(sys.argv[1:])
    data = Path(tempfile.mkdtemp(prefix="s3-oss-sync-bench-"))
    servers = Servers(data)
    results: dict = {}
    try:
        r = Runner(servers)
        if not only or only & {"small", "cold", "scaling"}:
            seed_small(r)
        for name, step in (("large", lambda: large(r, servers)),
                           ("small", lambda: small(r, servers)),
                           ("cold", lambda: cold(r)),
                           ("scaling", lambda: scaling(r, servers)),
                           ("budget", lambda: budget(r, servers))):
            if not only or name in only:
                results[name] = step()
        if not only or "merge" in only:
            results["merge"] = report_merge(r)
        results["commands"] = r.commands
        results["latency_ms"] = LATENCY_MS
    finally:
        servers.stop()
        shutil.rmtree(data, ignore_errors=True)
    (ROOT / "target" / "bench-results.json").write_text(json.dumps(results, indent=1))
    import bench_report  # noqa: E402  (beside this script)
    if only == {"budget"}:
        # Its section stands alone: regenerated in place, the rest left as it is.
        path = ROOT / "BENCHMARKS.md"
        path.write_text(bench_report.splice_budget(path.read_text(), results))
        log("rewrote the memory budget section of BENCHMARKS.md")
        return 0
    if only:
        log("partial run: figures in target/bench-results.json, BENCHMARKS.md left as it is")
        return 0
    (ROOT / "BENCHMARKS.md").write_text(bench_report.render(results, machine()))
    log("wrote BENCHMARKS.md")
    return 0


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
               if l.startswith("MemTotal"))
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem / 1048576),
            "kernel": f"{platform.system()} {platform.release()}", "rustc": rustc,
            "s3s_fs": S3S_FS_VERSION}


if __name__ == "__main__":
    sys.exit(main())
