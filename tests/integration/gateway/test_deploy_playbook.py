"""playbooks/deploy_gateway.yml against moto's server: all is created, a rerun changes nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.aws import REGION

VENV_BIN = Path(sys.executable).parent
_RECAP = re.compile(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


def run_playbook(project_root: Path, collections: Path, extra_vars: dict[str, Any]) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
    )
    result = subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            str(project_root / "playbooks" / "deploy_gateway.yml"),
            "-e",
            json.dumps(extra_vars),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def recap(output: str) -> tuple[int, int, int, int]:
    match = _RECAP.search(output)
    assert match, output[-2000:]
    ok, changed, unreachable, failed = (int(n) for n in match.groups())
    return ok, changed, unreachable, failed


def client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


# The standard queue's deployment also has a large payload bucket; the FIFO one has none.
@pytest.mark.parametrize("fifo", [False, True], ids=["standard-with-bucket", "fifo"])
def test_deploy_creates_everything_and_a_second_run_changes_nothing(
    moto_endpoint: str, project_root: Path, collections_path: Path, tmp_path: Path, fifo: bool
) -> None:
    name = f"gw-{uuid.uuid4().hex[:8]}"
    secret = client("secretsmanager", moto_endpoint).create_secret(
        Name=f"{name}/keys", SecretString="k1,k2"
    )
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"forward_if": {"field": "status", "equals": "failed"}}))
    extra_vars = {
        "gateway_name": name,
        "gateway_region": REGION,
        "gateway_aws_endpoint_url": moto_endpoint,
        "gateway_source": "github",
        "gateway_api_keys_secret_id": secret["Name"],
        "gateway_rules_file": str(rules),
        "gateway_zip": str(tmp_path / "gateway.zip"),
        "gateway_extra_environment": {"GATEWAY_GROUP_ID_FIELD": "repository.full_name"},
        "gateway_fifo": fifo,
    }
    bucket = None if fifo else f"{name}-payloads"
    if bucket is None:
        extra_vars["gateway_timeout"] = 12
    else:
        extra_vars["gateway_large_payload_bucket"] = bucket
    suffix = ".fifo" if fifo else ""

    first = run_playbook(project_root, collections_path, extra_vars)
    second = run_playbook(project_root, collections_path, extra_vars)

    assert recap(first)[1] >= 6
    assert recap(second)[1:] == (0, 0, 0), second[-3000:]

    sqs = client("sqs", moto_endpoint)
    queue_url = sqs.get_queue_url(QueueName=f"{name}-events{suffix}")["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=f"{name}-events-dlq{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])[
            "Attributes"
        ]["RedrivePolicy"]
    )
    assert redrive == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}

    iam = client("iam", moto_endpoint)
    policy = iam.get_role_policy(RoleName=name, PolicyName=name)["PolicyDocument"]
    actions = {json.dumps(s["Action"]) for s in policy["Statement"]}
    assert '"sqs:SendMessage"' in actions
    assert '"secretsmanager:GetSecretValue"' in actions
    puts = [s["Resource"] for s in policy["Statement"] if s["Action"] == "s3:PutObject"]
    assert puts == ([] if bucket is None else [f"arn:aws:s3:::{bucket}/*"])

    function = client("lambda", moto_endpoint).get_function(FunctionName=name)["Configuration"]
    assert function["Handler"] == "durable_eda_gateway.lambda_function.handler"
    assert function["Role"] == iam.get_role(RoleName=name)["Role"]["Arn"]
    # One setting: the function's timeout is the time the gateway budgets its AWS calls in;
    # with a bucket, a request may make a third call, an upload, so it gets more by default.
    timeout = 12 if bucket is None else 30
    assert function["Timeout"] == timeout
    large_payloads = {
        "GATEWAY_LARGE_PAYLOAD_BUCKET": bucket,
        "GATEWAY_MAX_REQUEST_BYTES": "10485760",
    }
    assert function["Environment"]["Variables"] == {
        "GATEWAY_QUEUE_URL": queue_url,
        "GATEWAY_SOURCE": "github",
        "GATEWAY_TIMEOUT_SECONDS": str(timeout),
        "GATEWAY_API_KEYS_SECRET_ID": secret["Name"],
        "GATEWAY_FILTER_RULES_FILE": "filter_rules.json",
        "GATEWAY_GROUP_ID_FIELD": "repository.full_name",
        **({} if bucket is None else large_payloads),
    }
    url = client("lambda", moto_endpoint).get_function_url_config(FunctionName=name)
    assert url["AuthType"] == "NONE"
    assert f"webhook URL: {url['FunctionUrl']}" in second

    # The zip Lambda would run: unpacked in a clean interpreter, with the function's settings.
    task_root = tmp_path / "task"
    with zipfile.ZipFile(tmp_path / "gateway.zip") as archive:
        archive.extractall(task_root)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
        **function["Environment"]["Variables"],
        "GATEWAY_AWS_ENDPOINT_URL": moto_endpoint,
        "PYTHONPATH": str(task_root),
    }
    if bucket is not None:
        assert_private_expiring_bucket(moto_endpoint, bucket, days=14)
    answers = subprocess.run(
        [sys.executable, "-c", INVOKE],
        cwd=task_root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    if bucket is None:
        assert json.loads(answers) == [[202, True], [202, False], [413, None]]
        return
    assert json.loads(answers) == [[202, True], [202, False], [202, True]]
    # The large webhook went to the bucket, its pointer to the queue.
    assert len(client("s3", moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"]) == 1


def assert_private_expiring_bucket(endpoint: str, bucket: str, days: int) -> None:
    s3 = client("s3", endpoint)
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    [rule] = encryption["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    blocked = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert blocked == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    [lifecycle] = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert lifecycle["Status"] == "Enabled"
    assert lifecycle["Expiration"] == {"Days": days}


INVOKE = """
import json
from durable_eda_gateway.lambda_function import handler
answers = []
for status, log in (("failed", ""), ("ok", ""), ("failed", "x" * 300_000)):
    event = {"version": "2.0", "headers": {"content-type": "application/json", "x-api-key": "k2"},
             "requestContext": {"http": {"method": "POST"}, "requestId": status},
             "body": json.dumps({"status": status, "log": log}), "isBase64Encoded": False}
    reply = handler(event, None)
    answers.append([reply["statusCode"], json.loads(reply["body"]).get("forwarded")])
print(json.dumps(answers))
"""
