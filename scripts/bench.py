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
import statistics
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
# Parts in flight over a slow link: one object of P × PARALLEL_WAVES parts of PARALLEL_PART_MIB
# for each P, copied to an emulator that waits PARALLEL_LATENCY_MS before every answer and reads
# each request body at PARALLEL_CAP bytes/s, so each run lasts about the same (~16 s).
PARALLEL = [1, 4, 16]
PARALLEL_PART_MIB, PARALLEL_WAVES = 8, 8
PARALLEL_CAP = 4 << 20
PARALLEL_LATENCY_MS = 100
PARALLEL_ROUNDS = 3


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
    """s3s-fs and OSS emulators (one plain, one with added latency, and on first use one with a
    long link's latency and a per-connection upload cap), on 127.0.0.1."""

    def __init__(self, data: Path):
        self.procs: list[subprocess.Popen] = []
        self.names: list[str] = []
        s3_root = data / "s3"
        for bucket in ("src", "results"):
            (s3_root / bucket).mkdir(parents=True)
        self.s3 = self.start(
            "s3", [str(ROOT / "target" / "release" / "s3-source"), "--access-key", AK,
                   "--secret-key", SK, str(s3_root)])
        self.oss = self.emulator("oss")
        self.oss_slow = self.emulator("oss_slow", "--fault-latency-ms", str(LATENCY_MS))
        self.oss_capped: str | None = None

    def start(self, name: str, cmd: list[str]) -> str:
        """Starts a server that prints `listening on ADDR` once ready; returns its URL."""
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(p)
        self.names.append(name)
        line = p.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"{cmd[0]} said {line!r}")
        return "http://" + line.removeprefix("listening on ")

    def emulator(self, name: str, *extra: str) -> str:
        return self.start(name, self.emulator_command(*extra))

    @staticmethod
    def emulator_command(*extra: str) -> list[str]:
        return [str(RELEASE / "oss-emulator"), "--listen", "127.0.0.1:0", "--access-key-id",
                OSS_AK, "--access-key-secret", OSS_SK, "--bucket", "dest", *extra]

    def capped(self) -> str:
        """The emulator with a long link's latency and a per-connection upload cap (started on
        first use)."""
        if self.oss_capped is None:
            self.oss_capped = self.emulator("oss_capped", *self.capped_flags())
        return self.oss_capped

    @staticmethod
    def capped_flags() -> list[str]:
        return ["--fault-latency-ms", str(PARALLEL_LATENCY_MS), "--upload-bytes-per-sec",
                str(PARALLEL_CAP)]

    def set_faults(self, endpoint: str, faults: dict) -> None:
        req = urllib.request.Request(endpoint + "/_emulator/faults", method="PUT",
                                     data=json.dumps(faults).encode(),
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=30).close()

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) each server has used so far."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        for name, p in zip(self.names, self.procs):
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
    recheck = r.run("handler-recheck", "--dest-prefix", "fresh/", "handler", "--prefix", "small/",
                    "--count", count, "--batch", "10", "--recheck")
    dup = r.run("handler-dup", "--dest-prefix", "fresh/", "handler", "--prefix", "small/",
                "--count", count, "--batch", "10")
    s.reset(s.oss)
    return {"fresh": fresh, "recheck": recheck, "duplicate": dup}


def cold(r: Runner) -> dict:
    args = ("--keys", "small/00000.bin", "small/00001.bin", "--runs", "5")
    baseline = os.environ.get("BENCH_COLD_BASELINE")
    if baseline:
        r.run("cold-start-warm-up", "cold-start", "--binary", f"target/{PROFILE}/sync",
              *args[:-1], "1")
    result = r.run("cold-start", "cold-start", "--binary", f"target/{PROFILE}/sync", *args)
    if not baseline:
        return result
    # Before and after a change, side by side: BENCH_COLD_BASELINE names a directory holding the
    # release `sync` and `report` binaries built before it. Rounds (BENCH_COLD_ROUNDS, default 5)
    # alternate, so both meet the same machine; each round is the median of its starts, and the
    # table gives the median round.
    base = Path(baseline)
    # One start of each first, left out, so that neither meets a colder page cache.
    r.run("cold-start-warm-up", "cold-start", "--binary", str(base / "sync"), *args[:-1], "1")
    count = int(os.environ.get("BENCH_COLD_ROUNDS", "5"))
    rounds: dict[str, list[dict]] = {"before": [], "after": [result]}
    for i in range(count):
        rounds["before"].append(r.run("cold-start-baseline", "cold-start", "--binary",
                                      str(base / "sync"), *args))
        if i < count - 1:
            rounds["after"].append(r.run("cold-start", "cold-start", "--binary",
                                         f"target/{PROFILE}/sync", *args))

    def summary(rows: list[dict], report: Path) -> dict:
        mid = lambda k: statistics.median(row[k] for row in rows)  # noqa: E731
        return {"ready_ms": mid("ready_ms"), "first_event_ms": mid("first_event_ms"),
                "second_event_ms": mid("second_event_ms"), "peak_rss_mib": mid("peak_rss_mib"),
                "sync_bytes": rows[0]["binary_bytes"],
                "report_bytes": report.stat().st_size if report.exists() else None,
                "rounds_ready_ms": [row["ready_ms"] for row in rows]}

    result["comparison"] = {"before": summary(rounds["before"], base / "report"),
                            "after": summary(rounds["after"], ROOT / "target" / PROFILE / "report"),
                            "baseline_label": os.environ.get("BENCH_COLD_BASELINE_LABEL", "before")}
    return result


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


