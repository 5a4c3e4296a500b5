"""Two report runs at once, end to end: `report run` processes started in pairs against moto (the
results bucket, with its conditional writes) and the OSS emulator. One run holds the lease and
writes; the other either finds it held (exits 0, `lease` in its JSON) or runs after it. After every
pair, every manifest in the destination matches its checksum and lists files whose MD5s match."""

import datetime
import hashlib
import json
import subprocess

import alibabacloud_oss_v2 as oss

from conftest import oss_client
from stack import SyncTask, binary

ROUNDS = 6


def records(task: SyncTask, day: datetime.date, n: int, tag: str):
    """`n` outcome records processed on `day`, filed as the sync function files them."""
    for hour in (3, 9, 15):
        at = datetime.datetime.combine(day, datetime.time(hour), datetime.timezone.utc)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines = []
        for i in range(n // 3):
            key = f"{tag}/{hour:02}/{i:05}.txt"
            lines.append(json.dumps({
                "task": task.task_id, "processed_at": stamp, "source_key": key, "dest_key": key,
                "event_time": stamp, "event_name": "ObjectCreated:Put", "bucket": task.source,
                "outcome": "copied" if i % 7 else "failed", "bytes_moved": 10, "size": 10,
                "attempts": 1, "duration_ms": 5, "message_id": f"m-{tag}-{hour}-{i}"}))
        task.s3.put_object(Bucket=task.results,
                           Key=f"results/{task.task_id}/dt={day.isoformat()}/hr={hour:02}/{tag}.jsonl",
                           Body=("\n".join(lines) + "\n").encode())


def dest_objects(task: SyncTask) -> dict:
    client = oss_client(task.emulator.endpoint)
    keys, token = [], None
    while True:
        page = client.list_objects_v2(oss.ListObjectsV2Request(
            bucket=task.dest, prefix="reports/", continuation_token=token))
        keys += [o.key for o in page.contents or []]
        if not page.is_truncated:
            break
        token = page.next_continuation_token
    return {k: client.get_object(oss.GetObjectRequest(bucket=task.dest, key=k)).body.read() for k in keys}


def check_manifests(objects: dict) -> int:
    manifests = 0
    for key, raw in objects.items():
        if not key.endswith("/manifest.json"):
            continue
        manifests += 1
        day_dir = key.removesuffix("/manifest.json")
        assert objects[f"{day_dir}/manifest.checksum"].decode() == hashlib.md5(raw).hexdigest(), day_dir
        for f in json.loads(raw)["files"]:
            assert hashlib.md5(objects[f["key"]]).hexdigest() == f["md5"], f["key"]
            assert len(objects[f["key"]]) == f["size"], f["key"]
    return manifests


def test_pairs_of_concurrent_runs_leave_every_manifest_consistent(moto, emulator):
    task = SyncTask(moto, emulator)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first = today - datetime.timedelta(days=3)
    for d in range(4):
        records(task, first + datetime.timedelta(days=d), 3000, "base")
    env = task.env()
    env.update(REPORT_PART_MIB="1")
    busy, ran = 0, 0
    for round_ in range(ROUNDS):
        # Later rounds report as of tomorrow: today completes while the other run may be writing.
        as_of = today if round_ < ROUNDS // 2 else today + datetime.timedelta(days=1)
        now = f"{as_of.isoformat()}T{'12' if round_ < ROUNDS // 2 else '01'}:00:00Z"
        records(task, today, 300, f"round{round_}")
        argv = [str(binary("report")), "run", "--now", now, "--allow-future"]
        runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                for _ in range(2)]
        for p in runs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            result = json.loads(out)
            if "lease" in result:
                assert "another report run holds the lease" in result["nothing_to_do"], result
                assert result["lease"]["held_by"] and result["lease"]["expires_at"], result
                assert result["days"] == [] and result["upload_sweep"] is None, result
                busy += 1
            else:
                ran += 1
        assert check_manifests(dest_objects(task)) >= 3
        # Released at the end of every run.
        listed = task.s3.list_objects_v2(Bucket=task.results, Prefix="results-locks/")
        assert listed.get("KeyCount", 0) == 0, listed
    print(f"runs that wrote: {ran}, runs that found the lease held: {busy}")
    assert ran >= ROUNDS and busy >= 1, (ran, busy)
    objects = dest_objects(task)
    assert check_manifests(objects) == 4
    manifest = json.loads(objects[f"reports/{task.task_id}/{today.isoformat()}/manifest.json"])
    # Records filed after the day completed (the last rounds') are late, in the next day's lists.
    assert manifest["records"] == 3000 + 300 * (ROUNDS // 2 + 1)
