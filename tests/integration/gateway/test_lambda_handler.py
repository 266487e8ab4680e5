"""The Lambda handler with each event format API Gateway and function URLs send."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from durable_eda_gateway import lambda_function

from tests.support.aws import TestQueue
from tests.unit.gateway.support import API_KEY, gateway_env

PAYLOAD = {"status": "failed", "host": "web1"}


@pytest.fixture
def handler_env(
    queue: TestQueue, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestQueue]:
    for name, value in gateway_env(queue.url, moto_endpoint).items():
        monkeypatch.setenv(name, value)
    lambda_function.reset()
    yield queue
    lambda_function.reset()


def rest_v1_event(body: str, base64_encoded: bool = False, method: str = "POST") -> dict[str, Any]:
    return {
        "resource": "/webhook",
        "path": "/webhook",
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "X-Api-Key": API_KEY},
        "multiValueHeaders": {
            "Content-Type": ["application/json"],
            "X-Api-Key": [API_KEY],
            "X-GitHub-Event": ["check_run"],
        },
        "queryStringParameters": None,
        "requestContext": {"requestId": "rest-req-1", "stage": "prod", "httpMethod": method},
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def http_v2_event(
    body: str, base64_encoded: bool = False, method: str = "POST", url: bool = False
) -> dict[str, Any]:
    domain = (
        "abc123.lambda-url.us-east-1.on.aws"
        if url
        else "abc123.execute-api.us-east-1.amazonaws.com"
    )
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "x-api-key": API_KEY,
            "x-github-event": "check_run",
        },
        "requestContext": {
            "domainName": domain,
            "http": {
                "method": method,
                "path": "/",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
            },
            "requestId": "v2-req-1",
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def encoded(payload: Any) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


EVENTS = {
    "rest-v1": lambda: rest_v1_event(json.dumps(PAYLOAD)),
    "rest-v1-base64": lambda: rest_v1_event(encoded(PAYLOAD), base64_encoded=True),
    "http-v2": lambda: http_v2_event(json.dumps(PAYLOAD)),
    "http-v2-base64": lambda: http_v2_event(encoded(PAYLOAD), base64_encoded=True),
    "function-url": lambda: http_v2_event(json.dumps(PAYLOAD), url=True),
    "function-url-base64": lambda: http_v2_event(encoded(PAYLOAD), base64_encoded=True, url=True),
}


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_every_event_format_is_forwarded(handler_env: TestQueue, kind: str) -> None:
    response = lambda_function.handler(EVENTS[kind](), None)

    assert response["statusCode"] == 202
    assert response["headers"]["content-type"] == "application/json"
    answer = json.loads(response["body"])
    [message] = handler_env.drain()
    assert answer == {
        "forwarded": True,
        "message_id": message["MessageId"],
        "request_id": answer["request_id"],
    }
    envelope = json.loads(message["Body"])
    assert envelope["payload"] == PAYLOAD
    assert envelope["event_type"] == "check_run"
    assert envelope["request_id"] == ("rest-req-1" if kind.startswith("rest") else "v2-req-1")
    assert "x-api-key" not in envelope["headers"]


def test_rest_v1_without_multi_value_headers_uses_headers(handler_env: TestQueue) -> None:
    event = rest_v1_event(json.dumps(PAYLOAD))
    del event["multiValueHeaders"]
    assert lambda_function.handler(event, None)["statusCode"] == 202


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (rest_v1_event("not base64!", base64_encoded=True), 400, "invalid_encoding"),
        (http_v2_event("%%%", base64_encoded=True), 400, "invalid_encoding"),
        (
            http_v2_event(base64.b64encode(b"\x00\xff").decode(), base64_encoded=True),
            400,
            "invalid_json",
        ),
        (rest_v1_event("", method="GET"), 405, "method_not_allowed"),
        (http_v2_event("", method="PUT", url=True), 405, "method_not_allowed"),
        ({**http_v2_event("{}"), "headers": None}, 401, "missing_credentials"),
        (
            {**rest_v1_event("{}"), "headers": None, "multiValueHeaders": None},
            401,
            "missing_credentials",
        ),
        ({**rest_v1_event("{}"), "body": None}, 400, "invalid_json"),
    ],
)
def test_bad_events_get_error_codes(
    handler_env: TestQueue, event: dict[str, Any], status: int, code: str
) -> None:
    response = lambda_function.handler(event, None)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["error"]["code"] == code
    assert handler_env.counts() == (0, 0)


class FakeContext:
    aws_request_id = "ctx-req-9"


def test_the_request_id_falls_back_to_the_lambda_context(handler_env: TestQueue) -> None:
    event = http_v2_event(json.dumps(PAYLOAD))
    del event["requestContext"]["requestId"]
    response = lambda_function.handler(event, FakeContext())
    assert json.loads(response["body"])["request_id"] == "ctx-req-9"
    assert response["headers"]["x-request-id"] == "ctx-req-9"


def test_a_misconfigured_function_answers_500_without_details(
    handler_env: TestQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEWAY_API_KEYS")
    response = lambda_function.handler(http_v2_event(json.dumps(PAYLOAD)), None)
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"]["code"] == "gateway_misconfigured"
