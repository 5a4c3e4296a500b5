"""Copies larger than an invocation can move, end to end on the local stack: a 1 GiB object copied
by `sync poll --invocation-timeout 5` through an OSS emulator capped per connection, so that each
invocation moves about 200 MiB (less on a busy machine), continues over several deliveries without
uploading a finished part twice (only parts dropped in flight at a stop are in doubt); an object overwritten during its copy ends as the new version, the old upload aborted."""

import hashlib
import io
import re
import time

import alibabacloud_oss_v2 as oss
import pytest
from alibabacloud_oss_v2.crc import Crc64
from boto3.s3.transfer import TransferConfig

from conftest import oss_client
from stack import SyncTask
from test_limits_e2e import body_for, emulator_json, set_faults, wait_until

MIB = 1024 * 1024

# One after another on one pytest-xdist worker (`--dist loadgroup`): each moves hundreds of MiB
# through moto and a bandwidth-capped emulator, and the first bounds what an invocation moves.
pytestmark = [pytest.mark.long, pytest.mark.xdist_group("large-copies")]


def upload(task: SyncTask, key: str, data: bytes):
    """A multipart upload to S3 (64 MiB parts), as a large object arrives; moto notifies the queue."""
    task.s3.upload_fileobj(io.BytesIO(data), task.source, key,
                           Config=TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB))


def crc64(data: bytes) -> int:
    c = Crc64(0)
    c.update(data)
    return c.sum64()


def checkpoints(task: SyncTask) -> list[str]:
    listed = task.s3.list_objects_v2(Bucket=task.results, Prefix="results-checkpoints/")
    return [o["Key"] for o in listed.get("Contents", [])]


def records_for(task: SyncTask, key: str) -> list[dict]:
    return sorted((r for r in task.records() if r.get("source_key") == key), key=lambda r: r["processed_at"])


