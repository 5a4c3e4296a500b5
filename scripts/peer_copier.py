"""A typical Python copier: what a team would write instead of s3-oss-sync, and the peer that
`make bench` measures it against (BENCHMARKS.md, "Peer").

One process, message by message: receive up to 10 messages from the queue, and for each S3
record in each message read the object with boto3's `get_object` and write it with the official
OSS SDK's (alibabacloud-oss-v2) `put_object`, then delete the message. No record, no check, no
retry beyond the SDKs' own. It stops when the queue is empty, and prints one JSON line: objects
copied, messages handled, seconds to the last copy and to the end.

Settings from the environment: TASK_QUEUE_URL, DEST_BUCKET, DEST_PREFIX, AWS_ENDPOINT_URL (or
AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_SQS), OSS_ENDPOINT, OSS_REGION, OSS_ACCESS_KEY_ID, OSS_ACCESS_KEY_SECRET.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse

import alibabacloud_oss_v2 as oss
import boto3


def main() -> int:
    env = os.environ
    session = boto3.session.Session(region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"))
    s3 = session.client("s3", endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"))
    sqs = session.client("sqs", endpoint_url=env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL"))
    cfg = oss.config.load_default()
    cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
        env["OSS_ACCESS_KEY_ID"], env["OSS_ACCESS_KEY_SECRET"])
    cfg.region = env["OSS_REGION"]
    cfg.endpoint = env["OSS_ENDPOINT"]
    cfg.use_path_style = True
    client = oss.Client(cfg)
    queue, dest, prefix = env["TASK_QUEUE_URL"], env["DEST_BUCKET"], env.get("DEST_PREFIX", "")
    copied = messages = 0
    started = last = time.monotonic()
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        batch = got.get("Messages", [])
        if not batch:
            attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            if all(v == "0" for v in attrs.values()):
                break
            continue
        for m in batch:
            for record in json.loads(m["Body"]).get("Records", []):
                if not record.get("eventName", "").startswith("ObjectCreated"):
                    continue
                key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
                body = s3.get_object(Bucket=record["s3"]["bucket"]["name"], Key=key)["Body"].read()
                client.put_object(oss.PutObjectRequest(bucket=dest, key=prefix + key, body=body))
                copied += 1
                last = time.monotonic()
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            messages += 1
    print(json.dumps({"copied": copied, "messages": messages,
                      "seconds_to_last_copy": round(last - started, 3),
                      "seconds": round(time.monotonic() - started, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
