"""The sync function end to end: moto's real S3 notifications -> SQS -> `sync poll` -> the OSS
emulator, checked with the official OSS SDK and against the results store."""

import hashlib
import json
import random
import threading
import time
import urllib.request
from collections import Counter

import pytest

from conftest import oss_client
from stack import SyncTask, without_rechecks

MIB = 1024 * 1024
AWKWARD = ["plain.txt", "a dir/with space.txt", "plus+sign", "percent%41", "ü/日本語.txt", "q?x=1&y#z",
           "trailing/", "tab\tkey", "semi;colon,comma", "emoji-😀", "deep/" * 20 + "leaf", "~tilde*star'quote",
           "dot./..x", "(paren)[bracket]{brace}", "back\\slash"]


def body_for(i: int, size: int) -> bytes:
    seed = hashlib.sha256(str(i).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def oss_get(emulator, bucket, key):
    import alibabacloud_oss_v2 as oss

    r = oss_client(emulator.endpoint).get_object(oss.GetObjectRequest(bucket=bucket, key=key))
    return r, r.body.read()


def oss_keys(emulator, bucket) -> set[str]:
    import alibabacloud_oss_v2 as oss

    keys, token = set(), None
    client = oss_client(emulator.endpoint)
    while True:
        r = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket, continuation_token=token))
        keys.update(o.key for o in r.contents or [])
        if not r.is_truncated:
            return keys
        token = r.next_continuation_token


def set_faults(emulator, **faults):
    req = urllib.request.Request(f"{emulator.endpoint}/_emulator/faults", data=json.dumps(faults).encode(),
                                 method="PUT", headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()


def assert_mirrors(task, emulator, dest_prefix=""):
    """Every source object is in OSS with the same bytes and metadata; nothing else is."""
    s3 = task.s3
    source_keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=task.source):
        source_keys.update(o["Key"] for o in page.get("Contents", []))
    assert oss_keys(emulator, task.dest) == {dest_prefix + k for k in source_keys}
    for key in source_keys:
        src = s3.get_object(Bucket=task.source, Key=key)
        data = src["Body"].read()
        r, got = oss_get(emulator, task.dest, dest_prefix + key)
        assert hashlib.md5(got).digest() == hashlib.md5(data).digest(), key
        assert r.content_type == src.get("ContentType"), key
        meta = {k.lower(): v for k, v in (r.metadata or {}).items()}
        for k, v in src.get("Metadata", {}).items():
            if all(c.isalnum() or c == "-" for c in k):
                assert meta.get(k.lower()) == v, (key, k)
            else:
                assert k.lower() not in meta, (key, k)  # OSS cannot carry it; the record says so
        assert meta.get("s3sync-source-etag") == src["ETag"].strip('"'), key
    return source_keys


