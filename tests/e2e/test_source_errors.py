"""What a user sees from ansible-rulebook when the source cannot run: one clear reason."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.support import DemoTarget, subprocess_env, tool
from tests.support.aws import REGION, SESSION_TOKEN

pytestmark = pytest.mark.e2e

# Secrets belong in variables (--vars, -E, controller credentials): ansible-rulebook -vv
# prints the rulebook's source arguments as written, before it renders them.
SECRETS = {
    "aws_access_key": "AKIADURABLEE2E000001",
    "aws_secret_key": "e2e-secret-key-never-logged",
    "aws_session_token": SESSION_TOKEN,
}


def run_rulebook(
    workdir: Path, inventory: Path, collections: Path, options: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    rulebook = workdir / "rulebook.yml"
    ruleset = {
        "name": "source errors",
        "hosts": "all",
        "sources": [{"durable.eda.aws_sqs_queue": options}],
        "rules": [{"name": "any", "condition": "event.body is defined", "action": {"debug": {}}}],
    }
    rulebook.write_text(yaml.safe_dump([ruleset]))
    variables = workdir / "vars.yml"
    variables.write_text(yaml.safe_dump(SECRETS))
    # -vv: DEBUG for every logger, botocore's request headers included.
    command = [
        *(tool("ansible-rulebook"), "--rulebook", str(rulebook), "-i", str(inventory)),
        *("--vars", str(variables), "-vv"),
    ]
    return subprocess.run(
        command,
        cwd=workdir,
        env=subprocess_env(collections),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"nmae": "events"}, "unknown option(s) nmae for durable.eda.aws_sqs_queue; valid"),
        ({"name": "events", "max_number_of_messages": 50}, "must be from 1 to 10, got 50"),
        ({"name": "no-such-queue"}, "'no-such-queue' (region us-east-1) does not exist"),
    ],
    ids=["typo", "out-of-range", "missing-queue"],
)
def test_a_source_that_cannot_run_exits_1_with_the_reason_and_no_secret(
    installed_collection: Path,
    target: DemoTarget,
    moto_endpoint: str,
    tmp_path: Path,
    options: dict[str, Any],
    reason: str,
) -> None:
    options = {
        "region": REGION,
        "endpoint_url": moto_endpoint,
        "access_key": "{{ aws_access_key }}",
        "secret_key": "{{ aws_secret_key }}",
        "session_token": "{{ aws_session_token }}",
        **options,
    }
    result = run_rulebook(tmp_path, target.inventory, installed_collection, options)
    output = result.stdout + result.stderr

    assert result.returncode == 1, output
    assert reason in output
    assert SECRETS["aws_secret_key"] not in output
    assert SECRETS["aws_session_token"] not in output
