"""The sync function end to end under Lambda's real limits: crafted S3 events with sequencers (moto's
own notifications carry no `sequencer`, `versionId` or `userIdentity`), a slow OSS, S3 answering
503 through a fault proxy, invocation deadlines, and tags OSS refuses. Each test is independent."""

import hashlib
import json
import time
import urllib.parse
from collections import Counter

import alibabacloud_oss_v2 as oss
import pytest

from conftest import oss_client
from fault_proxy import FaultProxy
from stack import AWS_REGION, SyncTask, without_rechecks

MIB = 1024 * 1024


def body_for(seed: str, size: int) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def emulator_json(emulator, path: str, data: dict | None = None):
    return emulator.control(path, data, timeout=10)


def set_faults(emulator, **faults):
    emulator_json(emulator, "faults", faults)


def s3_event(bucket: str, key: str, size: int, etag: str | None = None, sequencer: str | None = None,
             name: str = "ObjectCreated:Put", when: str | None = None, version_id: str | None = None) -> dict:
    """One S3 event record as S3 sends it (key URL-encoded, sequencer, version, identity)."""
    obj = {"key": urllib.parse.quote_plus(key, safe="/"), "size": size}
    if etag:
        obj["eTag"] = etag
    if sequencer:
        obj["sequencer"] = sequencer
    if version_id:
        obj["versionId"] = version_id
    return {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": AWS_REGION,
        "eventTime": when or time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventName": name, "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "s3-oss-sync",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}, "object": obj},
    }


def send(task: SyncTask, queue_url: str, *records: dict) -> str:
    """Sends one message holding `records`; returns its message id."""
    return task.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": list(records)}))["MessageId"]


def crafted_only(task: SyncTask):
    """No more notifications from moto: the test sends its own events. The queue is emptied of
    the test event sent when the notification was set."""
    task.s3.put_bucket_notification_configuration(Bucket=task.source, NotificationConfiguration={})
    task.sqs.purge_queue(QueueUrl=task.queue_url)


def put(task: SyncTask, key: str, data: bytes, **extra) -> str:
    """PUTs an object; returns its ETag without quotes."""
    return task.s3.put_object(Bucket=task.source, Key=key, Body=data, **extra)["ETag"].strip('"')


def oss_object(emulator, bucket: str, key: str):
    r = oss_client(emulator.endpoint).get_object(oss.GetObjectRequest(bucket=bucket, key=key))
    return r, r.body.read()


def wait_until(check, timeout: float, what: str):
    deadline = time.time() + timeout
    while not (value := check()):
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
    return value


