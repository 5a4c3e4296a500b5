"""`ctl` end to end on the local stack: backfill (listing and S3 Inventory, killed and resumed),
retry-failed, redrive, pause and resume, status. Events go through the real task queue to
`sync poll` and into the OSS emulator."""

import datetime
import gzip
import hashlib
import io
import json
import signal
import subprocess
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import alibabacloud_oss_v2 as oss
import pytest

from conftest import oss_client
from stack import OSS_ACCESS_KEY_SECRET, SyncTask, binary, without_rechecks
from test_sync_e2e import AWKWARD, oss_get

BACKFILL = "ObjectCreated:Backfill"
PARALLEL = 8  # ctl backfill's default batches in flight


def body_of(key: str) -> bytes:
    return hashlib.sha256(key.encode()).hexdigest().encode() * 3


def put_without_events(task: SyncTask, keys: list[str]):
    """Objects that existed before the task: put with the bucket's notifications switched off."""
    task.s3.put_bucket_notification_configuration(Bucket=task.source, NotificationConfiguration={})
    task.sqs.purge_queue(QueueUrl=task.queue_url)  # S3's test event from setting them up
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: task.s3.put_object(Bucket=task.source, Key=k, Body=body_of(k)), keys))
    assert task.queue_depths(task.queue_url) == (0, 0)


def oss_etags(emulator, bucket) -> dict[str, str]:
    client = oss_client(emulator.endpoint)
    out, token = {}, None
    while True:
        r = client.list_objects_v2(oss.ListObjectsV2Request(bucket=bucket, continuation_token=token,
                                                             max_keys=1000))
        out.update({o.key: o.etag.strip('"').lower() for o in r.contents or []})
        if not r.is_truncated:
            return out
        token = r.next_continuation_token


def start_backfill(task: SyncTask, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(binary("ctl")), "backfill", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=task.env())