def test_a_one_gib_copy_continues_over_several_invocations_and_sends_no_finished_part_twice(moto, emulator):
    task = SyncTask(moto, emulator, visibility=30, max_receive=3, OSS_PART_SIZE_MIB="16",
                    OSS_PARTS_IN_FLIGHT="4", SQS_MAX_RECEIVE_COUNT="3")
    key = "large/one-gib.bin"
    data = body_for("one gib", 1024 * MIB)
    upload(task, key, data)
    # 20 MiB/s per connection, four parts in flight: 80 MiB/s; a 5 s invocation copies for about
    # 3.6 s (the rest is kept for the checkpoint, the records and the answer): at most 290 MiB.
    set_faults(emulator, upload_bytes_per_sec=20 * MIB)
    before = emulator_json(emulator, "stats")["parts_stored"]
    started = time.time()
    try:
        assert task.run(max_seconds=900, args=("--invocation-timeout", "5")) == 0
    finally:
        set_faults(emulator)
    took = time.time() - started
    mine = records_for(task, key)
    seen = [(r["outcome"], r.get("error_code"), r["bytes_moved"] // MIB) for r in mine]
    progress = [r for r in mine if r["outcome"] == "in_progress"]
    copied = [r for r in mine if r["outcome"] == "copied"]
    assert len(copied) == 1, f"{took:.0f} s: {seen}"
    assert len(progress) >= 3, f"{len(progress)} continuations in {took:.0f} s: {seen}"
    assert not [r for r in mine if r["outcome"] in ("failed", "invalid")], seen
    # A completion still in flight at a cut-off may land after its job was stopped (a loaded
    # machine): that delivery is recorded deferred with the bytes its parts moved, its message
    # comes again and is handed to a recheck (deferred, Rechecking), and the first job to find
    # the object complete records the copy. Nothing else defers.
    deferred = [r for r in mine if r["outcome"] == "deferred"]
    cut = [r for r in deferred if r["error_code"] == "InvocationDeadline"]
    assert len(cut) <= 1, seen
    assert all(r["error_code"] == "Rechecking" and not r["bytes_moved"]
               for r in deferred if r not in cut), seen
    moved = [r["bytes_moved"] for r in progress + copied + cut if r["bytes_moved"]]
    assert sum(moved) == len(data), seen
    # An invocation moves several parts in flight, not one (the pace does not stop a copy after
    # its first part), and no more than its 4 connections at 20 MiB/s can move before its cut-off.
    # (How much each moves is load-dependent: about 200 MiB on an idle machine, 64 MiB on a busy
    # one; throughput belongs to `make bench`.)
    middle = sorted(moved)[len(moved) // 2]
    assert 2 * 16 * MIB <= middle <= 320 * MIB, seen
    assert all(not r["final"] for r in progress + cut) and copied[0]["final"], seen
    # Every part once (64 parts of 16 MiB), but for parts in flight when a run stopped: dropped, in
    # doubt (one may land after the next run listed the upload's parts, and is then sent again),
    # which the records name (a job cut off whole had at most its 4 in flight).
    in_doubt = sum(int(n) for r in progress
                   for n in re.findall(r"(\d+) part\(s\) in flight", r.get("error_message") or ""))
    in_doubt += 4 * len(cut)
    stored = emulator_json(emulator, "stats")["parts_stored"] - before
    assert 64 <= stored <= 64 + in_doubt, (stored, in_doubt, seen)
    assert emulator_json(emulator, "uploads")["in_progress"] == 0
    assert checkpoints(task) == []
    # Bytes and CRC-64 equal to the source's (the SDK also checks the CRC-64 header on download).
    got = oss_client(emulator.endpoint).get_object(oss.GetObjectRequest(bucket=task.dest, key=key))
    body = got.body.read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    source_crc = crc64(data)
    assert int(got.headers["x-oss-hash-crc64ecma"]) == source_crc == int(copied[0]["crc64"])
    print(f"1 GiB in {len(moved)} invocations, {took:.0f} s; records: {seen}")


def test_b_an_object_overwritten_during_its_copy_ends_as_the_new_version(moto, emulator):
    task = SyncTask(moto, emulator, visibility=30, max_receive=3, OSS_PART_SIZE_MIB="8",
                    OSS_PARTS_IN_FLIGHT="2", SQS_MAX_RECEIVE_COUNT="3")
    key = "large/overwritten.bin"
    old, new = body_for("old", 256 * MIB), body_for("new", 96 * MIB + 12345)
    upload(task, key, old)
    set_faults(emulator, upload_bytes_per_sec=8 * MIB)
    p = task.poll(max_seconds=600, args=("--invocation-timeout", "5"))
    try:
        wait_until(lambda: [r for r in records_for(task, key) if r["outcome"] == "in_progress"], 120,
                   "the first continuation")
        assert len(checkpoints(task)) == 1
        upload(task, key, new)
        assert p.wait(timeout=660) == 0
    finally:
        set_faults(emulator)
        if p.poll() is None:
            p.kill()
    got = oss_client(emulator.endpoint).get_object(oss.GetObjectRequest(bucket=task.dest, key=key))
    assert hashlib.sha256(got.body.read()).digest() == hashlib.sha256(new).digest()
    journal = emulator_json(emulator, "journal")
    ops = [e["op"] for e in journal if e["key"] == key]
    assert "abort" in ops, ops
    assert ops[-1] == "complete", ops
    assert emulator_json(emulator, "uploads")["in_progress"] == 0
    assert checkpoints(task) == []
    mine = records_for(task, key)
    assert not [r for r in mine if r["outcome"] in ("failed", "invalid")], mine


def test_c_a_large_copy_fans_out_to_range_jobs_on_two_pollers_and_completes_once(moto, emulator):
    task = SyncTask(moto, emulator, visibility=30, max_receive=3, OSS_PART_SIZE_MIB="16",
                    OSS_PARTS_IN_FLIGHT="2", SQS_MAX_RECEIVE_COUNT="3",
                    FANOUT_THRESHOLD_MIB="128", FANOUT_RANGE_MIB="64")
    key = "large/fanned-out.bin"
    data = body_for("fanned out", 256 * MIB + 4321)
    upload(task, key, data)
    set_faults(emulator, upload_bytes_per_sec=16 * MIB)
    before = emulator_json(emulator, "stats")["parts_stored"]
    pollers = [task.poll(max_seconds=300, batch_size=1, args=("--invocation-timeout", "30")) for _ in range(2)]
    try:
        for p in pollers:
            assert p.wait(timeout=360) == 0
    finally:
        set_faults(emulator)
        for p in pollers:
            if p.poll() is None:
                p.kill()
    mine = records_for(task, key)
    kinds = [(r["outcome"], r.get("error_code")) for r in mine]
    # moto notifies a multipart upload twice (ObjectCreated:Put and :CompleteMultipartUpload; S3
    # sends the second only): the first message fans the copy out, the duplicate sends nothing.
    fanned = [r["error_message"] for r in mine if r.get("error_code") == "FannedOut"]
    assert sorted(re.search(r"\((\d+) sent now\)", m).group(1) for m in fanned) == ["0", "5"], fanned
    # Five range jobs (17 parts, 4 to a range): one completes, the others say their range is up.
    copied = [r for r in mine if r["outcome"] == "copied"]
    uploaded = [r for r in mine if r.get("error_code") == "RangeUploaded"]
    assert len(copied) == 1 and len(uploaded) == 4, kinds
    assert sum(r["bytes_moved"] for r in copied + uploaded) == len(data)
    assert not [r for r in mine if r["outcome"] in ("failed", "deferred", "invalid")], kinds
    assert emulator_json(emulator, "stats")["parts_stored"] - before == 17
    assert emulator_json(emulator, "uploads")["in_progress"] == 0
    assert checkpoints(task) == [], "checkpoint, range records and claim are gone"
    got = oss_client(emulator.endpoint).get_object(oss.GetObjectRequest(bucket=task.dest, key=key))
    assert hashlib.sha256(got.body.read()).digest() == hashlib.sha256(data).digest()
    assert int(got.headers["x-oss-hash-crc64ecma"]) == crc64(data) == int(copied[0]["crc64"])
