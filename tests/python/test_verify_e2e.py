"""`ctl verify` end to end on the local stack: after a normal sync, divergences introduced behind
the pipeline's back (an OSS object deleted, one overwritten with other bytes of the same size, an
extra OSS object, an S3 object whose metadata alone changed, an S3 object put with no event) are
found with their kinds; `ctl verify --repair` and `sync poll --until-empty` leave a second
verification with no difference."""

import csv
import io
import json
import subprocess
import time
import urllib.parse
import urllib.request

import alibabacloud_oss_v2 as oss
import pytest

from conftest import oss_client
from stack import SyncTask, binary
from test_sync_e2e import AWKWARD

DIFFERENCES_FOUND = 3


def report_rows(emulator, bucket: str, summary: dict) -> list[dict]:
    client = oss_client(emulator.endpoint)
    rows = []
    for key in summary["differences_list"]["keys"]:
        body = client.get_object(oss.GetObjectRequest(bucket=bucket, key=key)).body.read().decode()
        for r in csv.DictReader(io.StringIO(body)):
            r["dest_key"] = urllib.parse.unquote(r["dest_key"])
            rows.append(r)
    return rows


def verify(task: SyncTask, *args: str):
    p = task.ctl("verify", "--json", *args, check=False)
    assert p.returncode in (0, DIFFERENCES_FOUND), p.stderr
    first = json.loads(p.stdout.strip().splitlines()[0])
    last = json.loads(p.stdout.strip().splitlines()[-1])
    return p, first, last