@pytest.mark.long
def test_200_objects_arrive_intact_with_one_record_per_event(moto, emulator):
    task = SyncTask(moto, emulator, DEST_PREFIX="mirror/", SYNC_TAGS="true", STORAGE_CLASS_MAP="STANDARD_IA=IA")
    sizes = [0, 1, 100, 4096, 65536, MIB, 5 * MIB, 8 * MIB + 1, 20 * MIB, 64 * MIB]
    rng = random.Random(7)
    objects = {}
    for i in range(200):
        key = f"{AWKWARD[i % len(AWKWARD)]}-{i}" if i % 3 else f"set/{i:03d}/{AWKWARD[i % len(AWKWARD)]}"
        size = sizes[i % len(sizes)] if i % 10 < 8 or i < 20 else rng.randint(0, 200_000)
        if size >= 20 * MIB and i >= 20:
            size = rng.randint(0, 300_000)  # two 64 MiB and two 20 MiB objects, the rest smaller
        objects[key] = size
    for i, (key, size) in enumerate(objects.items()):
        extra = {"ContentType": "application/x-test", "Metadata": {"index": str(i), "origin": "s3"}}
        if i % 7 == 0:
            extra.update(CacheControl="max-age=60", ContentDisposition='attachment; filename="x.bin"',
                         ContentEncoding="identity", ContentLanguage="en")
        if i % 11 == 0:
            extra.update(Tagging="team=data%20eng&env=prod", StorageClass="STANDARD_IA")
            extra["Metadata"]["under_score"] = "not an OSS name"
        task.s3.put_object(Bucket=task.source, Key=key, Body=body_for(i, size), **extra)

    assert task.run() == 0
    assert task.queue_depths(task.queue_url) == (0, 0)
    assert task.queue_depths(task.dlq_url) == (0, 0)
    assert_mirrors(task, emulator, "mirror/")
    for i, (key, size) in enumerate(objects.items()):
        if i % 7 == 0:
            r, _ = oss_get(emulator, task.dest, "mirror/" + key)
            assert (r.cache_control, r.content_disposition, r.content_encoding) == \
                ("max-age=60", 'attachment; filename="x.bin"', "identity")

    import alibabacloud_oss_v2 as oss

    client = oss_client(emulator.endpoint)
    for i, key in enumerate(objects):
        if i % 11 == 0:
            tags = client.get_object_tagging(oss.GetObjectTaggingRequest(bucket=task.dest, key="mirror/" + key))
            assert {(t.key, t.value) for t in tags.tag_set.tags} == {("team", "data eng"), ("env", "prod")}
            head = client.head_object(oss.HeadObjectRequest(bucket=task.dest, key="mirror/" + key))
            assert head.storage_class == "IA"

    records = without_rechecks(task.records())
    for r in records:
        index = list(objects).index(r["source_key"]) if r.get("source_key") else None
        if index is not None and index % 11 == 0:
            assert r["dropped_metadata"] == [
                "x-amz-meta-under_score: name has characters OSS does not allow (only letters, digits and '-')"]
        else:
            assert "dropped_metadata" not in r
    # Exactly one record per event: 200 puts and the s3:TestEvent sent when the notification was set.
    assert len(records) == 201
    by_key = Counter(r.get("source_key") for r in records)
    assert all(by_key[k] == 1 for k in objects)
    assert Counter(r["outcome"] for r in records) == {"copied": 200, "ignored": 1}
    assert len({r["message_id"] for r in records}) == 201
    big = [r for r in records if r.get("size") == 64 * MIB]
    assert len(big) == 2 and all(r["bytes_moved"] == 64 * MIB and r["crc64"] for r in big)
    for r in records:
        if r["outcome"] == "copied":
            assert r["dest_key"] == "mirror/" + r["source_key"]
            # At least the source GET, the PUT and the source HEAD after; an object over 1 MiB
            # (or one in the fresh instance's first batch) reads the destination first as well.
            assert r["requests"] >= (3 if r["size"] <= MIB else 4) and r["attempts"] == 1


def drain_bodies(task) -> list[str]:
    bodies = []
    while True:
        msgs = task.sqs.receive_message(QueueUrl=task.queue_url, MaxNumberOfMessages=10,
                                        WaitTimeSeconds=1).get("Messages", [])
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(m["Body"])
            task.sqs.delete_message(QueueUrl=task.queue_url, ReceiptHandle=m["ReceiptHandle"])


