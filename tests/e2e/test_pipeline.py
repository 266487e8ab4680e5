"""The whole pipeline: webhook POST -> gateway -> SQS -> ansible-rulebook -> remediation."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest
from durable_eda_gateway.service import GatewayServer

from tests.e2e.conftest import RulebookFactory
from tests.e2e.support import DemoTarget, NotifyReceiver, handled_timeout
from tests.support.aws import TestQueue
from tests.unit.gateway.support import API_KEY, config_for, serving

pytestmark = pytest.mark.e2e


@pytest.fixture
def gateway(queue: TestQueue, moto_endpoint: str) -> Iterator[GatewayServer]:
    with serving(config_for(queue.url, moto_endpoint)) as server:
        yield server


def post_webhook(server: GatewayServer, payload: dict[str, Any], api_key: str) -> Any:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=30)
    try:
        headers = {"content-type": "application/json", "x-api-key": api_key}
        connection.request("POST", "/", body=json.dumps(payload), headers=headers)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


def test_a_webhook_through_the_gateway_is_remediated_on_its_host(
    queue: TestQueue,
    target: DemoTarget,
    gateway: GatewayServer,
    start_rulebook: RulebookFactory,
) -> None:
    target.break_service("checkout")
    failure = {"status": "failed", "service": "checkout", "host": "web01"}
    with NotifyReceiver() as receiver:
        rulebook = start_rulebook(queue, notify_url=receiver.url)
        forged = post_webhook(gateway, failure, api_key="not-the-key")
        accepted = post_webhook(gateway, failure, api_key=API_KEY)
        rulebook.wait_for(lambda: receiver.posts, handled_timeout(1), "the remediation outcome")

    assert forged[0] == 401
    status, answer = accepted
    assert status == 202
    assert answer["forwarded"] is True
    assert target.state("checkout") == "running"
    (outcome,) = receiver.posts
    # The SQS message id the gateway answered with is the event's meta.uuid end to end.
    assert outcome["event_id"] == answer["message_id"]
    assert target.remediations() == [("checkout", answer["message_id"])]