BATCH_SIZES, BATCH_OBJECTS, BATCH_LATENCIES = (10, 50, 100), 1000, (20, 100)


def batch_sizes(r: Runner, s: Servers) -> list[dict]:
    """Fresh 4 KiB copies through the handler in batches of 10, 50 and 100 (every job of a batch at
    once, the default) against the emulator with 20 and 100 ms of latency: the time an invocation
    takes, which Lambda bills, as a function of the batch size."""
    rows = []
    for latency in BATCH_LATENCIES:
        s.set_faults(s.oss_slow, {"latency_ms": latency})
        for size in BATCH_SIZES:
            out = r.run("batch-size", "--dest-prefix", f"batch-{latency}-{size}/", "handler",
                        "--prefix", "small/", "--count", str(BATCH_OBJECTS), "--batch", str(size),
                        oss=s.oss_slow)
            invocations = -(-out["objects"] // size)
            rows.append({"latency_ms": latency, "batch": size, "objects": out["objects"],
                         "seconds": out["seconds"], "objects_per_sec": out["objects_per_sec"],
                         "ms_per_invocation": round(out["seconds"] * 1000 / invocations, 1),
                         "outcomes": out["outcomes"]})
    s.set_faults(s.oss_slow, {"latency_ms": LATENCY_MS})
    return rows


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


def parallel(r: Runner, s: Servers) -> dict:
    """One object through the handler (`sync-bench copy`, a resumable copy in parts) to an
    emulator with PARALLEL_LATENCY_MS of latency and a per-connection cap of PARALLEL_CAP bytes/s,
    with 1, 4 and 16 parts in flight; the object has PARALLEL_WAVES parts per part in flight."""
    endpoint = s.capped()
    faults = {"latency_ms": PARALLEL_LATENCY_MS, "upload_bytes_per_sec": PARALLEL_CAP}
    for p in PARALLEL:
        r.run("seed-parallel", "seed-large", "--key", f"parallel/{p}.bin", "--size-mib",
              str(p * PARALLEL_WAVES * PARALLEL_PART_MIB))
    rows: dict[int, list[dict]] = {p: [] for p in PARALLEL}
    for _ in range(PARALLEL_ROUNDS):
        for p in PARALLEL:
            # Emptied (so memory holds one copy at a time); a reset also clears the faults.
            s.reset(endpoint)
            s.set_faults(endpoint, faults)
            # One copier (never fanned out to range jobs), P parts in flight.
            r.env["OSS_PART_SIZE_MIB"] = str(PARALLEL_PART_MIB)
            r.env["OSS_PARTS_IN_FLIGHT"] = str(p)
            r.env["FANOUT_THRESHOLD_MIB"] = "0"
            try:
                row = r.run("parallel", "copy", "--key", f"parallel/{p}.bin", oss=endpoint)
            finally:
                for name in ("OSS_PART_SIZE_MIB", "OSS_PARTS_IN_FLIGHT", "FANOUT_THRESHOLD_MIB"):
                    del r.env[name]
            row["server_cpu_seconds"] = {k: row["server_cpu_seconds"][k]
                                         for k in ("s3", "oss_capped")}
            # The source's share of a part's time: the same ranged reads, P at once, no upload.
            row["source_read"] = r.run(
                "parallel-reads", "get-ranges", "--key", f"parallel/{p}.bin", "--part-mib",
                str(PARALLEL_PART_MIB), "--parts-in-flight", str(p))
            rows[p].append(row)
    s.reset(endpoint)
    emulator = " ".join(Servers.emulator_command(*Servers.capped_flags()))
    r.commands["parallel"] = (f"OSS_PART_SIZE_MIB={PARALLEL_PART_MIB} OSS_PARTS_IN_FLIGHT=P "
                              "FANOUT_THRESHOLD_MIB=0 "
                              + r.commands["parallel"].replace("parallel/1.bin", "parallel/P.bin"))
    r.commands["parallel-emulator"] = emulator.replace(str(ROOT) + "/", "")
    r.commands["seed-parallel"] = (r.commands["seed-parallel"]
                                   .replace("parallel/1.bin", "parallel/P.bin")
                                   .replace(f"--size-mib {PARALLEL_WAVES * PARALLEL_PART_MIB}",
                                            "--size-mib MIB"))
    r.commands["parallel-reads"] = (r.commands["parallel-reads"]
                                    .replace("parallel/1.bin", "parallel/P.bin")
                                    .replace("--parts-in-flight 1", "--parts-in-flight P"))
    return {
        "rows": {str(p): rs for p, rs in rows.items()},
        "cap_bytes_per_sec": PARALLEL_CAP,
        "latency_ms": PARALLEL_LATENCY_MS,
        "part_mib": PARALLEL_PART_MIB,
        "waves": PARALLEL_WAVES,
        "cores": os.cpu_count(),
    }


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


def fanout() -> dict:
    """The fan-out section: `scripts/bench_fanout.py` under the project's venv (moto, boto3), on
    its own local stack; the first line it prints is its figures."""
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "scripts/bench_fanout.py"]
    log("running: " + " ".join(cmd[1:]))
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, env=env)
    result = json.loads(out.stdout.splitlines()[0])
    log("  " + json.dumps({"speed_up": result["speed_up"]}))
    return result


