"""The report function end to end: sync outcomes from moto's real notifications, `report run`
into the OSS emulator, and the finished report read back with the official OSS SDK."""

import csv
import datetime
import hashlib
import io
import json
import urllib.parse
import urllib.request

import alibabacloud_oss_v2 as oss

from conftest import oss_client
from stack import SyncTask

# Newlines in keys are covered by the Rust component test (moto refuses such keys).
KEYS = ["plain.txt", "comma,key.txt", 'quote"key', "tab\tkey", "日本/ü ß.txt", "plus+sign%41"]


def test_a_finished_report_downloads_with_matching_md5s_and_the_manifest_is_written_last(moto, emulator):
    task = SyncTask(moto, emulator)
    for k in KEYS:
        task.s3.put_object(Bucket=task.source, Key=k, Body=k.encode())
    assert task.run() == 0
    today = datetime.datetime.now(datetime.timezone.utc).date()
    tomorrow = today + datetime.timedelta(days=1)
    now = f"{tomorrow.isoformat()}T01:00:00Z"

    # Per key: its copy, and the recheck the copy left (which finds it current); and the test event.
    # Files: one per key, copied (the recheck does not change that), and the test event's.
    out = task.report(now)
    assert out["days"][0] == {"day": today.isoformat(), "state": "complete", "files": len(KEYS) + 1,
                              "records": 2 * len(KEYS) + 1}
    assert out["days"][1]["state"] == "pushing"

    client = oss_client(emulator.endpoint)
    day_dir = f"reports/{task.task_id}/{today.isoformat()}"

    def get(key: str) -> bytes:
        return client.get_object(oss.GetObjectRequest(bucket=task.dest, key=key)).body.read()

    raw = get(f"{day_dir}/manifest.json")
    assert get(f"{day_dir}/manifest.checksum").decode() == hashlib.md5(raw).hexdigest()
    manifest = json.loads(raw)
    assert manifest["records"] == 2 * len(KEYS) + 1 and manifest["counts"]["copied"] == len(KEYS)
    assert manifest["counts"]["skipped"] == len(KEYS)
    assert manifest["format_version"] == 5 and manifest["file_count"] == len(KEYS) + 1
    assert manifest["file_states"]["copied"] == len(KEYS) and manifest["file_states"]["failed"] == 0
    for f in manifest["files"]:
        body = get(f["key"])
        assert hashlib.md5(body).hexdigest() == f["md5"], f["key"]
        assert len(body) == f["size"]
    summary = json.loads(get(f"{day_dir}/summary.json"))
    assert summary["state"] == "complete" and summary["lag_ms"]["max"] is not None

    def rows(name: str) -> list[dict]:
        return list(csv.DictReader(io.StringIO(get(f"{day_dir}/{name}/part-00001.csv").decode(), newline="")))

    # Each list's header row is the manifest's fileSchema for it.
    for name, schema in manifest["fileSchema"].items():
        header = get(f"{day_dir}/{name}/part-00001.csv").decode().split("\r\n", 1)[0]
        assert schema == ", ".join(header.split(",")), name
    assert summary["fileSchema"] == manifest["fileSchema"]

    files = [r for r in rows("total_list") if r["source_key"]]
    assert [urllib.parse.unquote(r["source_key"]) for r in files] == sorted(KEYS)
    assert {(r["state"], r["deliveries"], r["attempts"]) for r in files} == {("copied", "1", "2")}
    # The CRC-64 as 16 hex digits and as OSS's decimal marked as text, both OSS's own; the size
    # in the destination and the bytes moved are the object's.
    for r in files:
        key = urllib.parse.unquote(r["dest_key"])
        head = client.head_object(oss.HeadObjectRequest(bucket=task.dest, key=key))
        assert len(r["dest_crc64_hex"]) == 16 and r["dest_crc64"].startswith("'"), r
        assert int(r["dest_crc64_hex"], 16) == int(r["dest_crc64"][1:]) == int(head.hash_crc64), r
        body = urllib.parse.unquote(r["source_key"]).encode()
        assert r["dest_size"] == r["bytes_moved"] == str(len(body)), r
        assert r["dropped_metadata"] == "", r
    attempts = [r for r in rows("attempts_list") if r["source_key"]]
    assert [urllib.parse.unquote(r["source_key"]) for r in attempts] == sorted(KEYS * 2)
    assert sorted(r["outcome"] for r in attempts) == ["copied"] * len(KEYS) + ["skipped"] * len(KEYS)
    assert rows("failed_list") == []

    # The emulator's write order: manifest.json after every file it lists.
    journal = json.loads(urllib.request.urlopen(f"{emulator.endpoint}/_emulator/journal", timeout=10).read())
    order = {e["key"]: e["seq"] for e in journal if e["bucket"] == task.dest}
    assert all(order[f["key"]] < order[f"{day_dir}/manifest.json"] for f in manifest["files"])

    # A re-run over the complete day changes nothing in it.
    before = {k: get(k) for k in order if k.startswith(day_dir)}
    task.report(now)
    assert {k: get(k) for k in before} == before
    journal2 = json.loads(urllib.request.urlopen(f"{emulator.endpoint}/_emulator/journal", timeout=10).read())
    assert not [e for e in journal2[len(journal):] if e["key"].startswith(day_dir)]


def test_an_optional_s3_copy_holds_the_same_report(moto, emulator):
    task = SyncTask(moto, emulator)
    task.s3.create_bucket(Bucket="report-copy")
    task.s3.put_object(Bucket=task.source, Key="a.txt", Body=b"a")
    assert task.run() == 0
    tomorrow = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=1)
    task.report(f"{tomorrow.isoformat()}T01:00:00Z", REPORT_S3_BUCKET="report-copy")
    client = oss_client(emulator.endpoint)
    listed = client.list_objects_v2(oss.ListObjectsV2Request(bucket=task.dest, prefix="reports/"))
    in_oss = {o.key: client.get_object(oss.GetObjectRequest(bucket=task.dest, key=o.key)).body.read()
              for o in listed.contents}
    copy = task.s3.list_objects_v2(Bucket="report-copy")["Contents"]
    in_s3 = {o["Key"]: task.s3.get_object(Bucket="report-copy", Key=o["Key"])["Body"].read() for o in copy}
    assert in_s3 == in_oss and any(k.endswith("manifest.json") for k in in_s3)