def wait_for_sent(checkpoint, at_least: int, proc: subprocess.Popen) -> dict:
    deadline = time.time() + 120
    while time.time() < deadline:
        assert proc.poll() is None, f"backfill ended early: {proc.communicate()}"
        try:
            cp = json.loads(checkpoint.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            cp = None
        if cp and cp["counts"]["sent"] >= at_least:
            return cp
        time.sleep(0.05)
    # Stopped, or it would go on sending into the queue of the tests after this one.
    proc.kill()
    proc.wait()
    raise AssertionError("the backfill did not get going")


def summary(p) -> dict:
    return json.loads(p.stdout.strip().splitlines()[-1])


# Alone: the first backfill must send 1,000 events within 120 s while the poller consumes them,
# which moto (one core at most) only manages when nothing else runs.
@pytest.mark.alone
def test_backfill_5000_objects_killed_and_resumed_then_a_second_backfill_skips_all(moto, emulator, tmp_path):
    task = SyncTask(moto, emulator, visibility=30)
    keys = [f"pre/{i:05d}-{AWKWARD[i % len(AWKWARD)]}" for i in range(5000)]
    put_without_events(task, keys)
    cp_file = tmp_path / "backfill.json"
    # The sync function consumes while the backfill sends, as Lambda would; --max-waiting keeps
    # the queue short (moto's ReceiveMessage scans the whole queue: about 3 s at 5,000 messages).
    poller = task.poll(max_seconds=1500, until_empty=False)
    hold = ("--max-waiting", "100")
    try:
        # A backfill killed outright (no chance to save anything) part way through.
        first = start_backfill(task, "--checkpoint", str(cp_file), *hold)
        wait_for_sent(cp_file, 1000, first)
        first.send_signal(signal.SIGKILL)
        first.wait()
        saved = json.loads(cp_file.read_text())
        assert not saved["finished"] and 1000 <= saved["counts"]["sent"] < 5000, saved["counts"]

        # The same command again resumes after the last batch the checkpoint knows was sent.
        p = task.ctl("backfill", "--checkpoint", str(cp_file), *hold)
        assert "resuming" in p.stderr
        out = summary(p)
        assert out["finished"] and out["runs"] == 2, out
        assert out["counts"]["listed"] == 5000 and out["counts"]["sent"] == 5000, out
        task.wait_empty()
        records = [r for r in without_rechecks(task.records()) if r["event_name"] == BACKFILL]
        # Only batches in flight at the kill (sent, not yet checkpointed) can go twice.
        resent = len(records) - 5000
        assert 0 <= resent <= PARALLEL * 10, len(records)
        per_key = Counter(r["source_key"] for r in records)
        assert set(per_key) == set(keys)
        twice = sorted(k for k, n in per_key.items() if n == 2)
        assert len(twice) == resent and max(per_key.values()) <= 2
        # The re-sent ones are the keys right after the checkpointed position, nothing earlier.
        assert all(k > saved["position"]["key"] for k in twice)
        outcomes = Counter(r["outcome"] for r in records)
        assert outcomes == Counter({"copied": 5000, "skipped": resent} if resent else {"copied": 5000}), outcomes

        # Every object is in OSS, intact (the emulator's ETag of a simple upload is the MD5).
        etags = oss_etags(emulator, task.dest)
        assert set(etags) == set(keys)
        assert all(etags[k] == hashlib.md5(body_of(k)).hexdigest() for k in keys)
        for k in keys[::500]:
            assert oss_get(emulator, task.dest, k)[1] == body_of(k)

        # A second backfill (the first one finished, so it starts afresh) copies nothing.
        out = summary(task.ctl("backfill", "--checkpoint", str(cp_file), *hold))
        assert out["finished"] and out["runs"] == 1 and out["counts"]["sent"] == 5000, out
        task.wait_empty()
    finally:
        poller.terminate()
        poller.wait(timeout=60)
    records = [r for r in without_rechecks(task.records()) if r["event_name"] == BACKFILL]
    assert len(records) == 10000 + resent
    assert Counter(r["outcome"] for r in records) == Counter({"copied": 5000, "skipped": resent + 5000})
    assert set(oss_etags(emulator, task.dest)) == set(keys)


def test_a_stopped_backfill_saves_its_place_and_resumes_without_resending(moto, emulator, tmp_path):
    task = SyncTask(moto, emulator)
    keys = [f"k/{i:04d}" for i in range(400)]
    put_without_events(task, keys)
    cp_file = tmp_path / "cp.json"
    p = start_backfill(task, "--checkpoint", str(cp_file), "--rate", "100")
    wait_for_sent(cp_file, 50, p)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "run the same command again" in err
    first = json.loads(out.strip().splitlines()[-1])
    assert not first["finished"] and 50 <= first["counts"]["sent"] < 400
    assert task.queue_depths(task.queue_url)[0] == first["counts"]["sent"]
    out = summary(task.ctl("backfill", "--checkpoint", str(cp_file)))
    assert out["finished"] and out["counts"]["sent"] == 400
    # Exactly one event per object over both runs: nothing was sent twice.
    assert sorted(k for _, k in drain_keys(task)) == keys


def new_records(task, before: list[dict]) -> list[dict]:
    """The records written since `before` was read."""
    seen = {json.dumps(r, sort_keys=True) for r in before}
    return [r for r in task.records() if json.dumps(r, sort_keys=True) not in seen]


def drain_keys(task) -> list[tuple[str, str]]:
    out = []
    while True:
        got = task.sqs.receive_message(QueueUrl=task.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return out
        for m in got:
            r = json.loads(m["Body"])["Records"][0]
            out.append((r["eventName"], urllib.parse.unquote_plus(r["s3"]["object"]["key"])))
            task.sqs.delete_message(QueueUrl=task.queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_backfill_prefix_since_and_an_s3_inventory(moto, emulator, tmp_path):
    task = SyncTask(moto, emulator, SOURCE_PREFIX="data/")
    keys = [f"data/{i:03d} x+y" for i in range(30)] + ["other/a", "other/b"]
    put_without_events(task, keys)

    # --prefix narrows the task's prefix; one outside it is refused before anything is sent.
    p = task.ctl("backfill", "--checkpoint", str(tmp_path / "a.json"), "--prefix", "data/01")
    assert summary(p)["counts"]["sent"] == 10
    assert sorted(k for _, k in drain_keys(task)) == sorted(k for k in keys if k.startswith("data/01"))
    p = task.ctl("backfill", "--checkpoint", str(tmp_path / "b.json"), "--prefix", "other/", check=False)
    assert p.returncode == 2 and "outside the task's SOURCE_PREFIX" in p.stderr
    # --since leaves out what is older.
    future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
    p = task.ctl("backfill", "--checkpoint", str(tmp_path / "c.json"), "--since", future)
    assert summary(p)["counts"] == {"listed": 30, "sent": 0, "before_since": 30, "not_current": 0}
    # A different backfill while one is unfinished is refused, not silently restarted.
    cp = json.loads((tmp_path / "a.json").read_text())
    cp["finished"] = False
    (tmp_path / "a.json").write_text(json.dumps(cp))
    p = task.ctl("backfill", "--checkpoint", str(tmp_path / "a.json"), check=False)
    assert p.returncode == 2 and "--restart" in p.stderr

    # An S3 Inventory: two gzipped CSV files; old versions, delete markers and other prefixes
    # are left out; keys are URL-encoded as S3 writes them.
    task.s3.create_bucket(Bucket="inventory")
    rows = [["src-bucket", urllib.parse.quote_plus(k), "v1", "true", "false", "33",
             "2026-11-01T10:00:00.000Z", hashlib.md5(body_of(k)).hexdigest()] for k in keys]
    rows.append(["src-bucket", "data/old", "v0", "false", "false", "1", "2026-01-01T00:00:00.000Z", "e"])
    rows.append(["src-bucket", "data/gone", "v2", "true", "true", "0", "2026-01-01T00:00:00.000Z", ""])
    files = []
    for n, chunk in enumerate([rows[:17], rows[17:]]):
        text = io.StringIO()
        for r in chunk:
            text.write(",".join(f'"{v}"' for v in r) + "\n")
        data = gzip.compress(text.getvalue().encode())
        key = f"inv/src-bucket/all/data/{n}.csv.gz"
        task.s3.put_object(Bucket="inventory", Key=key, Body=data)
        files.append({"key": key, "size": len(data), "MD5checksum": hashlib.md5(data).hexdigest()})
    manifest = {"sourceBucket": "src-bucket", "destinationBucket": "arn:aws:s3:::inventory",
                "version": "2016-11-30", "fileFormat": "CSV",
                "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag",
                "files": files}
    task.s3.put_object(Bucket="inventory", Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    p = task.ctl("backfill", "--checkpoint", str(tmp_path / "i.json"), "--inventory", "s3://inventory/inv/manifest.json")
    out = summary(p)
    assert out["counts"] == {"listed": 30, "sent": 30, "before_since": 0, "not_current": 4}, out
    sent = drain_keys(task)
    assert sorted(k for _, k in sent) == sorted(k for k in keys if k.startswith("data/"))
    assert {e for e, _ in sent} == {BACKFILL}
    # A damaged inventory file is refused by its MD5.
    manifest["files"][1]["MD5checksum"] = "0" * 32
    task.s3.put_object(Bucket="inventory", Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    p = task.ctl("backfill", "--checkpoint", str(tmp_path / "j.json"), "--inventory",
                 "s3://inventory/inv/manifest.json", check=False)
    assert p.returncode == 2 and "MD5" in p.stderr


@pytest.mark.long
def test_retry_failed_copies_exactly_the_failed_keys_once_fixed(moto, emulator):
    task = SyncTask(moto, emulator, max_receive=1)
    good = [f"ok/{i}" for i in range(20)]
    for k in good:
        task.s3.put_object(Bucket=task.source, Key=k, Body=body_of(k))
    assert task.run() == 0
    # A permanent failure: the OSS credentials are wrong while these arrive.
    task.settings["OSS_ACCESS_KEY_SECRET"] = "wrong-secret"
    bad = [f"bad/{i} {AWKWARD[i]}" for i in range(7)]
    for k in bad:
        task.s3.put_object(Bucket=task.source, Key=k, Body=body_of(k))
    assert task.run() == 0
    failed = {r["source_key"] for r in task.records() if r["outcome"] == "failed"}
    assert failed == set(bad)
    assert oss_etags(emulator, task.dest).keys() == set(good)
    assert task.queue_depths(task.dlq_url)[0] == len(bad)

    # Fixed; the day's report lists the failures, and its failed list is re-sent: exactly the
    # failed keys, once each.
    task.settings["OSS_ACCESS_KEY_SECRET"] = OSS_ACCESS_KEY_SECRET
    now = datetime.datetime.now(datetime.timezone.utc)
    # As of an hour on: days are reported one at a time, and in the grace after midnight the
    # (empty) day before would hold back today's report.
    task.report((now + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    day = now.date().isoformat()
    dry = summary(task.ctl("retry-failed", "--day", day, "--dry-run"))
    assert sorted(dry["key_list"]) == sorted(bad) and dry["keys"] == len(bad)
    assert task.queue_depths(task.queue_url) == (0, 0)
    out = summary(task.ctl("retry-failed", "--day", day))
    assert out["sent"] == len(bad) and out["failed_files"] == len(bad), out
    before = task.records()
    assert task.run() == 0
    retried = without_rechecks(new_records(task, before))
    assert sorted(r["source_key"] for r in retried) == sorted(bad)
    assert {(r["event_name"], r["outcome"]) for r in retried} == {("ObjectCreated:Retry", "copied")}
    etags = {k: v for k, v in oss_etags(emulator, task.dest).items() if not k.startswith("reports/")}
    assert set(etags) == set(good) | set(bad)
    assert all(etags[k] == hashlib.md5(body_of(k)).hexdigest() for k in bad)
    # A day without a report says so.
    p = task.ctl("retry-failed", "--day", "2001-01-01", check=False)
    assert p.returncode == 2 and "no report" in p.stderr

    # The dead-lettered messages go back to the task queue with redrive; all skipped now.
    out = summary(task.ctl("redrive"))
    assert out["moved"] == len(bad) and out["not_deleted"] == 0
    assert task.queue_depths(task.dlq_url) == (0, 0)
    assert task.queue_depths(task.queue_url)[0] == len(bad)
    before = task.records()
    assert task.run() == 0
    redriven = new_records(task, before)
    assert sorted(r["source_key"] for r in redriven) == sorted(bad)
    assert {r["outcome"] for r in redriven} == {"skipped"}


def test_pause_holds_deliveries_and_resume_delivers_them_all(moto, emulator):
    task = SyncTask(moto, emulator)
    task.attach_function()
    st = json.loads(task.ctl("status", "--json").stdout)
    assert st["delivery"] == "Enabled" and st["queue"]["visible"] == 0 and st["problems"] == [], st
    # moto does not answer CloudWatch's current protocol: the age is left out, said so, no failure.
    assert st["oldest_message_age_s"] is None and "CloudWatch" in st["unavailable"][0], st
    assert "does not serve CloudWatch" in st["unavailable"][0], st
    # Told not to ask (as the demo does), it says so and has nothing unavailable.
    text = task.ctl("status", "--no-cloudwatch").stdout
    assert "oldest message  not asked (--no-cloudwatch)" in text and "unavailable" not in text, text

    assert summary(task.ctl("pause"))["state"] == "Disabled"
    poller = task.poll(max_seconds=240)
    keys = [f"p/{i}" for i in range(30)]
    for k in keys:
        task.s3.put_object(Bucket=task.source, Key=k, Body=body_of(k))
    time.sleep(4)
    # Nothing was delivered: the events wait in the queue, the poller waits for the mapping.
    assert poller.poll() is None
    assert task.queue_depths(task.queue_url) == (len(keys), 0)
    assert task.records() == []
    st = json.loads(task.ctl("status", "--json").stdout)
    assert st["delivery"] == "Disabled" and st["queue"]["visible"] == len(keys), st
    text = task.ctl("status").stdout
    assert "paused (Disabled)" in text and f"{len(keys)} waiting" in text

    assert summary(task.ctl("resume"))["state"] == "Enabled"
    assert poller.wait(timeout=120) == 0
    assert task.queue_depths(task.queue_url) == (0, 0)
    records = without_rechecks(task.records())
    assert sorted(r["source_key"] for r in records if r.get("source_key")) == sorted(keys)
    assert {r["outcome"] for r in records if r.get("source_key")} == {"copied"}
    assert set(oss_etags(emulator, task.dest)) == set(keys)
    st = json.loads(task.ctl("status", "--json").stdout)
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    assert st["today"]["day"] == today and st["today"]["counts"]["copied"] == len(keys), st
    assert st["dlq"]["depths"]["visible"] == 0


def test_pause_without_a_function_name_is_a_configuration_error(moto, emulator):
    task = SyncTask(moto, emulator)
    p = task.ctl("pause", check=False)
    assert p.returncode == 2 and "SYNC_FUNCTION_NAME" in p.stderr
    p = task.ctl("pause", check=False, SYNC_FUNCTION_NAME="no-such-function")
    assert p.returncode == 2 and "no event source mapping" in p.stderr
