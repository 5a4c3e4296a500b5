"""The notification merge keeps a bucket's other notifications and is idempotent (against moto)."""

import subprocess
import sys

from stack import ROOT, local_env


def run(moto, *args):
    env = local_env()
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "add_notification.py"), "--endpoint-url",
                           moto.endpoint, *args], capture_output=True, text=True, env=env, timeout=60)


def bucket_and_queues(moto):
    """The source bucket `src`, and the ARNs of another queue and the task's queue."""
    s3, sqs = moto.client("s3"), moto.client("sqs")
    s3.create_bucket(Bucket="src")

    def arn(name: str) -> str:
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    return s3, arn("other"), arn("task")


def test_merge_keeps_existing_configurations_and_is_idempotent(moto):
    s3, other, ours = bucket_and_queues(moto)
    s3.put_bucket_notification_configuration(Bucket="src", NotificationConfiguration={
        "QueueConfigurations": [{"Id": "existing", "QueueArn": other, "Events": ["s3:ObjectRestore:*"]}]})
    for _ in range(2):
        r = run(moto, "--bucket", "src", "--queue-arn", ours, "--prefix", "data/", "--deletes")
        assert r.returncode == 0, r.stderr
        assert "1 other configuration(s) kept" in r.stdout
    queues = s3.get_bucket_notification_configuration(Bucket="src")["QueueConfigurations"]
    assert sorted(q["Id"] for q in queues) == ["existing", "s3-oss-sync"]
    mine = next(q for q in queues if q["Id"] == "s3-oss-sync")
    assert mine["QueueArn"] == ours and "s3:ObjectRemoved:*" in mine["Events"]
    assert mine["Filter"]["Key"]["FilterRules"][0]["Value"] == "data/"


def test_remove_takes_out_only_ours_and_is_idempotent(moto):
    s3, other, ours = bucket_and_queues(moto)
    existing = {"Id": "existing", "QueueArn": other, "Events": ["s3:ObjectRestore:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "data/"}]}}}
    s3.put_bucket_notification_configuration(Bucket="src", NotificationConfiguration={
        "QueueConfigurations": [existing]})
    r = run(moto, "--bucket", "src", "--queue-arn", ours, "--prefix", "data/")
    assert r.returncode == 0, r.stderr

    # Another queue named: refused, nothing changed.
    r = run(moto, "--bucket", "src", "--remove", "--queue-arn", other)
    assert r.returncode == 1 and "nothing removed" in r.stderr
    queues = s3.get_bucket_notification_configuration(Bucket="src")["QueueConfigurations"]
    assert sorted(q["Id"] for q in queues) == ["existing", "s3-oss-sync"]

    r = run(moto, "--bucket", "src", "--remove", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert '"s3-oss-sync"' not in r.stdout and '"existing"' in r.stdout
    assert len(s3.get_bucket_notification_configuration(Bucket="src")["QueueConfigurations"]) == 2

    r = run(moto, "--bucket", "src", "--remove", "--queue-arn", ours)
    assert r.returncode == 0, r.stderr
    assert "1 other configuration(s) kept" in r.stdout
    queues = s3.get_bucket_notification_configuration(Bucket="src")["QueueConfigurations"]
    assert [q["Id"] for q in queues] == ["existing"]
    assert queues[0]["QueueArn"] == other and queues[0]["Events"] == ["s3:ObjectRestore:*"]
    assert queues[0]["Filter"]["Key"]["FilterRules"][0]["Value"] == "data/"

    # Again: nothing to remove, nothing written.
    r = run(moto, "--bucket", "src", "--remove")
    assert r.returncode == 0, r.stderr
    assert "nothing removed" in r.stdout
    assert [q["Id"] for q in s3.get_bucket_notification_configuration(Bucket="src")["QueueConfigurations"]] == [
        "existing"]

    # The last entry removed (by its Id): the bucket is left with no notifications.
    r = run(moto, "--bucket", "src", "--remove", "--id", "existing")
    assert r.returncode == 0 and "0 other configuration(s) kept" in r.stdout, r.stderr
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket="src")