@pytest.mark.long
def test_convergence_under_duplicates_shuffling_overwrites_and_deletes(moto, emulator):
    task = SyncTask(moto, emulator, SYNC_DELETES="true", visibility=5)
    s3 = task.s3
    keys = [f"c/{AWKWARD[i % len(AWKWARD)]}-{i}" for i in range(40)]
    for i, k in enumerate(keys):
        s3.put_object(Bucket=task.source, Key=k, Body=body_for(i, 1000 + i * 5000), Metadata={"v": "1"})
    # The real notifications, each delivered three times, in random order.
    bodies = drain_bodies(task)
    assert len(bodies) == 41
    copies = bodies * 3
    random.Random(3).shuffle(copies)
    for i in range(0, len(copies), 10):
        task.sqs.send_message_batch(QueueUrl=task.queue_url, Entries=[
            {"Id": str(j), "MessageBody": b} for j, b in enumerate(copies[i:i + 10])])
    # Every OSS request takes 150 ms longer, so overwrites land while copies are in flight.
    set_faults(emulator, latency_ms=150)
    rng = random.Random(5)

    def mutate():
        for n in range(60):
            k = keys[rng.randrange(10)]  # a few hot keys, overwritten again and again
            action = rng.random()
            if action < 0.6:
                s3.put_object(Bucket=task.source, Key=k, Body=body_for(1000 + n, rng.randint(0, 300_000)),
                              Metadata={"v": str(n + 2)})
            elif action < 0.8:
                s3.delete_object(Bucket=task.source, Key=k)
            else:
                s3.delete_object(Bucket=task.source, Key=k)
                s3.put_object(Bucket=task.source, Key=k, Body=b"re-created", Metadata={"v": "re"})
            time.sleep(0.05)
        for k in keys[30:35]:
            s3.delete_object(Bucket=task.source, Key=k)

    poller = task.poll(max_seconds=300)
    writer = threading.Thread(target=mutate)
    writer.start()
    writer.join()
    assert poller.wait(timeout=360) == 0
    set_faults(emulator)
    assert task.run() == 0  # whatever arrived after the first poller stopped
    assert task.queue_depths(task.queue_url) == (0, 0)
    assert task.queue_depths(task.dlq_url) == (0, 0)
    source_keys = assert_mirrors(task, emulator)
    assert not source_keys & set(keys[30:35])
    records = task.records()
    outcomes = Counter(r["outcome"] for r in records)
    # Duplicates are skipped; a create event handled after its object was deleted finds it gone
    # and removes the copy (superseded), so the delete event itself may find nothing to do:
    # copies were removed one way or the other.
    removed_by_create = [r for r in records if r["outcome"] == "superseded"
                         and r.get("error_message") == "the source object was deleted; the destination matches"]
    assert outcomes["skipped"] > 0 and outcomes["superseded"] > 0, outcomes
    assert outcomes["deleted"] + len(removed_by_create) > 0, outcomes
    # The only failure allowed is the bounded, transient "the source changed during every copy
    # round" (hot keys are overwritten every 50 ms while each OSS request takes 150 ms more); its
    # message comes back, and the mirror above shows it converged.
    assert {r["error_code"] for r in records if r["outcome"] == "failed"} <= {"SourceKeepsChanging"}, outcomes
    assert outcomes["invalid"] == 0, outcomes


