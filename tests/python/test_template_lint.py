"""The SAM template as deployment sees it: samtranslator's transform, then cfn-lint. A broken
template must fail the same lint `make test` runs."""

import json
import subprocess
import sys
from pathlib import Path

from stack import ROOT, local_env

LINT = [sys.executable, str(ROOT / "scripts" / "lint_template.py")]


def lint(path: Path) -> subprocess.CompletedProcess:
    env = local_env()
    return subprocess.run(LINT + [str(path)], capture_output=True, text=True, env=env, timeout=300)


def test_the_template_is_clean():
    r = lint(ROOT / "template.yaml")
    assert r.returncode == 0, r.stderr


def test_a_bad_runtime_fails_the_lint(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text((ROOT / "template.yaml").read_text().replace("provided.al2023", "provided.al2099"))
    r = lint(broken)
    assert r.returncode != 0 and "provided.al2099" in r.stderr, r.stderr


def test_a_misspelled_report_batch_item_failures_fails_the_lint(tmp_path):
    broken = tmp_path / "template.yaml"
    text = (ROOT / "template.yaml").read_text()
    assert "[ReportBatchItemFailures]" in text
    broken.write_text(text.replace("[ReportBatchItemFailures]", "[ReportBatchItemFailure]"))
    r = lint(broken)
    assert r.returncode != 0 and "ReportBatchItemFailure" in r.stderr, r.stderr


def test_no_policy_grants_every_resource():
    from cfnlint.decode import decode_str
    from samtranslator.translator.transform import transform

    sys.path.insert(0, str(ROOT / "scripts"))
    import lint_template

    template, _ = decode_str((ROOT / "template.yaml").read_text())
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res["Properties"]["CodeUri"] = "s3://packaged-code/x.zip"
    cfn = transform(template, {}, lint_template.NoManagedPolicies())
    checked = 0
    for name, res in cfn["Resources"].items():
        if res["Type"] != "AWS::IAM::Role":
            continue
        for policy in res["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                resources = st.get("Resource")
                resources = resources if isinstance(resources, list) else [resources]
                assert "*" not in resources, (name, json.dumps(st))
                checked += 1
    assert checked >= 8, checked


def test_queue_dlq_policy_alarms_and_retention_as_the_issue_asks():
    from cfnlint.decode import decode_str

    t, _ = decode_str((ROOT / "template.yaml").read_text())
    params, res = t["Parameters"], t["Resources"]
    # The visibility timeout is at least six times every timeout the function may be given, plus
    # every batching window it may be given (as Lambda asks).
    timeouts = params["SyncTimeout"]["AllowedValues"]
    windows = params["MaximumBatchingWindowInSeconds"]["AllowedValues"]
    mapping = t["Mappings"]["VisibilityForTimeout"]
    assert sorted(mapping) == sorted(timeouts)
    assert all(sorted(mapping[s]) == sorted(windows) for s in timeouts)
    assert all(mapping[s][w] >= 6 * int(s) + int(w) for s in timeouts for w in windows)
    assert res["TaskQueue"]["Properties"]["VisibilityTimeout"] == \
        {"Fn::FindInMap": ["VisibilityForTimeout", {"Ref": "SyncTimeout"}, {"Ref": "MaximumBatchingWindowInSeconds"}]}
    assert params["MaxReceiveCount"]["MinValue"] >= 5
    redrive = res["TaskQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    # Only the source bucket's notifications, from this account, may send to the queue.
    [statement] = res["TaskQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert "SourceBucketName" in json.dumps(statement["Condition"]["ArnEquals"])
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # Credentials only as a secret ARN; no parameter holds a key.
    assert not [p for p in params if "Key" in p or "Password" in p]
    # Alarms and log retention.
    alarms = {r["Properties"]["MetricName"] for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "Errors"} <= alarms
    groups = [r for r in res.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 2 and all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)
    sync = res["SyncFunction"]["Properties"]["Events"]["TaskQueue"]["Properties"]
    assert sync["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_one_report_writer_and_the_lease_is_allowed():
    from cfnlint.decode import decode_str

    t, _ = decode_str((ROOT / "template.yaml").read_text())
    report = t["Resources"]["ReportFunction"]["Properties"]
    assert report["ReservedConcurrentExecutions"] == 1
    # Both functions see the same report area.
    assert t["Globals"]["Function"]["Environment"]["Variables"]["REPORT_PREFIX"] == {"Ref": "ReportPrefix"}
    assert t["Parameters"]["ReportPrefix"]["Default"] == "reports"
    statements = [s for p in report["Policies"] for s in p.get("Statement", [])]
    [lease] = [s for s in statements if s.get("Sid") == "HoldReportLease"]
    assert sorted(lease["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert "results-locks/${TaskId}/*" in json.dumps(lease["Resource"])


def test_alarms_reach_someone_and_the_operator_has_a_dashboard():
    from cfnlint.decode import decode_str

    t, _ = decode_str((ROOT / "template.yaml").read_text())
    res, params, outputs = t["Resources"], t["Parameters"], t["Outputs"]
    alarms = [r for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) >= 5
    for a in alarms:
        assert a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], a
    assert res["AlarmTopic"]["Type"] == "AWS::SNS::Topic"
    assert res["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"
    assert params["AlarmEmail"]["Default"] == ""
    assert {"DeadLetterQueueArn", "AlarmTopicArn", "DashboardName"} <= set(outputs)
    body = json.dumps(res["Dashboard"]["Properties"]["DashboardBody"])
    for metric in ("ApproximateAgeOfOldestMessage", "ObjectsCopied", "BytesCopied", "ReplicationLag",
                   "ObjectsFailed", "ReportDaysComplete", "last_complete_day", "error_code"):
        assert metric in body, metric


def test_a_batch_over_ten_without_a_window_is_refused_by_a_rule():
    from cfnlint.decode import decode_str

    t, _ = decode_str((ROOT / "template.yaml").read_text())
    [assertion] = t["Rules"]["BatchOverTenNeedsAWindow"]["Assertions"]
    small, window = assertion["Assert"]["Fn::Or"]

    # The rule's two conditions, evaluated as CloudFormation does, for the values a user may give.
    def holds(batch: str, win: str) -> bool:
        values, ref = small["Fn::Contains"]
        assert ref == {"Ref": "BatchSize"}
        [[ref, zero]] = [window["Fn::Not"][0]["Fn::Equals"]]
        assert ref == {"Ref": "MaximumBatchingWindowInSeconds"}
        return batch in values or win != zero

    assert holds("10", "0") and holds("100", "1") and holds("1", "0")
    assert not holds("11", "0") and not holds("100", "0")


def test_every_setting_a_user_may_want_is_a_parameter():
    from cfnlint.decode import decode_str

    t, _ = decode_str((ROOT / "template.yaml").read_text())
    env = dict(t["Globals"]["Function"]["Environment"]["Variables"])
    for fn in ("SyncFunction", "ReportFunction"):
        env.update(t["Resources"][fn]["Properties"]["Environment"]["Variables"])
    for variable in ("SYNC_TAGS", "STORAGE_CLASS_MAP", "STRIP_SOURCE_PREFIX", "SYNC_CONCURRENCY", "OSS_NETWORK",
                     "REPORT_PREFIX", "RUST_LOG", "REPORT_S3_BUCKET"):
        assert variable in env and "Ref" in json.dumps(env[variable]), variable
    # RUST_LOG only when a level is chosen: otherwise Lambda's own log level setting is followed.
    assert env["RUST_LOG"] == {"Fn::If": ["HasLogLevel", {"Ref": "LogLevel"}, {"Ref": "AWS::NoValue"}]}
    assert t["Parameters"]["LogLevel"]["Default"] == ""
    # A KMS key list grants kms:Decrypt to both functions, only when given.
    for fn in ("SyncFunction", "ReportFunction"):
        text = json.dumps(t["Resources"][fn]["Properties"]["Policies"])
        assert '"kms:Decrypt"' in text and "HasKmsKeys" in text, fn
