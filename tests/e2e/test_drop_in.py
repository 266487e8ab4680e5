"""A rulebook written for amazon.aws.aws_sqs_queue runs after changing only the source name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.support import DemoTarget, Rulebook, subprocess_env
from tests.support.aws import REGION, TestQueue

pytestmark = pytest.mark.e2e

# amazon.aws's own example, its options as that plugin documents them, with only the
# source's name changed (and a local endpoint).
AMAZON_AWS_RULEBOOK = """
- name: SQS events
  hosts: all
  sources:
    - durable.eda.aws_sqs_queue:
        name: {queue}
        region: {region}
        endpoint_url: {endpoint}
        delay_seconds: 1
        max_number_of_messages: 1
  rules:
    - name: Failed build
      condition: event.body.status == "failed" and event.meta.event.uuid is defined
      action:
        debug:
          msg: >-
            failed build {{{{ event.body.build }}}} message {{{{ event.meta.MessageId }}}}
            uuid {{{{ event.meta.event.uuid }}}}
"""


def test_an_amazon_aws_rulebook_runs_unchanged_but_for_the_name(
    queue: TestQueue,
    target: DemoTarget,
    installed_collection: Path,
    moto_endpoint: str,
    tmp_path: Path,
) -> None:
    rulebook_file = tmp_path / "amazon_aws_style.yml"
    rulebook_file.write_text(
        AMAZON_AWS_RULEBOOK.format(queue=queue.name, region=REGION, endpoint=moto_endpoint)
    )
    rulebook = Rulebook(
        rulebook=str(rulebook_file),
        workdir=tmp_path,
        inventory=target.inventory,
        variables={},
        env={**subprocess_env(installed_collection), "JAVA_TOOL_OPTIONS": "-Xrs"},
    ).start()
    try:
        message_id = queue.send(json.dumps({"status": "failed", "build": 42}))
        expected = f"failed build 42 message {message_id} uuid {message_id}"
        rulebook.wait_for(lambda: expected in rulebook.log_tail(400), 90, "the rule to fire")
        rulebook.wait_for(lambda: queue.counts() == (0, 0), 30, "the message deleted")
    finally:
        rulebook.kill()
