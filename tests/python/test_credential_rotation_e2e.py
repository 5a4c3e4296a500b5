"""The OSS key rotated under a running `sync poll`: the function reads its key from a Secrets
Manager secret (moto's); mid-run the secret is updated and the emulator stops accepting the old
key. The function re-reads the secret when OSS refuses the old key, and every object ends in OSS,
none failed."""

import json
import time
import urllib.request
from collections import Counter

from stack import OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET, SyncTask, without_rechecks
from test_sync_e2e import MIB, assert_mirrors, body_for, oss_keys

ROTATED = {"access_key_id": "rotated-oss-ak", "access_key_secret": "rotated-secret-never-logged",
           "security_token": None}


def set_emulator_keys(emulator, keys: dict):
    req = urllib.request.Request(f"{emulator.endpoint}/_emulator/credentials", data=json.dumps(keys).encode(),
                                 method="PUT", headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()


def test_a_rotated_key_is_re_read_from_the_secret_and_every_object_arrives(moto, emulator):
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="oss/creds", SecretString=json.dumps(
        {"accessKeyId": OSS_ACCESS_KEY_ID, "accessKeySecret": OSS_ACCESS_KEY_SECRET}))
    task = SyncTask(moto, emulator, OSS_ACCESS_KEY_ID="", OSS_ACCESS_KEY_SECRET="",
                    OSS_CREDENTIALS_SECRET_ID="oss/creds", OSS_PART_SIZE_MIB="1", RUST_LOG="info")
    sizes = [0, 100, 65536, 3 * MIB + 5]
    first = {f"before/{i:02d}": sizes[i % len(sizes)] for i in range(20)}
    second = {f"after/{i:02d}": sizes[i % len(sizes)] for i in range(20)}
    for i, (key, size) in enumerate(first.items()):
        task.s3.put_object(Bucket=task.source, Key=key, Body=body_for(i, size))

    poller = task.poll(max_seconds=240, until_empty=False)
    try:
        deadline = time.time() + 120
        while len(oss_keys(emulator, task.dest)) < len(first):
            assert time.time() < deadline, "the first objects did not arrive"
            assert poller.poll() is None, task.log.read_text()
            time.sleep(0.5)
        # Rotation as the README says: update the secret, then retire the old key.
        sm.put_secret_value(SecretId="oss/creds", SecretString=json.dumps(
            {"accessKeyId": ROTATED["access_key_id"], "accessKeySecret": ROTATED["access_key_secret"]}))
        set_emulator_keys(emulator, ROTATED)
        for i, (key, size) in enumerate(second.items()):
            task.s3.put_object(Bucket=task.source, Key=key, Body=body_for(100 + i, size))
        task.wait_empty(timeout=180)
    finally:
        poller.terminate()
        poller.wait(timeout=60)

    log = task.log.read_text()
    assert "re-read them and replaced them" in log, log
    assert ROTATED["access_key_secret"] not in log and OSS_ACCESS_KEY_SECRET not in log
    # The checks below read OSS with the original key.
    set_emulator_keys(emulator, {"access_key_id": OSS_ACCESS_KEY_ID, "access_key_secret": OSS_ACCESS_KEY_SECRET})
    assert assert_mirrors(task, emulator) == set(first) | set(second)
    outcomes = Counter(r["outcome"] for r in without_rechecks(task.records()))
    assert outcomes == {"copied": 40, "ignored": 1}, outcomes
    assert task.queue_depths(task.dlq_url) == (0, 0)
