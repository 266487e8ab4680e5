"""A webhook too large for SQS, end to end: gateway -> S3 + pointer -> ansible-rulebook.

The gateway stores the 2 MB envelope in S3 and queues an SQS Extended Client pointer; the
source, with `large_payloads`, fetches it, and the rule fires on the payload's content and
remediates on the host it names. The rulebook is written here, so that what is exercised
is the gateway and the source, not the collection's remediation rules.
"""

from __future__ import annotations

import http.client
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import RulebookFactory
from tests.e2e.support import DemoTarget, NotifyReceiver
from tests.support.aws import TestQueue, s3_client
from tests.unit.gateway.support import API_KEY, config_for, serving

pytestmark = pytest.mark.e2e

TIMEOUT = 120.0
SIZE = 2_000_000

RULEBOOK = """
- name: large payloads
  hosts: all
  sources:
    - name: sqs
      durable.eda.aws_sqs_queue:
        name: "{{ sqs_queue_name }}"
        region: "{{ sqs_region }}"
        endpoint_url: "{{ sqs_endpoint_url }}"
        wait_time_seconds: 1
        large_payloads: true
        delete_large_payloads: true
        s3_endpoint_url: "{{ sqs_endpoint_url }}"
      filters:
        - durable.eda.insert_failing_host:
            host_paths: [body.payload.host]
  rules:
    - name: Restart the service a large failure report names
      condition: >-
        event.body.payload.status == "failed"
        and event.body.payload.service is defined and event.meta.hosts is defined
      action:
        run_playbook:
          name: durable.eda.restart_service
          extra_vars:
            remediation_service: "{{ event.body.payload.service }}"
            remediation_reason: "large report of {{ event.body.payload.log | length }} characters"
            remediation_event_id: "{{ event.meta.uuid }}"
            notify_url: "{{ notify_url }}"
"""


def stored_keys(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def post(url_host: str, port: int, body: bytes) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection(url_host, port, timeout=60)
    headers = {"content-type": "application/json", "x-api-key": API_KEY}
    try:
        connection.request("POST", "/", body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def test_a_2_mb_webhook_is_remediated_through_s3(
    queue: TestQueue,
    moto_endpoint: str,
    target: DemoTarget,
    start_rulebook: RulebookFactory,
    tmp_path: Path,
) -> None:
    bucket = f"e2e-payloads-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket)
    target.break_service("checkout")
    report = {"status": "failed", "service": "checkout", "host": "web01", "log": "x" * SIZE}
    body = json.dumps(report).encode()
    assert len(body) > SIZE

    config = config_for(queue.url, moto_endpoint, GATEWAY_LARGE_PAYLOAD_BUCKET=bucket)
    with serving(config) as gateway:
        host, port = gateway.server_address
        status, answer = post(host, port, body)
    assert status == 202, answer
    # The queue holds a pointer, the bucket the envelope.
    assert len(stored_keys(moto_endpoint, bucket)) == 1

    rulebook_path = tmp_path / "large_payloads.yml"
    rulebook_path.write_text(RULEBOOK)
    with NotifyReceiver() as receiver:
        rulebook = start_rulebook(queue, rulebook=str(rulebook_path), notify_url=receiver.url)
        rulebook.wait_for(lambda: receiver.posts, TIMEOUT, "the remediation outcome")
        rulebook.wait_for(lambda: queue.counts() == (0, 0), TIMEOUT, "the message deleted")
        rulebook.wait_for(
            lambda: stored_keys(moto_endpoint, bucket) == [], TIMEOUT, "the payload deleted"
        )

    assert target.state("checkout") == "running"
    # The message id the gateway answered with is the event's id end to end.
    assert target.remediations() == [("checkout", answer["message_id"])]
    # The action saw the whole payload, fetched from S3.
    (outcome,) = receiver.posts
    assert outcome["reason"] == f"large report of {SIZE} characters"
