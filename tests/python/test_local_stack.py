"""The local stack works as later tests rely on: moto really sends S3 notifications to SQS."""

import json
import urllib.parse

from stack import OssEmulator

AWKWARD_KEYS = ["plain.txt", "a dir/with space.txt", "plus+sign", "percent%41", "ü/日本語.txt",
                "q?x=1&y#z", "trailing/"]


def notify(moto, bucket="src", queue="task"):
    s3, sqs = moto.client("s3"), moto.client("sqs")
    s3.create_bucket(Bucket=bucket)
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]}]})
    return s3, sqs, url


def drain(sqs, url):
    bodies = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_s3_notifications_arrive_in_sqs(moto):
    s3, sqs, url = notify(moto)
    for k in AWKWARD_KEYS:
        s3.put_object(Bucket="src", Key=k, Body=k.encode())
    s3.delete_object(Bucket="src", Key="plain.txt")
    bodies = drain(sqs, url)
    assert bodies[0]["Event"] == "s3:TestEvent"
    records = [r for b in bodies[1:] for r in b["Records"]]
    names = [r["eventName"] for r in records]
    assert names == ["ObjectCreated:Put"] * len(AWKWARD_KEYS) + ["ObjectRemoved:Delete"]
    # Keys arrive form-URL-encoded, as from S3.
    keys = [urllib.parse.unquote_plus(r["s3"]["object"]["key"]) for r in records]
    assert keys == AWKWARD_KEYS + ["plain.txt"]
    assert records[0]["s3"]["object"]["size"] == len("plain.txt")
    assert all(r["s3"]["bucket"]["name"] == "src" for r in records)


def test_reset_clears_state_between_tests(moto):
    s3 = moto.client("s3")
    assert s3.list_buckets()["Buckets"] == []
    s3.create_bucket(Bucket="left-behind")
    moto.reset()
    assert s3.list_buckets()["Buckets"] == []


def test_emulator_listens_on_loopback_and_stops():
    e = OssEmulator()
    assert e.addr.startswith("127.0.0.1:")
    pid = e.process.proc.pid
    e.stop()
    assert e.process.proc.poll() is not None, f"emulator {pid} still running"
    assert not e.process.pidfile.exists()
