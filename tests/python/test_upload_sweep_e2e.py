"""The sweep of stale multipart uploads end to end: uploads opened with the official OSS SDK in
the emulator, made to look old through its admin endpoint, then `ctl sweep-uploads` (dry run,
then for real) and the sweep that follows `report run`."""

import json
import urllib.parse
import urllib.request

import alibabacloud_oss_v2 as oss

from conftest import oss_client
from stack import SyncTask


def open_upload(client, bucket: str, key: str) -> str:
    r = client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=bucket, key=key))
    return r.upload_id


def age(emulator, prefix: str, hours: int):
    query = f"age={hours * 3600}&prefix={urllib.parse.quote(prefix, safe='')}"
    req = urllib.request.Request(f"{emulator.endpoint}/_emulator/uploads?{query}", method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def open_ids(client, bucket: str) -> set[str]:
    r = client.list_multipart_uploads(oss.ListMultipartUploadsRequest(bucket=bucket))
    return {u.upload_id for u in r.uploads or []}


def test_ctl_sweep_uploads_aborts_only_old_uploads_under_the_prefix(moto, emulator):
    task = SyncTask(moto, emulator, DEST_PREFIX="mirror/")
    client = oss_client(emulator.endpoint)
    old = {open_upload(client, task.dest, k) for k in ["mirror/a", "mirror/sub/b c"]}
    fresh = open_upload(client, task.dest, "mirror/fresh")
    outside = open_upload(client, task.dest, "elsewhere/old")
    age(emulator, "mirror/a", 30)
    age(emulator, "mirror/sub/", 30)
    age(emulator, "elsewhere/", 30)

    dry = json.loads(task.ctl("sweep-uploads", "--dry-run", "--json").stdout)
    assert {p["upload_id"] for p in dry["would_abort"]} == old
    assert (dry["listed"], dry["aborted"], dry["recent"]) == (3, 0, 1)
    assert open_ids(client, task.dest) == old | {fresh, outside}

    # Older than 48 hours: none of them.
    none = json.loads(task.ctl("sweep-uploads", "--older-than", "48", "--json").stdout)
    assert none["aborted"] == 0 and open_ids(client, task.dest) == old | {fresh, outside}

    done = json.loads(task.ctl("sweep-uploads", "--json").stdout)
    assert (done["aborted"], done["failed"]) == (2, [])
    assert 30 * 3600 <= done["oldest_age_secs"] < 30 * 3600 + 600
    assert open_ids(client, task.dest) == {fresh, outside}

    text = task.ctl("sweep-uploads").stdout
    assert "aborted           0" in text and '"mirror/"' in text

    bad = task.ctl("sweep-uploads", "--older-than", "0", check=False)
    assert bad.returncode == 2


def test_the_report_run_sweeps_after_reporting(moto, emulator):
    task = SyncTask(moto, emulator, DEST_PREFIX="mirror/", UPLOAD_SWEEP_AGE_HOURS="2")
    client = oss_client(emulator.endpoint)
    stale = open_upload(client, task.dest, "mirror/stale")
    kept = open_upload(client, task.dest, "mirror/kept")
    age(emulator, "mirror/stale", 3)
    out = task.report("2026-11-30T12:00:00Z")
    assert "days" in out
    sweep = out["upload_sweep"]
    assert (sweep["listed"], sweep["aborted"], sweep["prefix"]) == (2, 1, "mirror/")
    assert open_ids(client, task.dest) == {kept}
    assert stale not in open_ids(client, task.dest)