def peer() -> dict:
    """The peer section: `scripts/bench_peer.py` under the project's venv (moto for SQS, boto3,
    the OSS SDK) on its own servers; the last line it prints is its figures."""
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "scripts/bench_peer.py"]
    log("running: " + " ".join(cmd[1:]))
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    log("  " + json.dumps([{k: r[k] for k in ("latency_ms", "python", "sync", "ratio")} for r in result["rows"]]))
    return result


def verify() -> None:
    """The verify section: `scripts/bench_verify.py` under the project's venv (moto, the OSS SDK),
    which measures and rewrites its own section of BENCHMARKS.md (about 10 minutes)."""
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "scripts/bench_verify.py"]
    log("running: " + " ".join(cmd[1:]))
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    subprocess.run(cmd, cwd=ROOT, check=True, env=env)


def main() -> int:
    cargo_build()
    only = set(sys.argv[1:])
    data = Path(tempfile.mkdtemp(prefix="s3-oss-sync-bench-"))
    servers = Servers(data)
    results: dict = {}
    try:
        r = Runner(servers)
        if not only or only & {"small", "cold", "scaling", "batch"}:
            seed_small(r)
        for name, step in (("large", lambda: large(r, servers)),
                           ("small", lambda: small(r, servers)),
                           ("cold", lambda: cold(r)),
                           ("scaling", lambda: scaling(r, servers)),
                           ("budget", lambda: budget(r, servers)),
                           ("batch", lambda: batch_sizes(r, servers)),
                           ("parallel", lambda: parallel(r, servers))):
            if not only or name in only:
                results[name] = step()
        if not only or "merge" in only:
            results["merge"] = report_merge(r)
        if not only or "fanout" in only:
            results["fanout"] = fanout()
        if not only or "peer" in only:
            results["peer"] = peer()
        results["commands"] = r.commands
        results["latency_ms"] = LATENCY_MS
    finally:
        servers.stop()
        shutil.rmtree(data, ignore_errors=True)
    (ROOT / "target" / "bench-results.json").write_text(json.dumps(results, indent=1))
    import bench_report  # noqa: E402  (beside this script)
    if only == {"verify"}:
        verify()
        return 0
    if only and only <= {"budget", "parallel", "fanout", "peer", "small", "large", "batch", "cold"}:
        # These sections stand alone: regenerated in place, the rest left as it is. The cost
        # section follows the small-object and batch-size figures, when both were measured now.
        path = ROOT / "BENCHMARKS.md"
        text = path.read_text()
        names = set(only)
        if "large" in names:
            names.add("large-memory")
        if {"small", "batch"} <= names:
            names.add("cost")
        # In the order of their numbers, so a section added anew lands after those before it.
        for name in sorted(names, key=bench_report.section_number):
            text = bench_report.splice(text, name, results)
        path.write_text(text)
        log(f"rewrote the {', '.join(sorted(only))} section(s) of BENCHMARKS.md")
        return 0
    if only:
        log("partial run: figures in target/bench-results.json, BENCHMARKS.md left as it is")
        return 0
    (ROOT / "BENCHMARKS.md").write_text(bench_report.render(results, machine()))
    log("wrote BENCHMARKS.md")
    verify()
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
