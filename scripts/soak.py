#!/usr/bin/env python3
"""`make soak`: the sync function under chaos on the local stack (loopback only), then the
invariants a replication tool must keep.

Every change to the source becomes an S3 event the soak sends to the task queue once or several
times, in shuffled order, keeping every SQS message id it was given. By default the soak writes
the events itself, as S3 does, with a `sequencer` that increases per key in the order of its own
writes, an ETag, size and identity (moto's notifications carry none of these); with
`--moto-events` it forwards moto's real notifications instead. Meanwhile: hot keys are
overwritten while their copies are in flight, objects are deleted and re-created, the OSS
emulator fails a share of requests and adds latency, the poller's S3 traffic goes through a
fault proxy that answers a share of the source HEADs (the copy's confirmation after an upload,
and the check before a GET) `503 SlowDown` on every SDK attempt, a few poison objects (keys OSS
cannot store) are written, and the poller is killed with SIGKILL at random moments and started
again.

At the end, with the task queue empty:
- every source object equals its OSS copy (bytes, content type, user metadata) and OSS holds
  nothing else (deletes are synced);
- every message sent has an outcome record, except the ones in the DLQ;
- no message was acknowledged without one (sent = recorded + dead-lettered);
- the poison objects' messages are recorded once each, `failed`, final (a permanent failure
  is acknowledged), and the DLQ holds nothing else;
- the report's totals for the day equal the records.

Bounded: --events messages (default 10,000) and --max-minutes (default 30).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "python"))

from conftest import oss_client  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402
from stack import AWS_REGION, OSS_ACCESS_KEY_SECRET, STACK_DIR, Moto, OssEmulator, SyncTask  # noqa: E402

AWKWARD = ["plain.txt", "a dir/with space.txt", "plus+sign", "percent%41", "ü/日本語.txt", "q?x=1&y#z",
           "tab\tkey", "semi;colon,comma", "emoji-😀", "~tilde*star'quote", "(paren)[bracket]"]


def body(seed: int, size: int) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (block * (size // len(block) + 1))[:size]


def set_faults(emulator, **faults):
    req = urllib.request.Request(f"{emulator.endpoint}/_emulator/faults", data=json.dumps(faults).encode(),
                                 method="PUT", headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=10).close()


class Poller:
    """`sync poll` that is killed with SIGKILL at random moments and started again."""

    def __init__(self, task: SyncTask, rng: random.Random, kill_every: tuple[float, float], **settings: str):
        self.task, self.rng, self.kill_every, self.settings = task, rng, kill_every, settings
        self.kills = 0
        self.proc = task.poll(max_seconds=3600, until_empty=False, log=STACK_DIR / "soak-poll-0.log",
                              **settings)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.wait(self.rng.uniform(*self.kill_every)):
            self.proc.kill()
            self.proc.wait()
            self.kills += 1
            self.proc = self.task.poll(max_seconds=3600, until_empty=False,
                                       log=STACK_DIR / f"soak-poll-{self.kills}.log", **self.settings)

    def calm(self):
        """No more kills; the poller runs on."""
        self.stop.set()
        self.thread.join()

    def close(self):
        self.calm()
        self.proc.terminate()
        self.proc.wait(timeout=60)


def drain(sqs, url: str) -> list[dict]:
    out = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   VisibilityTimeout=60).get("Messages", [])
        if not msgs:
            return out
        out.extend(msgs)
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])


def event_key(body_text: str) -> str | None:
    try:
        return urllib.parse.unquote_plus(json.loads(body_text)["Records"][0]["s3"]["object"]["key"])
    except (KeyError, IndexError, ValueError, TypeError):
        return None


class Events:
    """The soak's own S3 events: one per change, with a sequencer that increases per key in the
    order of the writes (one global counter, as the writes are made one at a time)."""

    def __init__(self, bucket: str):
        self.bucket, self.counter, self.bodies = bucket, 0, []

    def add(self, name: str, key: str, size: int | None = None, etag: str | None = None):
        self.counter += 1
        obj = {"key": urllib.parse.quote_plus(key, safe="/"), "sequencer": f"{0x0066A1B2C3000000 + self.counter:016X}"}
        if size is not None:
            obj["size"] = size
        if etag:
            obj["eTag"] = etag.strip('"')
        now = datetime.now(timezone.utc)
        self.bodies.append(json.dumps({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": AWS_REGION,
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
            "eventName": name, "userIdentity": {"principalId": "AWS:AIDASOAK"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "soak",
                   "bucket": {"name": self.bucket, "arn": f"arn:aws:s3:::{self.bucket}"}, "object": obj}}]}))

    def take(self) -> list[str]:
        out, self.bodies = self.bodies, []
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000, help="messages to send to the task queue")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--fault-rate", type=float, default=0.10, help="share of OSS requests failing (500/503)")
    ap.add_argument("--latency-ms", type=int, default=20, help="added to every OSS request")
    ap.add_argument("--kill-every", type=float, nargs=2, default=(4.0, 12.0), metavar=("MIN", "MAX"),
                    help="seconds between SIGKILLs of the poller")
    ap.add_argument("--s3-head-fault-rate", type=float, default=0.10,
                    help="share of the poller's source HEADs answered 503 SlowDown on every SDK attempt")
    ap.add_argument("--moto-events", action="store_true",
                    help="forward moto's notifications (no sequencer) instead of the soak's own events")
    ap.add_argument("--visibility", type=int, default=12,
                    help="the task queue's visibility timeout; the invocation timeout is a sixth of it")
    ap.add_argument("--max-minutes", type=float, default=30)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    deadline = time.time() + args.max_minutes * 60
    started = time.time()

    moto = emulator = poller = proxy = None
    try:
        moto, emulator = Moto(), OssEmulator()
        task = SyncTask(moto, emulator, task_id="soak", SYNC_DELETES="true", visibility=args.visibility,
                        max_receive=10, RUST_LOG="warn")
        # The poller's S3 requests go through the fault proxy; SQS stays on moto. A HEAD picked
        # fails three times in a row: the SDK's standard retries (3 attempts) do not hide it.
        proxy = FaultProxy(moto.endpoint).start()
        head_faults = proxy.fail("HEAD", task.source, rate=args.s3_head_fault_rate, burst=3, seed=args.seed)
        events = Events(task.source)
        s3, sqs = task.s3, task.sqs
        # Real notifications go to an intake queue; the soak forwards them with duplicates.
        intake = sqs.create_queue(QueueName="soak-intake")["QueueUrl"]
        intake_arn = task.queue_arn(intake)
        s3.put_bucket_notification_configuration(Bucket=task.source, NotificationConfiguration={
            "QueueConfigurations": [{"Id": "soak", "QueueArn": intake_arn,
                                     "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})
        drain(sqs, intake)  # the test event
        sqs.purge_queue(QueueUrl=task.queue_url)
        set_faults(emulator, error_rate=args.fault_rate, latency_ms=args.latency_ms, seed=args.seed)

        keys = [f"soak/{i:04d}-{AWKWARD[i % len(AWKWARD)]}" for i in range(1500)]
        hot = keys[:20]
        # 1,024-byte keys: S3 takes them, OSS (at most 1,023 bytes) cannot.
        poison_keys = [f"poison{i}/".ljust(1024, "p") for i in range(3)]
        sent_ids: dict[str, str] = {}  # message id -> key
        poison_ids: set[str] = set()
        ops = Counter()
        poller = Poller(task, rng, tuple(args.kill_every), AWS_ENDPOINT_URL_S3=proxy.endpoint)
        backlog: list[str] = []
        n = rounds = 0
        print(f"soak: {args.events} events ({'moto' if args.moto_events else 'sequenced'}), "
              f"{args.fault_rate:.0%} OSS faults, +{args.latency_ms} ms, "
              f"{args.s3_head_fault_rate:.0%} source HEADs 503, "
              f"SIGKILL every {args.kill_every[0]:.0f}-{args.kill_every[1]:.0f} s", flush=True)
        while len(sent_ids) < args.events:
            if time.time() > deadline:
                raise SystemExit(f"soak: time limit reached after {len(sent_ids)} events")
            # A round of changes to the source.
            for _ in range(50):
                n += 1
                r = rng.random()
                k = rng.choice(hot) if rng.random() < 0.3 else rng.choice(keys)
                if r < 0.65:
                    size = rng.choice([0, 1, 100, 4096, 20_000, 70_000]) if rng.random() < 0.97 else 1_500_000
                    out = s3.put_object(Bucket=task.source, Key=k, Body=body(n, size),
                                        ContentType="application/x-soak", Metadata={"v": str(n)})
                    events.add("ObjectCreated:Put", k, size, out["ETag"])
                    ops["put"] += 1
                elif r < 0.85:
                    s3.delete_object(Bucket=task.source, Key=k)
                    events.add("ObjectRemoved:Delete", k)
                    ops["delete"] += 1
                elif r < 0.92:
                    # New metadata, same bytes: S3 keeps the ETag (CopyObject onto itself).
                    try:
                        out = s3.copy_object(Bucket=task.source, Key=k,
                                             CopySource={"Bucket": task.source, "Key": k},
                                             MetadataDirective="REPLACE", ContentType="application/x-soak",
                                             Metadata={"v": f"meta{n}"})
                        size = s3.head_object(Bucket=task.source, Key=k)["ContentLength"]
                        events.add("ObjectCreated:Copy", k, size, out["CopyObjectResult"]["ETag"])
                        ops["metadata only"] += 1
                    except s3.exceptions.NoSuchKey:
                        ops["metadata only, absent"] += 1
                else:
                    s3.delete_object(Bucket=task.source, Key=k)
                    events.add("ObjectRemoved:Delete", k)
                    out = s3.put_object(Bucket=task.source, Key=k, Body=body(n, 300), Metadata={"v": f"re{n}"})
                    events.add("ObjectCreated:Put", k, 300, out["ETag"])
                    ops["delete and re-create"] += 1
            rounds += 1
            if rounds in (2, 6, 12):
                out = s3.put_object(Bucket=task.source, Key=poison_keys[ops["poison"]], Body=b"poison")
                events.add("ObjectCreated:Put", poison_keys[ops["poison"]], 6, out["ETag"])
                ops["poison"] += 1
            # Forward: each event once, or two or three times; shuffled with the last round's.
            notified = [m["Body"] for m in drain(sqs, intake)]
            for b in (notified if args.moto_events else events.take()):
                backlog.extend([b] * rng.choice([1, 1, 1, 2, 3]))
            rng.shuffle(backlog)
            keep = len(backlog) // 4  # a quarter waits for the next round: reordering across rounds
            out, backlog = backlog[keep:], backlog[:keep]
            for i in range(0, len(out), 10):
                chunk = out[i:i + 10]
                res = sqs.send_message_batch(QueueUrl=task.queue_url, Entries=[
                    {"Id": str(j), "MessageBody": b} for j, b in enumerate(chunk)])
                assert not res.get("Failed"), res["Failed"]
                for ok in res["Successful"]:
                    k = event_key(chunk[int(ok["Id"])])
                    sent_ids[ok["MessageId"]] = k
                    if k in poison_keys:
                        poison_ids.add(ok["MessageId"])
            # Keep the queue short (moto's ReceiveMessage scans it whole).
            while task.queue_depths(task.queue_url)[0] > 300 and time.time() < deadline:
                time.sleep(0.5)
            print(f"soak: {len(sent_ids)} events sent, {poller.kills} kills, {time.time() - started:.0f} s",
                  flush=True)
        for b in backlog:  # the last ones held back
            res = sqs.send_message(QueueUrl=task.queue_url, MessageBody=b)
            sent_ids[res["MessageId"]] = event_key(b)
            if event_key(b) in poison_keys:
                poison_ids.add(res["MessageId"])

        # Quiesce: no more kills, faults off, the queue emptied.
        poller.calm()
        set_faults(emulator)
        proxy.clear()
        # Rechecks wait in the queue as delayed messages: empty means none of those either.
        while task.pending(task.queue_url):
            if time.time() > deadline:
                raise SystemExit(f"soak: the queue did not empty: {task.queue_depths(task.queue_url)}, "
                                 f"{task.pending(task.queue_url)} in all with the delayed")
            time.sleep(1)
        time.sleep(2)
        poller.close()
        kills = poller.kills
        poller = None

        # Invariants.
        problems = []
        dead = drain(sqs, task.dlq_url)
        dead_ids = {m["MessageId"] for m in dead}
        records = task.records()
        # A redelivery hands its message to a recheck (a new message the poller sends); its records
        # name the message it stands for.
        recorded_ids = {r.get("recheck_of") or r["message_id"] for r in records}
        unknown = recorded_ids - set(sent_ids)
        silently_acked = set(sent_ids) - dead_ids - recorded_ids
        if unknown:
            problems.append(f"{len(unknown)} records for messages never sent")
        if silently_acked:
            problems.append(f"{len(silently_acked)} messages acknowledged without a record")
        # A poison object can never be stored: a permanent failure, recorded final and acknowledged
        # (a kill between the record and the acknowledgement brings it again, handed to a recheck
        # that records it again, the same way; a duplicate handled in the same batch is superseded
        # by its twin, final too).
        poison_records = [r for r in records if (r.get("recheck_of") or r["message_id"]) in poison_ids]
        refused = {r["source_key"] for r in poison_records if r["outcome"] == "failed"}
        if ({r.get("recheck_of") or r["message_id"] for r in poison_records} != poison_ids
                or refused != set(poison_keys[:ops["poison"]])
                or any((r["outcome"], r.get("error_code"), r["final"]) not in
                       (("failed", "InvalidObjectName", True), ("superseded", None, True),
                        ("deferred", "Rechecking", False))
                       for r in poison_records)):
            problems.append(f"the poison messages' records are not all final InvalidObjectName failures: "
                            f"{[(r['outcome'], r.get('error_code'), r['final']) for r in poison_records]}")
        if dead_ids:
            problems.append(f"the DLQ holds {len(dead_ids)} messages, {len(dead_ids & poison_ids)} of them poison")

        client = oss_client(emulator.endpoint)
        import alibabacloud_oss_v2 as oss

        source = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=task.source):
            for o in page.get("Contents", []):
                source[o["Key"]] = o
        dest, token = {}, None
        while True:
            r = client.list_objects_v2(oss.ListObjectsV2Request(bucket=task.dest, continuation_token=token,
                                                                 max_keys=1000))
            dest.update({o.key: o for o in r.contents or [] if not o.key.startswith("reports/")})
            if not r.is_truncated:
                break
            token = r.next_continuation_token
        expected = {k for k in source if k not in poison_keys}
        divergent = sorted((expected ^ set(dest)))
        for k in sorted(expected & set(dest)):
            src = s3.get_object(Bucket=task.source, Key=k)
            data = src["Body"].read()
            got = client.get_object(oss.GetObjectRequest(bucket=task.dest, key=k))
            meta = {a.lower(): b for a, b in (got.metadata or {}).items()}
            if (hashlib.md5(got.body.read()).digest() != hashlib.md5(data).digest()
                    or got.content_type != src.get("ContentType")
                    or meta.get("v") != src.get("Metadata", {}).get("v")):
                divergent.append(k)
        if divergent:
            problems.append(f"{len(divergent)} objects differ, first {divergent[:3]!r}")

        now = datetime.now(timezone.utc)
        task.report(now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        day = now.date().isoformat()
        summary = json.loads(client.get_object(oss.GetObjectRequest(
            bucket=task.dest, key=f"reports/soak/{day}/summary.json")).body.read())
        todays = [r for r in records if r["processed_at"].startswith(day)]
        want = Counter(r["outcome"] for r in todays)
        got_counts = {k: v for k, v in summary["counts"].items() if v}
        if summary["records"] != len(todays) or got_counts != dict(want):
            problems.append(f"the report says {summary['records']} records {got_counts}, "
                            f"the records are {len(todays)} {dict(want)}")

        # No secret in any log line, record or report file.
        secret_hits = 0
        log_lines = 0
        for log in STACK_DIR.glob("soak-poll-*.log"):
            for line in log.read_text(errors="replace").splitlines():
                log_lines += 1
                secret_hits += OSS_ACCESS_KEY_SECRET in line
        secret_hits += sum(OSS_ACCESS_KEY_SECRET in json.dumps(r) for r in records)
        r = client.list_objects_v2(oss.ListObjectsV2Request(bucket=task.dest, prefix="reports/"))
        for o in r.contents or []:
            text = client.get_object(oss.GetObjectRequest(bucket=task.dest, key=o.key)).body.read()
            secret_hits += OSS_ACCESS_KEY_SECRET.encode() in text
        if secret_hits:
            problems.append(f"the OSS secret appears {secret_hits} times in logs, records or reports")

        stats = json.loads(urllib.request.urlopen(f"{emulator.endpoint}/_emulator/stats", timeout=10).read())
        figures = {
            "events_sent": len(sent_ids),
            "source_changes": dict(ops),
            "poller_kills": kills,
            "oss_requests": stats.get("requests"),
            "oss_faults_injected": stats.get("server_errors"),
            "records": len(records),
            "outcomes": dict(Counter(r["outcome"] for r in records)),
            "dead_lettered": len(dead_ids),
            "poison_records": len(poison_records),
            "events": "moto" if args.moto_events else "sequenced",
            "s3_heads": proxy.count("HEAD", task.source),
            "s3_head_faults_injected": head_faults.failed,
            "records_failed_by_s3_head": sum(1 for r in records if r["outcome"] == "failed"
                                             and "HeadObject" in (r.get("error_message") or "")),
            "final_records": sum(1 for r in records if r["final"]),
            "objects_compared": len(expected),
            "objects_diverged": len(divergent),
            # With the queue empty, a message sent and not dead-lettered was acknowledged; one
            # without a record is both a lost record and a silently acknowledged message.
            "records_lost": len(silently_acked),
            "messages_acknowledged_without_record": len(silently_acked),
            "log_lines_checked_for_secrets": log_lines,
            "secrets_found": secret_hits,
            "seconds": round(time.time() - started),
        }
        print(json.dumps(figures, indent=2, ensure_ascii=False))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
        if problems:
            for p in problems:
                print(f"soak: FAILED: {p}", file=sys.stderr)
            return 1
        print(f"soak: {len(sent_ids)} events, {kills} poller kills, {figures['oss_faults_injected']} OSS faults, "
              f"{head_faults.failed} S3 HEAD 503s: 0 divergent objects of {len(expected)}, 0 lost records, "
              f"0 messages acknowledged without a record, the {len(poison_ids)} poison messages final "
              f"failures and acknowledged, DLQ empty, report totals = records")
        return 0
    finally:
        if poller is not None:
            poller.close()
        if proxy is not None:
            proxy.stop()
        for part in (emulator, moto):
            if part is not None:
                part.stop()


if __name__ == "__main__":
    sys.exit(main())
