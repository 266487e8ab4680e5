"""durable.eda.lambda_function_url and durable.eda.gateway_package, run by ansible against moto."""

from __future__ import annotations

import io
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

from tests.support.aws import REGION

VENV_BIN = Path(sys.executable).parent
_RESULT = re.compile(r"^localhost \| (CHANGED|SUCCESS|FAILED!) => (\{.*\})", re.S | re.M)
PUBLIC_SIDS = {"durable-eda-function-url-public", "durable-eda-function-url-invoke"}


def run_module(
    collections: Path, module: str, args: dict[str, Any], check: bool = False
) -> tuple[bool, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    command = [str(VENV_BIN / "ansible"), "localhost", "-m", module, "-a", json.dumps(args)]
    result = subprocess.run(
        [*command, *(["--check"] if check else [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    match = _RESULT.search(result.stdout)
    assert match, result.stdout + result.stderr
    assert match.group(1) != "FAILED!", match.group(2)
    return match.group(1) == "CHANGED", json.loads(match.group(2))


def a_function(endpoint: str) -> str:
    name = f"fn-{uuid.uuid4().hex[:8]}"
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    boto3.client("lambda", endpoint_url=endpoint, region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )
    return name


def policy_sids(endpoint: str, name: str) -> set[str]:
    client = boto3.client("lambda", endpoint_url=endpoint, region_name=REGION)
    try:
        policy = client.get_policy(FunctionName=name)["Policy"]
    except client.exceptions.ResourceNotFoundException:
        return set()
    return {s["Sid"] for s in json.loads(policy)["Statement"]}


def test_function_url_lifecycle_is_idempotent(moto_endpoint: str, collections_path: Path) -> None:
    name = a_function(moto_endpoint)
    base = {"function_name": name, "endpoint_url": moto_endpoint, "region": REGION}
    public = {**base, "auth_type": "NONE"}
    module = "durable.eda.lambda_function_url"

    assert run_module(collections_path, module, public, check=True)[0] is True
    assert policy_sids(moto_endpoint, name) == set()

    changed, created = run_module(collections_path, module, public)
    assert changed
    assert created["function_url"].startswith("https://")
    assert created["auth_type"] == "NONE"
    assert policy_sids(moto_endpoint, name) == PUBLIC_SIDS

    changed, again = run_module(collections_path, module, public)
    assert (changed, again["function_url"]) == (False, created["function_url"])

    changed, private = run_module(collections_path, module, {**base, "auth_type": "AWS_IAM"})
    assert changed
    assert private["auth_type"] == "AWS_IAM"
    assert policy_sids(moto_endpoint, name) == set()

    assert run_module(collections_path, module, {**base, "state": "absent"})[0] is True
    assert run_module(collections_path, module, {**base, "state": "absent"})[0] is False


def test_gateway_package_is_reproducible(
    project_root: Path, collections_path: Path, tmp_path: Path
) -> None:
    args = {
        "src": str(project_root / "gateway" / "durable_eda_gateway"),
        "dest": str(tmp_path / "gateway.zip"),
    }
    module = "durable.eda.gateway_package"
    changed, first = run_module(collections_path, module, args)
    content = (tmp_path / "gateway.zip").read_bytes()
    (tmp_path / "gateway.zip").unlink()
    rebuilt = run_module(collections_path, module, args)
    assert changed
    assert rebuilt[0]
    assert (tmp_path / "gateway.zip").read_bytes() == content
    assert rebuilt[1]["code_sha256"] == first["code_sha256"]
    assert run_module(collections_path, module, args)[0] is False
    with zipfile.ZipFile(tmp_path / "gateway.zip") as archive:
        names = archive.namelist()
    assert "durable_eda_gateway/lambda_function.py" in names
    assert all(n.startswith("durable_eda_gateway/") and n.endswith(".py") for n in names)
