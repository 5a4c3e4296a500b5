"""`make demo`: the local pipeline end to end, on 127.0.0.1 only.

Starts moto (S3 + SQS) and the OSS emulator, creates a sync task (source bucket, task queue with
a DLQ, the S3 notification between them, a results bucket), uploads objects with awkward keys,
deletes one, runs the sync function's local event source until the queue is empty, shows what
arrived in OSS (read back with the official OSS SDK) and the outcome records, then runs the report
function as of tomorrow and prints the finished day's summary and manifest. It prints only what it
did.
"""

import datetime
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

from conftest import oss_client  # noqa: E402
from stack import STACK_DIR, Moto, OssEmulator, SyncTask  # noqa: E402

TASK = "demo-task"
OBJECTS = {
    "readme.txt": (b"plain key\n", "text/plain"),
    "photos/2026/summer holiday.jpg": (b"\xff\xd8\xff" + b"\x00" * 2048, "image/jpeg"),
    "reports/q3+q4 (final).csv": (b"quarter,revenue\nq3,1\nq4,2\n", "text/csv"),
    "unicode/日本語/ü-ß.txt": ("unicode key\n".encode(), "text/plain; charset=utf-8"),
    "odd/100%?x=1&y#z": (b"reserved characters\n", "application/octet-stream"),
    "big/ten-mebibytes.bin": (bytes(range(256)) * 40960, "application/octet-stream"),
}


def step(msg):
    print(f"==> {msg}", flush=True)


def main():
    import alibabacloud_oss_v2 as oss

    moto = emulator = None
    try:
        step("starting the local stack on 127.0.0.1")
        moto = Moto()
        print(f"    moto (S3 + SQS)  {moto.endpoint}")
        emulator = OssEmulator()
        print(f"    OSS emulator     {emulator.endpoint}  (checks OSS4-HMAC-SHA256 signatures)")

        step(f"creating sync task {TASK!r}")
        task = SyncTask(moto, emulator, task_id=TASK, source="demo-source", dest="demo-dest",
                        results="demo-results", DEST_PREFIX="mirror/", SYNC_DELETES="true")
        print(f"    source s3://{task.source} -> queue {task.queue_url} (DLQ {task.dlq_url})")
        print(f"    destination oss://{task.dest}/mirror/, results s3://{task.results}/results/{TASK}/")
        # The sync function and its event source mapping, as SAM deploys them (moto keeps both):
        # `sync poll` follows the mapping (ctl pause stops it) and ctl status reports it.
        function = task.attach_function("demo-sync")
        print(f"    function {function!r} with an enabled event source mapping on the queue")

        step(f"uploading {len(OBJECTS)} objects with awkward keys, then deleting one")
        for key, (body, ctype) in OBJECTS.items():
            task.s3.put_object(Bucket=task.source, Key=key, Body=body, ContentType=ctype,
                               Metadata={"owner": "demo"})
            print(f"    put    {key!r} ({len(body)} bytes, {ctype})")
        task.s3.delete_object(Bucket=task.source, Key="readme.txt")
        print("    delete 'readme.txt'")

        step("running the sync function's local event source: sync poll --until-empty")
        log = STACK_DIR / "demo-sync.log"
        code = task.run(max_seconds=120, log=log)
        if code != 0:
            print(f"demo: sync poll exited with {code}; see {log}", file=sys.stderr)
            return 1
        for line in log.read_text().splitlines():
            r = json.loads(line) if line.startswith("{") else {}
            if r.get("message") == "outcome":
                what = r.get("source_key") or r.get("event_name")
                detail = f"{r.get('bytes_moved', 0)} bytes" if r["outcome"] == "copied" else r.get("error_message", "")
                if r.get("recheck_of"):
                    detail = f"(the recheck its copy left) {detail}"
                print(f"    {r['outcome']:<10} {what!r}  {detail}")

        step(f"what OSS holds in oss://{task.dest}/ (read with the official OSS Python SDK)")
        client = oss_client(emulator.endpoint)
        listing = client.list_objects_v2(oss.ListObjectsV2Request(bucket=task.dest))
        held = {o.key: o for o in listing.contents or []}
        for key, o in held.items():
            head = client.head_object(oss.HeadObjectRequest(bucket=task.dest, key=key))
            meta = dict(head.metadata or {})
            print(f"    {key!r}  {o.size} bytes  {head.content_type}  crc64={head.hash_crc64}  meta={meta}")
        expected = {f"mirror/{k}" for k in OBJECTS if k != "readme.txt"}
        if set(held) != expected:
            print(f"demo: OSS holds {sorted(held)}, expected {sorted(expected)}", file=sys.stderr)
            return 1
        for key, (body, _) in OBJECTS.items():
            if key != "readme.txt":
                got = client.get_object(oss.GetObjectRequest(bucket=task.dest, key=f"mirror/{key}")).body.read()
                if got != body:
                    print(f"demo: {key!r} differs in OSS", file=sys.stderr)
                    return 1
        print(f"    {len(held)} objects, every byte equal to the source")

        step("outcome records in the results store")
        records = task.records()
        print(f"    {len(records)} records: {dict(Counter(r['outcome'] for r in records))}")
        today = datetime.datetime.now(datetime.timezone.utc).date()
        as_of = f"{today + datetime.timedelta(days=1)}T01:00:00Z"
        step(f"running the report function as of {as_of} (today's day is then over and past its grace)")
        for d in task.report(as_of)["days"]:
            print(f"    {d['day']}  {d['state']:<9} {d['records']} records")
        day_dir = f"reports/{TASK}/{today}"

        def get(key):
            return client.get_object(oss.GetObjectRequest(bucket=task.dest, key=key)).body.read()

        step(f"oss://{task.dest}/{day_dir}/summary.json")
        print("    " + get(f"{day_dir}/summary.json").decode().replace("\n", "\n    "))
        step(f"oss://{task.dest}/{day_dir}/manifest.json (written last; MD5s checked here)")
        manifest = get(f"{day_dir}/manifest.json")
        print("    " + manifest.decode().replace("\n", "\n    "))
        for f in json.loads(manifest)["files"]:
            if hashlib.md5(get(f["key"])).hexdigest() != f["md5"]:
                print(f"demo: MD5 of {f['key']} does not match the manifest", file=sys.stderr)
                return 1
        if get(f"{day_dir}/manifest.checksum").decode() != hashlib.md5(manifest).hexdigest():
            print("demo: manifest.checksum does not match manifest.json", file=sys.stderr)
            return 1
        print("    every MD5 in the manifest matches; manifest.checksum matches manifest.json")

        step("ctl status (the operator's view of the task)")
        # The local stack does not serve CloudWatch, which alone answers the oldest message's age.
        status = task.ctl("status", "--no-cloudwatch", check=False)
        print("    " + status.stdout.rstrip().replace("\n", "\n    "))
        print("    (the oldest message's age comes from CloudWatch, which the local stack does not serve;"
              " in AWS, ctl status shows it)")
        return 0
    finally:
        for part in (emulator, moto):
            if part is not None:
                part.stop()
        print("==> local stack stopped")


if __name__ == "__main__":
    sys.exit(main())
