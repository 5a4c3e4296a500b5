"""Lints a SAM template as deployment would see it: samtranslator transforms it (SAM errors such
as a misspelled FunctionResponseTypes surface here), then cfn-lint checks the CloudFormation
result. Exits non-zero with the errors on any problem. Usage: lint_template.py [template.yaml]"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cfnlint.decode import decode_str
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform


# The transform resolves pseudo parameters for a region; any region does, nothing is contacted.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


class NoManagedPolicies:
    """The template names no AWS managed policies, so nothing is looked up (and no network)."""

    def load(self):
        return {}


# SAM's own SQSPollerPolicy grants these batch actions; IAM authorises them (through the
# single-message actions) but cfn-lint's action list does not know them. Only these exact findings
# are passed over; any other warning or error fails.
SAM_POLLER_BATCH_ACTIONS = ("'changemessagevisibilitybatch' is not one of", "'deletemessagebatch' is not one of")


def sam_artefact(line: str) -> bool:
    return ":W3037:" in line and any(a in line for a in SAM_POLLER_BATCH_ACTIONS)


def main(path: str) -> int:
    text = Path(path).read_text()
    template, problems = decode_str(text)
    if problems:
        for p in problems:
            print(f"{path}: {p}", file=sys.stderr)
        return 1
    # As `sam package` would: local code is uploaded and CodeUri becomes an S3 location.
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function" and not str(props.get("CodeUri", "")).startswith("s3://"):
            props["CodeUri"] = f"s3://packaged-code/{name}.zip"
    try:
        cfn = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{path}: SAM: {cause.message}", file=sys.stderr)
        return 1
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(cfn, out, default=str, indent=1)
    lint = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", out.name],
                          capture_output=True, text=True)
    Path(out.name).unlink()
    findings = [line for line in lint.stdout.splitlines() if line.strip() and not sam_artefact(line)]
    if findings or (lint.returncode != 0 and not lint.stdout.strip()):
        print(f"{path}: cfn-lint on the transformed template:", file=sys.stderr)
        print("\n".join(findings) + lint.stderr, file=sys.stderr)
        return 1
    print(f"{path}: SAM transform and cfn-lint clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
