"""The Lambda handler answers 503 with Retry-After before Lambda's timeout, however slow AWS is."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from durable_eda_gateway import lambda_function

from tests.support.aws import REGION, TestQueue
from tests.support.fault_proxy import FaultProxy
from tests.unit.gateway.support import API_KEY, gateway_env

FUNCTION_TIMEOUT = 6
# Longer than any attempt may wait: every call to AWS through the proxy times out.
STALL = 60.0


class LambdaContext:
    """As the Lambda runtime passes it: the time left counts down from the function timeout."""

    aws_request_id = "lambda-req-1"

    def __init__(self, seconds_left: float) -> None:
        self._deadline = time.monotonic() + seconds_left

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def event() -> dict[str, Any]:
    return {
        "version": "2.0",
        "headers": {"content-type": "application/json", "x-api-key": API_KEY},
        "requestContext": {"http": {"method": "POST"}, "requestId": "req-1"},
        "body": json.dumps({"status": "failed"}),
        "isBase64Encoded": False,
    }


@pytest.fixture
def stalled_aws(moto_endpoint: str) -> Iterator[FaultProxy]:
    with FaultProxy(upstream=moto_endpoint, latency=STALL) as proxy:
        yield proxy


@pytest.fixture(autouse=True)
def fresh_handler() -> Iterator[None]:
    """Each test's handler reads the environment it set up, as a new execution environment."""
    lambda_function.reset()
    yield
    lambda_function.reset()


def use_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def answer_of(response: dict[str, Any]) -> tuple[int, str, str | None]:
    body = json.loads(response["body"])
    return response["statusCode"], body["error"]["code"], response["headers"].get("retry-after")


def test_a_stalled_queue_is_answered_503_before_the_function_times_out(
    queue: TestQueue, stalled_aws: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_environment(
        monkeypatch,
        gateway_env(
            queue.url,
            stalled_aws.url,
            GATEWAY_TIMEOUT_SECONDS=str(FUNCTION_TIMEOUT),
            GATEWAY_SQS_MAX_ATTEMPTS="2",
        ),
    )
    context = LambdaContext(FUNCTION_TIMEOUT)
    response = lambda_function.handler(event(), context)
    assert context.get_remaining_time_in_millis() > 0, "Lambda would have killed the function"
    assert answer_of(response) == (503, "queue_unavailable", "5")
    assert stalled_aws.count("SendMessage") == 2


def test_stalled_secrets_are_answered_503_before_the_function_times_out(
    queue: TestQueue,
    moto_endpoint: str,
    stalled_aws: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"gw-keys-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION).create_secret(
        Name=name, SecretString=API_KEY
    )
    use_environment(
        monkeypatch,
        gateway_env(
            queue.url,
            stalled_aws.url,
            GATEWAY_API_KEYS="",
            GATEWAY_API_KEYS_SECRET_ID=name,
            GATEWAY_TIMEOUT_SECONDS=str(FUNCTION_TIMEOUT),
        ),
    )
    context = LambdaContext(FUNCTION_TIMEOUT)
    response = lambda_function.handler(event(), context)
    assert context.get_remaining_time_in_millis() > 0, "Lambda would have killed the function"
    assert answer_of(response) == (503, "secrets_unavailable", "5")
    assert stalled_aws.count("SendMessage") == 0


def test_no_aws_call_starts_without_the_time_to_finish_it(
    queue: TestQueue, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_environment(
        monkeypatch,
        gateway_env(queue.url, proxy.url, GATEWAY_TIMEOUT_SECONDS=str(FUNCTION_TIMEOUT)),
    )
    # Invoked late (a slow cold start): less time left than SendMessage may take at worst.
    response = lambda_function.handler(event(), LambdaContext(2.0))
    assert answer_of(response) == (503, "queue_unavailable", "5")
    assert proxy.count("SendMessage") == 0
    assert queue.counts() == (0, 0)
    # With the function's whole time ahead, the same request goes through.
    answered = lambda_function.handler(event(), LambdaContext(FUNCTION_TIMEOUT))
    assert answered["statusCode"] == 202
