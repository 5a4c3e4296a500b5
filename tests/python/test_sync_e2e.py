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
from stack import SyncTask

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
            assert meta.get(k.lower()) == v, (key, k)
        assert meta.get("s3sync-source-etag") == src["ETag"].strip('"'), key
    return source_keys


def test_200_objects_arrive_intact_with_one_record_per_event(moto, emulator):
    task = SyncTask(moto, emulator, DEST_PREFIX="mirror/")
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

    records = task.records()
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
            assert r["requests"] >= 4 and r["attempts"] == 1