@pytest.mark.long
def test_a_slow_old_copy_landing_after_the_newer_one_is_repaired_on_redelivery(moto, emulator):
    """Defect 1 end to end. P1 copies version A slowly; P2 copies B meanwhile; A's upload lands
    after B's, and P1's post-upload source HEAD fails (503 from S3, beyond the SDK's retries), so
    A's message is delivered again, and that delivery hands it to a recheck. The recheck must not
    trust the marker A's message wrote (A's sequencer is the event's own): it confirms against
    the source and copies B.

    Checked against the code before the fix: `sync` built at `0a77b70` (which settled an event
    from the destination's marker alone whenever the marker's sequencer was not below the
    event's), run by this test without `--invocation-timeout` (that version lacks it), records
    A's first delivery `failed` (Http503, the source HEAD) and its redelivery `skipped` ("the
    destination already holds this version"); OSS keeps A and the assertion on OSS's bytes below
    fails."""
    # Visibility 30 s: P1's slow first delivery (about 15 s) ends before it comes back, and the
    # redelivery waits until the test has stopped the 503s.
    task = SyncTask(moto, emulator, visibility=30, max_receive=10)
    crafted_only(task)
    q2 = task.sqs.create_queue(QueueName="task-1-second", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    proxy = FaultProxy(moto.endpoint).start()
    p1 = None
    try:
        key = "defect/one version late.bin"
        a = body_for("A", 300_000)
        etag_a = put(task, key, a, ContentType="application/x-a", Metadata={"v": "A"})
        # Every source HEAD of the key answers 503 SlowDown: P1's first round needs none (the
        # destination is empty, so it GETs), its post-upload confirmation does.
        heads = proxy.fail("HEAD", task.source, key)
        # Every OSS request waits 5 s before it is handled (taken on arrival).
        set_faults(emulator, latency_ms=5000)
        before = emulator_json(emulator, "stats")["requests"]
        m1 = send(task, task.queue_url, s3_event(task.source, key, len(a), etag_a, "0055AED6DCD90281A1",
                                                  version_id="vA"))
        p1 = task.poll(max_seconds=150, args=("--invocation-timeout", "25"),
                       AWS_ENDPOINT_URL_S3=proxy.endpoint)
        # P1's GET of A went through the proxy, and its PUT reached the emulator (the destination
        # HEAD was the first request, the upload the second).
        proxy.wait_for(method="GET", bucket=task.source, key=key, status=200, timeout=30)
        wait_until(lambda: emulator_json(emulator, "stats")["requests"] >= before + 2, 30, "A's upload to arrive")
        # B is written and copied by another poller while A's upload waits.
        set_faults(emulator)
        b = body_for("B", 120_000)
        etag_b = put(task, key, b, ContentType="application/x-b", Metadata={"v": "B"})
        m2 = send(task, q2, s3_event(task.source, key, len(b), etag_b, "0055AED6DCD90281A2", version_id="vB"))
        # P2 is stopped once B's message is done: the recheck its copy left (which would repair
        # A's late write before this test sees it) waits past P2's long invocation timeout.
        p2 = task.poll(max_seconds=60, queue_url=q2, until_empty=False, args=("--invocation-timeout", "120"))
        try:
            wait_until(lambda: [r for r in task.records() if r["message_id"] == m2], 30, "B's record")
            wait_until(lambda: task.queue_depths(q2) == (0, 0), 30, "B's message to be acknowledged")
        finally:
            p2.terminate()
            p2.wait(timeout=60)
        assert oss_object(emulator, task.dest, key)[1] == b, "P2 copied B before A landed"
        # A's upload lands late, over B ...
        wait_until(lambda: oss_object(emulator, task.dest, key)[1] == a, 20, "A's late upload to land over B")
        # ... and P1's confirmation fails (three attempts, the SDK's standard retries).
        wait_until(lambda: [r for r in task.records() if r["message_id"] == m1], 60, "A's first record")
        assert heads.failed >= 3, heads.failed
        assert proxy.count("GET", task.source, key, 200) == 1
        proxy.clear()
        # The redelivery (after the visibility timeout) finds the marker its own message wrote.
        assert p1.wait(timeout=150) == 0
        p1 = None
    finally:
        if p1 is not None:
            p1.kill()
            p1.wait()
        proxy.stop()
        set_faults(emulator)

    r, got = oss_object(emulator, task.dest, key)
    assert got == b
    assert r.content_type == "application/x-b"
    meta = {k.lower(): v for k, v in (r.metadata or {}).items()}
    assert meta["v"] == "B" and meta["s3sync-source-etag"] == etag_b
    assert task.queue_depths(task.queue_url) == (0, 0)
    assert task.queue_depths(q2) == (0, 0)
    assert task.queue_depths(task.dlq_url) == (0, 0)
    records = task.records()
    first = sorted((r for r in records if r["message_id"] == m1), key=lambda r: (r["receive_count"], r["processed_at"]))
    assert first[0]["outcome"] == "failed" and first[0]["final"] is False, first
    assert first[0]["receive_count"] == 1 and first[0]["sequencer"] == "0055AED6DCD90281A1", first
    # The redelivery hands A's events to a recheck (delayed past P1's invocation timeout); P1's
    # write of A had left one too. A recheck trusts no marker written for A's message: the first
    # to run reads the source and copies B, the others find B.
    assert (first[-1]["outcome"], first[-1]["error_code"], first[-1]["final"]) == ("deferred", "Rechecking", False), first
    assert first[-1]["receive_count"] >= 2, first
    rechecks = [r for r in records if r.get("recheck_of") == m1]
    # (One that ran while the source HEADs still failed is recorded failed and came again.)
    copied = [r for r in rechecks if r["outcome"] == "copied"]
    assert len(copied) == 1 and copied[0]["final"] is True, rechecks
    assert copied[0]["source_etag"] == etag_b and copied[0]["message_id"] != m1, rechecks
    assert {r["outcome"] for r in rechecks} <= {"copied", "skipped", "failed", "deferred"}, rechecks
    second = [r for r in records if r["message_id"] == m2]
    assert [(r["outcome"], r["source_etag"]) for r in second] == [("copied", etag_b)], second


def test_b_forty_records_of_one_key_half_sequenced_half_backfill(moto, emulator):
    # Visibility 30 s, so the default invocation timeout (÷ 6) leaves room for a copy.
    task = SyncTask(moto, emulator, visibility=30)
    crafted_only(task)
    key = "mixed/one key"
    data = body_for("mixed", 50_000)
    etag = put(task, key, data, Metadata={"v": "only"})
    records = []
    for i in range(40):
        when = f"2026-11-30T12:00:{i % 60:02d}.{(i * 37) % 1000:03d}Z"
        if i % 2:
            records.append(s3_event(task.source, key, len(data), etag, sequencer=f"0055AED6DCD9{i:08X}", when=when))
        else:
            records.append(s3_event(task.source, key, len(data), etag, name="ObjectCreated:Backfill", when=when))
    records.reverse()  # newest first in the message: order must come from the evidence
    message = send(task, task.queue_url, *records)
    assert task.run(max_seconds=120) == 0
    assert oss_object(emulator, task.dest, key)[1] == data
    assert task.queue_depths(task.queue_url) == (0, 0)
    assert task.queue_depths(task.dlq_url) == (0, 0)
    got = [r for r in task.records() if r["message_id"] == message]
    assert len(got) == 40, len(got)
    outcomes = [r["outcome"] for r in got]
    assert outcomes.count("copied") == 1 and outcomes.count("superseded") == 39, outcomes
    assert all(r["final"] for r in got)
    assert "panicked" not in task.log.read_text()


def test_c_a_copy_stopped_at_the_invocation_deadline_keeps_its_parts_and_continues(moto, emulator):
    """A copy in parts that does not fit in one invocation stops before the deadline with its
    parts kept (checkpoint, open upload), is recorded `in_progress`, and continues in the next
    delivery from where it stopped; the small object of the same batch is copied meanwhile."""
    task = SyncTask(moto, emulator, visibility=8, max_receive=3, OSS_PART_SIZE_MIB="1", OSS_PARTS_IN_FLIGHT="1",
                    SQS_MAX_RECEIVE_COUNT="3")
    crafted_only(task)
    big, small = "limits/big.bin", "limits/small.txt"
    big_data, small_data = body_for("big", 16 * MIB), b"small and quick"
    big_etag, small_etag = put(task, big, big_data), put(task, small, small_data)
    # 300 ms per OSS request: 16 one-MiB parts in a row need more than 4.8 s; a batch has 3.
    set_faults(emulator, latency_ms=300)
    before = emulator_json(emulator, "stats")["parts_stored"]
    m_big = send(task, task.queue_url, s3_event(task.source, big, len(big_data), big_etag, "0055AED6DCD90281B1"))
    m_small = send(task, task.queue_url, s3_event(task.source, small, len(small_data), small_etag,
                                                  "0055AED6DCD90281B2"))
    try:
        assert task.run(max_seconds=120, args=("--invocation-timeout", "3")) == 0
    finally:
        set_faults(emulator)
    assert oss_object(emulator, task.dest, small)[1] == small_data
    assert oss_object(emulator, task.dest, big)[1] == big_data
    records = [r for r in task.records() if r.get("source_key") == big]
    kinds = [r["outcome"] for r in sorted(records, key=lambda r: r["processed_at"])]
    progress = [r for r in records if r["outcome"] == "in_progress"]
    assert len(progress) >= 2 and kinds.count("copied") == 1, kinds
    # Each continuation stands for the big message, and each moved bytes; together all of them.
    assert all(r.get("recheck_of", r["message_id"]) == m_big for r in records), records
    assert all(r["bytes_moved"] > 0 and not r["final"] for r in progress), progress
    assert sum(r["bytes_moved"] for r in records) == len(big_data)
    # No part was sent twice, nothing is left open, the checkpoint is gone.
    assert emulator_json(emulator, "stats")["parts_stored"] - before == 16
    assert emulator_json(emulator, "uploads")["in_progress"] == 0
    listed = task.s3.list_objects_v2(Bucket=task.results, Prefix="results-checkpoints/")
    assert listed.get("KeyCount", 0) == 0, listed
    assert [r["outcome"] for r in task.records() if r["message_id"] == m_small] == ["copied"]


def test_d_tags_oss_refuses_are_dropped_and_named_the_object_still_copied(moto, emulator):
    task = SyncTask(moto, emulator, visibility=30, SYNC_TAGS="1")
    key = "tags/owned.txt"
    data = b"tagged object"
    task.s3.put_object(Bucket=task.source, Key=key, Body=data, Tagging="owner=ann%40example.com&team=data")
    assert task.run(max_seconds=120) == 0
    assert task.queue_depths(task.queue_url) == (0, 0)
    assert oss_object(emulator, task.dest, key)[1] == data
    client = oss_client(emulator.endpoint)
    tags = client.get_object_tagging(oss.GetObjectTaggingRequest(bucket=task.dest, key=key))
    assert {(t.key, t.value) for t in tags.tag_set.tags} == {("team", "data")}
    (record,) = [r for r in without_rechecks(task.records()) if r.get("source_key") == key]
    assert record["outcome"] == "copied" and record["final"] is True
    dropped = record.get("dropped_metadata", [])
    assert len(dropped) == 1 and "owner" in dropped[0] and "team" not in dropped[0], dropped
