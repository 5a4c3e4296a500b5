"""Fan-out benchmark: one 2 GiB object copied by one `sync poll` process, then by four on the same
queue, through an OSS emulator that caps each connection's upload bandwidth (as a long link
does). The copy fans out to range jobs (FANOUT_THRESHOLD_MIB below the object's size), so four
processes upload four ranges at once. Measured: from the event sent to the object complete in
OSS. Reports, asserts nothing.

Run alone with `.venv/bin/python scripts/bench_fanout.py` (release binaries, moto and the emulator on
127.0.0.1); `make bench` runs it as its `fanout` section."""

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

import stack  # noqa: E402
from stack import STACK_DIR, Moto, OssEmulator, SyncTask  # noqa: E402

MIB = 1024 * 1024
OBJECT_MIB = 2048
PART_MIB = 16
PARTS_IN_FLIGHT = 4
# Bytes per second per connection: low enough that the link, not this machine's cores (which also
# serve moto's S3 in Python and the emulator), limits four processes.
CAP = 2 * MIB
RANGE_MIB = 256
PROCESSES = (1, 4)


def release(name: str) -> str:
    path = ROOT / "target" / "release" / name
    if not path.exists():
        raise RuntimeError(f"{path} is missing: cargo build --release -p {name}")
    return str(path)


def body(size: int) -> bytes:
    block = hashlib.sha256(b"fan-out").digest() * 4096
    return (block * (size // len(block) + 1))[:size]


def one_run(moto: Moto, emulator: OssEmulator, processes: int, data: bytes) -> dict:
    moto.reset()
    emulator.reset()
    task = SyncTask(moto, emulator, visibility=300, max_receive=5, OSS_PART_SIZE_MIB=str(PART_MIB),
                    OSS_PARTS_IN_FLIGHT=str(PARTS_IN_FLIGHT), SQS_MAX_RECEIVE_COUNT="5",
                    FANOUT_THRESHOLD_MIB=str(OBJECT_MIB // 2), FANOUT_RANGE_MIB=str(RANGE_MIB))
    # One event, sent by hand: moto notifies a multipart upload twice.
    task.s3.put_bucket_notification_configuration(Bucket=task.source, NotificationConfiguration={})
    from boto3.s3.transfer import TransferConfig

    task.s3.upload_fileobj(io.BytesIO(data), task.source, "big.bin",
                           Config=TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB))
    etag = task.s3.head_object(Bucket=task.source, Key="big.bin")["ETag"].strip('"')
    task.sqs.purge_queue(QueueUrl=task.queue_url)
    emulator.control("faults", {"upload_bytes_per_sec": CAP})
    parts_before = emulator.control("stats")["parts_stored"]
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:CompleteMultipartUpload",
              "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
              "s3": {"bucket": {"name": task.source}, "object": {"key": "big.bin", "size": len(data), "eTag": etag}}}
    env = task.env()
    env["RUST_LOG"] = "warn"
    logs = [open(STACK_DIR / f"bench-fanout-{processes}-{i}.log", "w") for i in range(processes)]
    started = time.monotonic()
    task.sqs.send_message(QueueUrl=task.queue_url, MessageBody=json.dumps({"Records": [record]}))
    pollers = [subprocess.Popen([release("sync"), "poll", "--queue-url", task.queue_url, "--batch-size", "1",
                                 "--max-seconds", "900", "--invocation-timeout", "300"],
                                stdout=logs[i], stderr=subprocess.STDOUT, env=env) for i in range(processes)]
    oss = None
    try:
        while time.monotonic() - started < 900:
            # The emulator's journal lists the completion when it is stored.
            journal = emulator.control("journal")
            if any(e["op"] == "complete" and e["key"] == "big.bin" for e in journal):
                oss = time.monotonic() - started
                break
            time.sleep(0.2)
        # The completing range job's record follows the completion.
        while oss is not None and time.monotonic() - started < oss + 60:
            if any(r["outcome"] == "copied" for r in task.records() if r.get("source_key") == "big.bin"):
                break
            time.sleep(0.5)
    finally:
        for p in pollers:
            p.terminate()
        for p in pollers:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
        emulator.control("faults", {})
    if oss is None:
        raise RuntimeError(f"the copy with {processes} process(es) did not finish in 900 s")
    stats = emulator.control("stats")
    records = [r for r in task.records() if r.get("source_key") == "big.bin"]
    copied = [r for r in records if r["outcome"] == "copied"]
    return {
        "processes": processes,
        "seconds": round(oss, 2),
        "mib_per_sec": round(len(data) / MIB / oss, 1),
        "parts_stored": stats["parts_stored"] - parts_before,
        "parts": len(data) // (PART_MIB * MIB) + (1 if len(data) % (PART_MIB * MIB) else 0),
        "copied_records": len(copied),
        "ranges_uploaded": sum(1 for r in records if r.get("error_code") == "RangeUploaded"),
        "crc64_checked": bool(copied) and copied[0].get("crc64") is not None,
    }


def measure() -> dict:
    data = body(OBJECT_MIB * MIB)
    # The release emulator: the debug build's MD5 and CRC-64 would be the bottleneck.
    stack.emulator_binary = lambda: Path(release("oss-emulator"))
    moto, emulator = Moto(), OssEmulator()
    try:
        runs = [one_run(moto, emulator, n, data) for n in PROCESSES]
    finally:
        emulator.stop()
        moto.stop()
    one, four = runs
    return {
        "object_mib": OBJECT_MIB, "part_mib": PART_MIB, "parts_in_flight": PARTS_IN_FLIGHT,
        "cap_mib_per_sec": CAP / MIB, "range_mib": RANGE_MIB, "runs": runs,
        "speed_up": round(one["seconds"] / four["seconds"], 2), "cores": os.cpu_count(),
    }


def render(result: dict) -> str:
    rows = "\n".join(
        f"| {r['processes']} | {r['seconds']} s | {r['mib_per_sec']} | "
        f"{r['processes'] * result['parts_in_flight'] * result['cap_mib_per_sec']:.0f} | "
        f"{r['parts_stored']} of {r['parts']} | {r['ranges_uploaded'] + r['copied_records']} |"
        for r in result["runs"])
    return f"""## 9. Fan-out: one {result['object_mib'] // 1024} GiB object over 1 and 4 `sync poll` processes

The object is copied through the local stack (moto for S3 and SQS, the OSS emulator capped at
{result['cap_mib_per_sec']:.0f} MiB/s per connection) by one `sync poll --batch-size 1` process, then by four on the
same queue. It fans out (`FANOUT_THRESHOLD_MIB={result['object_mib'] // 2}`) to range jobs of
{result['range_mib']} MiB; each process uploads {result['parts_in_flight']} parts of {result['part_mib']} MiB at once. Time: from the event sent
to the completion stored in OSS. The cap is low because this machine's {result['cores']} cores also serve
moto's S3 (Python) and the emulator: at 8 MiB/s per connection four processes were CPU-bound
(1.55×), which measures the machine, not the fan-out.

| processes | time | MiB/s | ceiling (processes × {result['parts_in_flight']} × cap, MiB/s) | parts stored | range jobs recorded |
| --- | --- | --- | --- | --- | --- |
{rows}

**Speed-up with four processes: {result['speed_up']}×.**

Command: `.venv/bin/python scripts/bench_fanout.py` (release `sync` and `oss-emulator`).
"""


if __name__ == "__main__":
    res = measure()
    print(json.dumps(res))
    print(render(res))
