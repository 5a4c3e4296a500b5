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
