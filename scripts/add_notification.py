"""Points a bucket's event notifications at a task queue without losing the ones it has.

S3's PutBucketNotificationConfiguration replaces the bucket's whole configuration, so this reads
the existing one, replaces only the entry with our Id (or adds it), keeps every other queue, topic,
Lambda and EventBridge setting, and writes the result back. Run it again and nothing changes.
`--remove` takes out only the entry with our Id, the same way, and leaves the rest.

    python scripts/add_notification.py --bucket SOURCE --queue-arn ARN [--prefix P] [--id s3-oss-sync]
        [--deletes] [--endpoint-url URL] [--dry-run]
    python scripts/add_notification.py --bucket SOURCE --remove [--queue-arn ARN] [--id s3-oss-sync]
        [--endpoint-url URL] [--dry-run]
"""

import argparse
import json
import sys

import boto3

EVENTS = ["s3:ObjectCreated:*"]
DELETE_EVENTS = ["s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"]


def merged(existing: dict, our: dict) -> dict:
    """The existing configuration with `our` queue entry added or replaced (by Id)."""
    config = {k: v for k, v in existing.items() if k != "ResponseMetadata"}
    queues = [q for q in config.get("QueueConfigurations", []) if q.get("Id") != our["Id"]]
    queues.append(our)
    config["QueueConfigurations"] = queues
    return config


def without(existing: dict, ident: str) -> dict:
    """The existing configuration without the queue entry whose Id is `ident`; all else kept."""
    config = {k: v for k, v in existing.items() if k != "ResponseMetadata"}
    queues = [q for q in config.get("QueueConfigurations", []) if q.get("Id") != ident]
    if queues:
        config["QueueConfigurations"] = queues
    else:
        config.pop("QueueConfigurations", None)
    return config


def others(config: dict) -> int:
    """How many notification configurations (queues, topics, functions) `config` holds."""
    return sum(len(v) for k, v in config.items() if k.endswith("Configurations"))


def remove(s3, a) -> int:
    existing = s3.get_bucket_notification_configuration(Bucket=a.bucket)
    ours = [q for q in existing.get("QueueConfigurations", []) if q.get("Id") == a.id]
    if not ours:
        print(f"s3://{a.bucket}: no notification with id {a.id}; nothing removed")
        return 0
    if a.queue_arn and any(q.get("QueueArn") != a.queue_arn for q in ours):
        print(f"s3://{a.bucket}: the notification with id {a.id} goes to {ours[0].get('QueueArn')}, "
              f"not {a.queue_arn}; nothing removed", file=sys.stderr)
        return 1
    config = without(existing, a.id)
    if a.dry_run:
        print(json.dumps(config, indent=2))
        return 0
    s3.put_bucket_notification_configuration(Bucket=a.bucket, NotificationConfiguration=config)
    print(f"s3://{a.bucket}: notifications to {ours[0].get('QueueArn')} removed (id {a.id}); "
          f"{others(config)} other configuration(s) kept")
    return 0


def our_entry(queue_arn: str, prefix: str, ident: str, deletes: bool) -> dict:
    entry = {"Id": ident, "QueueArn": queue_arn, "Events": EVENTS + (DELETE_EVENTS if deletes else [])}
    if prefix:
        entry["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    return entry


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bucket", required=True)
    p.add_argument("--queue-arn", help="the task queue (required unless --remove; with --remove, "
                   "remove only if our entry goes to this queue)")
    p.add_argument("--prefix", default="")
    p.add_argument("--id", default="s3-oss-sync")
    p.add_argument("--deletes", action="store_true", help="also send removal events (for SyncDeletes=true)")
    p.add_argument("--endpoint-url", default=None)
    p.add_argument("--dry-run", action="store_true", help="print the merged configuration, write nothing")
    p.add_argument("--remove", action="store_true",
                   help="remove our entry (by --id) instead of adding it; every other configuration is kept")
    a = p.parse_args(argv)
    if not a.remove and not a.queue_arn:
        p.error("--queue-arn is required (unless --remove)")
    s3 = boto3.client("s3", endpoint_url=a.endpoint_url)
    if a.remove:
        return remove(s3, a)
    existing = s3.get_bucket_notification_configuration(Bucket=a.bucket)
    config = merged(existing, our_entry(a.queue_arn, a.prefix, a.id, a.deletes))
    if a.dry_run:
        print(json.dumps(config, indent=2))
        return 0
    s3.put_bucket_notification_configuration(Bucket=a.bucket, NotificationConfiguration=config)
    kept = others(config) - 1
    print(f"s3://{a.bucket}: notifications to {a.queue_arn} set (id {a.id}); {kept} other configuration(s) kept")
    return 0


if __name__ == "__main__":
    sys.exit(main())
