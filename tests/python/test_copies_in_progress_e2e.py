"""Copies in progress end to end on the local stack: a large copy stopped after its first
invocations (`sync poll --invocation-timeout 5` through an OSS emulator capped per connection)
leaves its multipart upload open and its checkpoint in the results bucket. `ctl status` lists it;
`ctl sweep-uploads` and the sweep after `report run` keep its upload, however old, while the
checkpoint is written within the age, and abort it once the checkpoint is older; a damaged
checkpoint is a problem line in the status and is ignored by the sweep."""

import json
import time
import urllib.request

from stack import SyncTask
from test_limits_e2e import body_for, emulator_json, set_faults, wait_until
from test_resume_e2e import checkpoints, records_for, upload

MIB = 1024 * 1024


def age_uploads(emulator, seconds: int):
    req = urllib.request.Request(f"{emulator.endpoint}/_emulator/uploads?age={seconds}", method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def open_uploads(emulator) -> dict:
    return emulator_json(emulator, "uploads")


def copy_in_progress(task: SyncTask, emulator, key: str) -> str:
    """Starts the copy of a 256 MiB object and stops the poller once an invocation has paused
    it; returns the checkpoint's key."""
    upload(task, key, body_for("in progress", 256 * MIB))
    # 4 MiB/s per connection, two parts of 8 MiB in flight: about 28 MiB per 5 s invocation.
    set_faults(emulator, upload_bytes_per_sec=4 * MIB)
    p = task.poll(max_seconds=300, args=("--invocation-timeout", "5"))
    try:
        wait_until(lambda: [r for r in records_for(task, key) if r["outcome"] == "in_progress"], 120,
                   "the first pause")
    finally:
        p.terminate()
        p.wait(timeout=60)
        set_faults(emulator)
    keys = [k for k in checkpoints(task) if k.count(".") == 1]
    assert len(keys) == 1, checkpoints(task)
    return keys[0]


def test_a_copy_in_progress_is_listed_and_its_upload_kept_until_its_checkpoint_is_stale(moto, emulator):
    task = SyncTask(moto, emulator, visibility=30, max_receive=3, OSS_PART_SIZE_MIB="8",
                    OSS_PARTS_IN_FLIGHT="2", SQS_MAX_RECEIVE_COUNT="3", FANOUT_THRESHOLD_MIB="0")
    key = "large/in-progress.bin"
    cp_key = copy_in_progress(task, emulator, key)
    cp = json.loads(task.s3.get_object(Bucket=task.results, Key=cp_key)["Body"].read())

    st = json.loads(task.ctl("status", "--json").stdout)
    [copy] = st["copies_in_progress"]
    assert copy["dest_key"] == key and copy["upload_id"] == cp["upload_id"]
    assert copy["size"] == 256 * MIB and copy["parts_total"] == 32
    assert 0 < copy["parts_done"] < 32 and copy["bytes_done"] == copy["parts_done"] * 8 * MIB
    assert abs(copy["percent"] - copy["bytes_done"] * 100 / copy["size"]) < 0.1
    assert 0 <= copy["age_secs"] < 600 and 0 <= copy["since_progress_secs"] < 600
    assert not copy["stale"] and copy["checkpoint"] == cp_key
    text = task.ctl("status").stdout
    assert "copies in progress 1\n" in text and f"  {key}  " in text and cp["upload_id"] in text, text

    # Two hours old, an hour's age: kept, the copy is moving.
    age_uploads(emulator, 7200)
    kept = json.loads(task.ctl("sweep-uploads", "--older-than", "1", "--json").stdout)
    assert (kept["aborted"], kept["resuming"], kept["live_copies"], kept["held"]) == (0, 1, 1, None), kept
    assert open_uploads(emulator)["in_progress"] >= 1
    text = task.ctl("sweep-uploads", "--older-than", "1", "--dry-run").stdout
    assert "1 resuming" in text and "would abort       0" in text, text

    # The report function's sweep keeps it too.
    out = task.report(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), UPLOAD_SWEEP_AGE_HOURS="1")
    assert (out["upload_sweep"]["resuming"], out["upload_sweep"]["aborted"]) == (1, 0), out["upload_sweep"]

    # A damaged checkpoint beside it: a problem in the status, ignored by the sweep.
    damaged = cp_key.rsplit("/", 1)[0] + "/" + "0" * 32 + ".json"
    task.s3.put_object(Bucket=task.results, Key=damaged, Body=b"{not json")
    st = task.ctl("status", "--json", check=False)
    assert st.returncode == 1
    st = json.loads(st.stdout)
    assert len(st["copies_in_progress"]) == 1
    assert any(p.startswith(f"copy in progress {damaged}: damaged") for p in st["problems"]), st["problems"]
    swept = json.loads(task.ctl("sweep-uploads", "--older-than", "1", "--json").stdout)
    assert (swept["aborted"], swept["resuming"], swept["held"]) == (0, 1, None), swept
    assert any(damaged in c for c in swept["unreadable_checkpoints"]), swept
    task.s3.delete_object(Bucket=task.results, Key=damaged)

    # No progress for three hours: stale, and the sweep aborts its upload.
    cp["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 3 * 3600))
    task.s3.put_object(Bucket=task.results, Key=cp_key, Body=json.dumps(cp).encode())
    assert json.loads(task.ctl("status", "--json").stdout)["copies_in_progress"][0]["stale"] is False
    st = json.loads(task.ctl("status", "--json", UPLOAD_SWEEP_AGE_HOURS="1").stdout)
    assert st["copies_in_progress"][0]["stale"] is True
    assert 3 * 3600 <= st["copies_in_progress"][0]["since_progress_secs"] < 3 * 3600 + 600
    assert "STALE" in task.ctl("status", UPLOAD_SWEEP_AGE_HOURS="1").stdout
    gone = json.loads(task.ctl("sweep-uploads", "--older-than", "1", "--json").stdout)
    assert (gone["aborted"], gone["resuming"], gone["live_copies"]) == (1, 0, 0), gone
    journal = emulator_json(emulator, "journal")
    assert [e for e in journal if e["key"] == key and e["op"] == "abort"], journal


def test_the_sweep_aborts_nothing_when_the_checkpoints_cannot_be_read(moto, emulator):
    task = SyncTask(moto, emulator, DEST_PREFIX="mirror/")
    import alibabacloud_oss_v2 as oss

    from conftest import oss_client
    client = oss_client(emulator.endpoint)
    client.initiate_multipart_upload(oss.InitiateMultipartUploadRequest(bucket=task.dest, key="mirror/old"))
    age_uploads(emulator, 30 * 3600)
    held = task.ctl("sweep-uploads", "--json", check=False, RESULTS_BUCKET="no-such-results-bucket")
    assert held.returncode == 1, held.stderr
    summary = json.loads(held.stdout)
    assert summary["aborted"] == 0 and len(summary["would_abort"]) == 1
    assert "could not be listed" in summary["held"], summary
    assert "nothing aborted" in held.stderr
    assert open_uploads(emulator)["in_progress"] == 1
    missing = task.ctl("sweep-uploads", check=False, RESULTS_BUCKET="")
    assert missing.returncode == 2 and "RESULTS_BUCKET" in missing.stderr
    done = json.loads(task.ctl("sweep-uploads", "--json").stdout)
    assert (done["aborted"], done["held"]) == (1, None)