@pytest.mark.long
def test_faults_nothing_acknowledged_without_a_record_and_the_poison_message_is_recorded_final_once(moto, emulator):
    # maxReceiveCount 10: a healthy message failing ten times in a row by chance is unlikely
    # (about 0.2 per delivery during faults). The poison message fails permanently, so it is
    # recorded final and acknowledged at once instead of going round to the DLQ.
    task = SyncTask(moto, emulator, OSS_MAX_ATTEMPTS="1", visibility=2, max_receive=10)
    s3 = task.s3
    keys = [f"f/{AWKWARD[i % len(AWKWARD)]}-{i}" for i in range(60)]
    for i, k in enumerate(keys):
        s3.put_object(Bucket=task.source, Key=k, Body=body_for(i, 500 * i))
    poison = "p/" + "x" * 1022  # 1024 bytes: S3 takes it, OSS cannot (at most 1023)
    s3.put_object(Bucket=task.source, Key=poison, Body=b"too long a key for OSS")
    # 10% of OSS requests fail with 500 or 503, and the client does not retry them itself.
    set_faults(emulator, error_rate=0.1, seed=11)
    # The results store is down for the first seconds.
    s3.delete_bucket(Bucket=task.results)

    def restore():
        time.sleep(3)
        s3.create_bucket(Bucket=task.results)

    healer = threading.Thread(target=restore)
    poller = task.poll(max_seconds=240)
    healer.start()
    healer.join()
    assert poller.wait(timeout=300) == 0
    stats = json.loads(urllib.request.urlopen(f"{emulator.endpoint}/_emulator/stats", timeout=10).read())
    assert stats["server_errors"] > 0, stats
    set_faults(emulator)

    assert task.queue_depths(task.queue_url) == (0, 0)
    assert task.queue_depths(task.dlq_url) == (0, 0)
    source_keys = set(keys) | {poison}
    mirrored = oss_keys(emulator, task.dest)
    assert mirrored == set(keys)
    for i, k in enumerate(keys):
        _, got = oss_get(emulator, task.dest, k)
        assert got == body_for(i, 500 * i), k

    records = task.records()
    # A redelivery hands its message over to a recheck (a new message, whose records name the one
    # it stands for): `deferred` `Rechecking`, then the recheck's own record.
    stands_for = lambda r: r.get("recheck_of") or r["message_id"]  # noqa: E731
    ok = [r for r in records if r["outcome"] not in ("failed", "invalid", "deferred")]
    failed = [r for r in records if r["outcome"] == "failed"]
    handed = {stands_for(r) for r in records if r.get("error_code") == "Rechecking"}
    finished = [r for r in records if r["outcome"] != "deferred" and r["final"]]
    undone = handed - {r["recheck_of"] for r in finished if r.get("recheck_of")}
    assert not undone, json.dumps([r for r in records if stands_for(r) in undone], indent=0)
    # 62 messages went in (61 object events and the test event); the poison one left the queue
    # with its final failure, every other one with a record that says it was done.
    assert len({stands_for(r) for r in ok}) == 61
    assert {r.get("source_key") for r in ok} == set(keys) | {None}
    assert source_keys - {poison} <= {r.get("source_key") for r in ok}
    # Failures happened, were recorded, and their messages came back and landed.
    assert any(r["source_key"] != poison for r in failed), "no transient failure was injected"
    came_back = {r["source_key"] for r in failed if r["source_key"] != poison}
    assert all(any(o.get("source_key") == k for o in ok) for k in came_back)
    poison_records = [r for r in failed if r["source_key"] == poison]
    assert len(poison_records) == 1, poison_records
    assert poison_records[0]["error_code"] == "InvalidObjectName" and poison_records[0]["final"] is True


def test_credentials_from_secrets_manager_and_wrong_ones_recorded(moto, emulator):
    from stack import OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET

    sm = moto.client("secretsmanager")
    good = sm.create_secret(Name="oss-good", SecretString=json.dumps(
        {"accessKeyId": OSS_ACCESS_KEY_ID, "accessKeySecret": OSS_ACCESS_KEY_SECRET}))["ARN"]
    bad = sm.create_secret(Name="oss-bad", SecretString=json.dumps(
        {"accessKeyId": OSS_ACCESS_KEY_ID, "accessKeySecret": "not-the-secret"}))["ARN"]

    task = SyncTask(moto, emulator, OSS_CREDENTIALS_SECRET_ID=bad, max_receive=2)
    env_without_keys = task.env
    task.env = lambda: {k: v for k, v in env_without_keys().items()
                        if k not in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET")}
    task.s3.put_object(Bucket=task.source, Key="k", Body=b"payload")
    assert task.run() == 0
    failed = [r for r in task.records() if r["outcome"] == "failed"]
    assert failed and all(r["error_code"] == "SignatureDoesNotMatch" for r in failed)
    assert all("not-the-secret" not in json.dumps(r) for r in task.records())
    log = task.log.read_text()
    assert "SignatureDoesNotMatch" in log and "not-the-secret" not in log
    # OSS refused the key and the secret, read again, still held it: a failure an operator fixes,
    # so the message comes again and ends in the DLQ; only its last delivery's record is final.
    assert [r["final"] for r in sorted(failed, key=lambda r: r["receive_count"])] == [False, True], failed
    assert task.queue_depths(task.dlq_url) == (1, 0)

    task.settings["OSS_CREDENTIALS_SECRET_ID"] = good
    task.s3.put_object(Bucket=task.source, Key="k", Body=b"payload 2")
    assert task.run() == 0
    assert oss_get(emulator, task.dest, "k")[1] == b"payload 2"
