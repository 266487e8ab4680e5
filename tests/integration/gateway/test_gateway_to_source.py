"""The gateway's envelope as durable.eda.aws_sqs_queue hands it to ansible-rulebook."""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import pytest

from tests.integration.source_harness import running_source, source_args
from tests.support.aws import TestQueue
from tests.unit.gateway.support import API_KEY, config_for, serving


def post(url: str, payload: dict[str, str], headers: dict[str, str]) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        connection.request("POST", "/", body=json.dumps(payload), headers=headers)
        reply = connection.getresponse()
        reply.read()
        return reply.status
    finally:
        connection.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
async def test_a_webhook_reaches_the_rulebook_in_the_documented_shape(
    queue: TestQueue, fifo_queue: TestQueue, moto_endpoint: str, fifo: bool
) -> None:
    target = fifo_queue if fifo else queue
    headers = {
        "content-type": "application/json",
        "x-api-key": API_KEY,
        "x-github-event": "check_run",
        "x-github-delivery": "delivery-1",
    }
    payload = {"status": "failed", "service": "nginx", "host": "web01"}
    with serving(config_for(target.url, moto_endpoint, GATEWAY_GROUP_ID_FIELD="host")) as server:
        assert post(server.url, payload, headers) == 202

    async with running_source(source_args(target, moto_endpoint)) as engine:
        event = await engine.take()

    body = event["body"]
    assert body["gateway"] == "durable.eda"
    assert body["version"] == 1
    assert body["source"] == "github"
    assert body["event_type"] == "check_run"
    assert body["payload"] == payload
    assert "x-api-key" not in body["headers"]
    sqs = event["meta"]["sqs"]
    assert sqs["attributes"] == {"source": "github", "event_type": "check_run"}
    if fifo:
        assert sqs["message_group_id"] == "web01"
        assert sqs["deduplication_id"] == "delivery-1"