@pytest.mark.long
def test_verify_finds_each_divergence_and_repair_converges(moto, emulator, tmp_path):
    task = SyncTask(moto, emulator, SYNC_DELETES="true", DEST_PREFIX="mirror/")
    keys = [f"a/{k}" for k in AWKWARD] + [f"a/{i:03d}" for i in range(20)]
    for k in keys:
        task.s3.put_object(Bucket=task.source, Key=k, Body=f"body of {k}".encode(), ContentType="text/plain")
    # Copied in parts (above the 8 MiB part size): its OSS ETag is multipart, the marker decides.
    big = "a/big.bin"
    task.s3.put_object(Bucket=task.source, Key=big, Body=b"x" * (9 << 20))
    for k in ["a/del", "a/over", "a/meta"]:
        task.s3.put_object(Bucket=task.source, Key=k, Body=b"0123456789", Metadata={"v": "1"})
    assert task.run() == 0
    p, first, _ = verify(task)
    assert p.returncode == 0, p.stdout
    assert first["summary"]["differences"] == 0
    listed = first["summary"]["counts"]["source_listed"]
    assert listed == len(keys) + 4

    # Later than the copies by more than the clock tolerance (1 s), so S3's change is seen as one.
    time.sleep(2.5)
    task.s3.put_bucket_notification_configuration(Bucket=task.source, NotificationConfiguration={})
    task.sqs.purge_queue(QueueUrl=task.queue_url)
    dst = oss_client(emulator.endpoint)
    dst.delete_object(oss.DeleteObjectRequest(bucket=task.dest, key="mirror/a/del"))
    dst.put_object(oss.PutObjectRequest(bucket=task.dest, key="mirror/a/over", body=b"9876543210"))
    dst.put_object(oss.PutObjectRequest(bucket=task.dest, key="mirror/a/extra", body=b"not in S3"))
    task.s3.copy_object(Bucket=task.source, Key="a/meta", CopySource={"Bucket": task.source, "Key": "a/meta"},
                        Metadata={"v": "2"}, MetadataDirective="REPLACE")
    task.s3.put_object(Bucket=task.source, Key="a/noevent", Body=b"no event for me")
    assert task.pending(task.queue_url) == 0

    p, first, last = verify(task)
    assert p.returncode == DIFFERENCES_FOUND, p.stdout
    summary = first["summary"]
    rows = report_rows(emulator, task.dest, summary)
    found = {r["dest_key"]: (r["kind"], r["reason"]) for r in rows}
    assert found == {
        "mirror/a/del": ("missing", ""),
        "mirror/a/extra": ("extra", ""),
        "mirror/a/meta": ("may_differ", "metadata"),
        "mirror/a/noevent": ("missing", ""),
        "mirror/a/over": ("may_differ", "etag"),
    }, found
    assert summary["differences"] == 5 and last["differences"] == 5
    kinds = summary["counts"]["kinds"]
    assert kinds == {"equal": listed - 3, "missing": 2, "extra": 1, "size_differs": 0, "may_differ": 2}, kinds
    heads = summary["counts"]["heads"]
    # Only keys the listing could not settle are HEADed: never more than the keys in both.
    assert 3 <= heads["dest"] <= listed - 1 and heads["source"] <= heads["dest"], heads
    # The report folder: parts, summary, and manifest.json written last.
    folder = first["report"]
    assert folder.startswith("reports/task-1/verify/") and folder.endswith("Z/")
    journal = json.loads(urllib.request.urlopen(f"{emulator.endpoint}/_emulator/journal", timeout=10).read())
    writes = [e["key"] for e in journal if e["bucket"] == task.dest and e["key"].startswith(folder)]
    assert writes[-1] == folder + "manifest.json" and folder + "summary.json" in writes, writes
    manifest = json.loads(dst.get_object(oss.GetObjectRequest(bucket=task.dest, key=folder + "manifest.json")).body.read())
    assert manifest["differences"] == 5 and {f["key"] for f in manifest["files"]} == set(writes[:-1])

    # Repair: events for the four creations and, with delete sync, the extra key's delete.
    task.s3.put_bucket_notification_configuration(Bucket=task.source, NotificationConfiguration={
        "QueueConfigurations": [{"Id": "s3-oss-sync", "QueueArn": task.queue_arn(task.queue_url),
                                 "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})
    p = task.ctl("verify", "--repair", "--json", "--checkpoint", str(tmp_path / "verify.json"), check=False)
    assert p.returncode == DIFFERENCES_FOUND, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["repair"]["finished"] and out["repair"]["sent"] == 5, out
    assert task.run() == 0
    records = [r for r in task.records() if r["event_name"] in ("ObjectCreated:Verify", "ObjectRemoved:Delete")
               and not r.get("recheck_of")]
    assert {(r["source_key"], r["outcome"]) for r in records} == {
        ("a/del", "copied"), ("a/over", "copied"), ("a/meta", "copied"), ("a/noevent", "copied"),
        ("a/extra", "deleted")}, records

    p, first, _ = verify(task)
    assert p.returncode == 0, p.stdout
    assert first["summary"]["differences"] == 0
    assert first["summary"]["counts"]["kinds"]["equal"] == listed + 1

    st = json.loads(task.ctl("status", "--json", check=False).stdout)
    assert st["last_verification"]["differences"] == 0 and st["last_verification"]["finished"], st
    assert st["last_verification"]["dir"] == first["report"]


def test_the_scheduled_verification_writes_its_report_and_metric(moto, emulator):
    """`report verify` runs what the template's VerifySchedule invokes: the same verification,
    with the report function's settings, and one EMF line with VerifyDifferences."""
    task = SyncTask(moto, emulator)
    for i in range(12):
        task.s3.put_object(Bucket=task.source, Key=f"k/{i:02d}", Body=b"x" * i)
    assert task.run() == 0
    oss_client(emulator.endpoint).delete_object(oss.DeleteObjectRequest(bucket=task.dest, key="k/03"))
    env = task.env()
    p = subprocess.run([str(binary("report")), "verify"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["summary"]["differences"] == 1 and out["summary"]["complete"], out
    assert out["verification"].startswith("reports/task-1/verify/")
    [emf] = [json.loads(line) for line in p.stderr.splitlines() if line.startswith("{") and "_aws" in line]
    assert emf["VerifyDifferences"] == 1 and emf["VerifyMissing"] == 1 and emf["VerifyKeys"] == 12, emf
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "S3OssSync"
    st = task.ctl("status", check=False).stdout
    assert "last verification" in st and "1 differences (missing 1)" in st, st
