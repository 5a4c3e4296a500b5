"""`ctl --stack NAME`: the task's settings read from its deployment instead of the environment.

A deployed task is a CloudFormation stack whose outputs name its functions and queues; the
functions' environment holds every setting. moto serves CloudFormation and Lambda: the functions
are registered with their environment, a stack carries the template's output names, and `ctl`
runs with nothing but AWS credentials and an endpoint."""

import json
import subprocess

from stack import SyncTask, binary, local_env

STACK = "s3-oss-sync-test"


def deploy_like_sam(task: SyncTask) -> None:
    """The parts of a deployment `ctl --stack` reads: both functions with the settings the
    template gives them, and a stack whose outputs name them."""
    env = task.env()
    settings = {k: env[k] for k in ("TASK_ID", "SOURCE_BUCKET", "DEST_BUCKET", "DEST_PREFIX",
                                    "RESULTS_BUCKET", "OSS_ENDPOINT", "OSS_ALLOW_HTTP", "OSS_REGION",
                                    "OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET")}
    lam = task.moto.client("lambda")
    task.attach_function("stack-sync")
    lam.update_function_configuration(FunctionName="stack-sync", Environment={"Variables": {
        **settings, "SYNC_QUEUE_URL": task.queue_url}})
    role = task.moto.client("iam").get_role(RoleName="stack-sync-role")["Role"]["Arn"]
    lam.create_function(FunctionName="stack-report", Runtime="provided.al2023", Handler="bootstrap",
                        Role=role, Code={"ZipFile": zip_bootstrap()},
                        Environment={"Variables": {**settings, "TASK_QUEUE_URL": task.queue_url}})
    outputs = {"TaskQueueUrl": task.queue_url, "DeadLetterQueueUrl": task.dlq_url,
               "SyncFunctionName": "stack-sync", "ReportFunctionName": "stack-report",
               "ResultsBucketName": task.results}
    template = {"Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    task.moto.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))


def zip_bootstrap() -> bytes:
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    return code.getvalue()


def ctl(task: SyncTask, *args: str, **settings: str) -> subprocess.CompletedProcess:
    """`ctl` with AWS credentials and the endpoint only: no task settings in its environment."""
    env = {k: v for k, v in local_env().items()
           if not k.startswith(("TASK_", "SOURCE_", "DEST_", "RESULTS_", "OSS_", "SYNC_", "REPORT_"))}
    env.update(AWS_ENDPOINT_URL=task.moto.endpoint, **settings)
    return subprocess.run([str(binary("ctl")), *args], capture_output=True, text=True, env=env, timeout=120)


def test_status_from_the_stack_alone(moto, emulator):
    task = SyncTask(moto, emulator, task_id="stack-task", DEST_PREFIX="mirror/")
    deploy_like_sam(task)
    task.s3.put_object(Bucket=task.source, Key="a.txt", Body=b"a")

    p = ctl(task, "--stack", STACK, "status", "--json", "--no-cloudwatch")
    assert p.returncode == 0, p.stderr
    st = json.loads(p.stdout)
    assert st["task"] == "stack-task" and st["queue_url"] == task.queue_url, st
    assert st["delivery"] == "Enabled" and st["problems"] == [] and st["unavailable"] == [], st
    assert st["queue"]["visible"] == 1, st

    # What the environment says wins over the stack (a setting can be tried without a deploy).
    p = ctl(task, "--stack", STACK, "status", "--json", "--no-cloudwatch", TASK_ID="other-task")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["task"] == "other-task"
    assert 'from the environment, not stack "s3-oss-sync-test": TASK_ID' in p.stderr, p.stderr

    # ctl acts on the stack's task: pause switches the mapping the stack's sync function has.
    p = ctl(task, "--stack", STACK, "pause")
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "Disabled", p.stderr
    p = ctl(task, "--stack", STACK, "resume")
    assert p.returncode == 0 and json.loads(p.stdout)["state"] == "Enabled", p.stderr


def test_a_stack_that_cannot_be_read_is_a_configuration_error(moto, emulator):
    task = SyncTask(moto, emulator)
    p = ctl(task, "--stack", "no-such-stack", "status")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert 'cannot read the settings of stack "no-such-stack": no stack named' in p.stderr, p.stderr
    # Without --stack and without settings, the missing variables are named.
    p = ctl(task, "status")
    assert p.returncode == 2 and "TASK_QUEUE_URL" in p.stderr and "--stack" in p.stderr, p.stderr
