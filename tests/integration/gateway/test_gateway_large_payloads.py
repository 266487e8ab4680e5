"""Envelopes too large for the queue go to S3, and the queue gets an Extended Client pointer.

moto serves S3 and SQS on one endpoint; the gateway reaches both over real HTTP, and the
event source (with `large_payloads`) reads what it queued.
"""

from __future__ import annotations

import http.client
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from durable_eda_gateway import lambda_function
from durable_eda_gateway.core import HttpResponse

from tests.integration.gateway.test_lambda_time_budget import LambdaContext, use_environment
from tests.integration.source_harness import running_source, source_args
from tests.support.aws import TestQueue, s3_client
from tests.support.fault_proxy import RESET, SERVER_ERROR, UNAVAILABLE, FaultProxy, aws_error
from tests.unit.gateway.support import (
    API_KEY,
    config_for,
    gateway_env,
    make_gateway,
    request,
    serving,
)

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
# Over the queue's 256 KiB once in the envelope.
LARGE = {"status": "failed", "service": "nginx", "host": "web01", "log": "x" * 300_000}
# What moto's S3 requests are to the fault proxy: they carry no SQS action.
S3_CALL = ""


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"gw-payloads-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def fresh_handler() -> Iterator[None]:
    """The Lambda handler reads the environment the test set up, as a new execution environment."""
    lambda_function.reset()
    yield
    lambda_function.reset()


def stored(endpoint: str, bucket: str) -> dict[str, bytes]:
    client = s3_client(endpoint)
    listing = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        entry["Key"]: client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        for entry in listing
    }


def receive_all(queue: TestQueue) -> list[dict[str, Any]]:
    reply = queue.client.receive_message(
        QueueUrl=queue.url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
    )
    return list(reply.get("Messages", []))


def error_code(response: HttpResponse) -> str:
    return str(response.payload["error"]["code"])


def test_an_envelope_over_the_queue_limit_is_stored_in_s3_and_a_pointer_queued(
    queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    gateway = make_gateway(queue.url, moto_endpoint, GATEWAY_LARGE_PAYLOAD_BUCKET=bucket)
    response = gateway.handle(request(LARGE, {"x-github-event": "check_run"}))

    assert response.status == 202
    assert response.payload["forwarded"] is True
    [(key, data)] = stored(moto_endpoint, bucket).items()
    assert key.startswith("github/")
    envelope = json.loads(data)
    assert envelope["gateway"] == "durable.eda"
    assert envelope["event_type"] == "check_run"
    assert envelope["payload"] == LARGE
    [message] = receive_all(queue)
    assert message["MessageId"] == response.payload["message_id"]
    # Byte for byte what the Amazon SQS Extended Client queues.
    assert json.loads(message["Body"]) == [POINTER_CLASS, {"s3BucketName": bucket, "s3Key": key}]
    assert message["MessageAttributes"] == {
        "ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(len(data))},
        "source": {"DataType": "String", "StringValue": "github"},
        "event_type": {"DataType": "String", "StringValue": "check_run"},
    }


def test_an_envelope_the_queue_takes_stays_inline(
    queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    gateway = make_gateway(queue.url, moto_endpoint, GATEWAY_LARGE_PAYLOAD_BUCKET=bucket)
    assert gateway.handle(request({"status": "failed"})).status == 202
    [message] = receive_all(queue)
    assert json.loads(message["Body"])["payload"] == {"status": "failed"}
    assert "ExtendedPayloadSize" not in message["MessageAttributes"]
    assert stored(moto_endpoint, bucket) == {}


def test_a_payload_that_grows_past_the_limit_in_its_envelope_goes_to_s3(
    queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    gateway = make_gateway(
        queue.url,
        moto_endpoint,
        GATEWAY_MAX_MESSAGE_BYTES="2048",
        GATEWAY_LARGE_PAYLOAD_BUCKET=bucket,
    )
    # 700 characters that JSON-escape to 6 bytes each: under the limit raw, over it queued.
    body = json.dumps({"t": "\u00e9" * 700}, ensure_ascii=False).encode()
    assert gateway.handle(request(body=body)).status == 202
    [data] = stored(moto_endpoint, bucket).values()
    assert json.loads(data)["payload"] == {"t": "\u00e9" * 700}


def test_a_body_over_the_request_maximum_is_refused_and_nothing_stored(
    queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    gateway = make_gateway(
        queue.url,
        moto_endpoint,
        GATEWAY_LARGE_PAYLOAD_BUCKET=bucket,
        GATEWAY_MAX_REQUEST_BYTES="400000",
    )
    response = gateway.handle(request({"log": "x" * 400_000}))
    assert (response.status, error_code(response)) == (413, "payload_too_large")
    assert "400000 bytes" in response.payload["error"]["message"]
    assert stored(moto_endpoint, bucket) == {}
    assert queue.counts() == (0, 0)


def test_fifo_pointers_keep_the_group_and_deduplication_ids(
    fifo_queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    gateway = make_gateway(
        fifo_queue.url,
        moto_endpoint,
        GATEWAY_LARGE_PAYLOAD_BUCKET=bucket,
        GATEWAY_GROUP_ID_FIELD="host",
    )
    delivery = {"x-github-delivery": "delivery-large-1"}
    assert gateway.handle(request(LARGE, delivery)).status == 202
    # A provider's retry is queued once: the deduplication id is the delivery's, not the key's.
    assert gateway.handle(request(LARGE, delivery)).status == 202
    [message] = receive_all(fifo_queue)
    assert message["Attributes"]["MessageGroupId"] == "web01"
    assert message["Attributes"]["MessageDeduplicationId"] == "delivery-large-1"
    assert json.loads(message["Body"])[0] == POINTER_CLASS


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (aws_error("SlowDown", status=429), 429, "payload_store_throttled"),
        (UNAVAILABLE, 503, "payload_store_unavailable"),
        (SERVER_ERROR, 503, "payload_store_unavailable"),
        (RESET, 503, "payload_store_unavailable"),
        (aws_error("AccessDenied", status=403), 503, "payload_store_unavailable"),
    ],
)
def test_s3_failures_ask_the_sender_to_retry_and_nothing_is_queued(
    queue: TestQueue,
    moto_endpoint: str,
    bucket: str,
    proxy: FaultProxy,
    fault: Any,
    status: int,
    code: str,
) -> None:
    gateway = make_gateway(queue.url, proxy.url, GATEWAY_LARGE_PAYLOAD_BUCKET=bucket)
    proxy.inject(fault, action=S3_CALL)
    response = gateway.handle(request(LARGE))
    assert (response.status, error_code(response)) == (status, code)
    assert response.headers["retry-after"] == "5"
    assert queue.counts() == (0, 0)
    assert proxy.count("SendMessage") == 0
    # Once S3 takes it again, the same webhook goes through.
    assert gateway.handle(request(LARGE)).status == 202
    assert len(stored(moto_endpoint, bucket)) == 1


def test_a_missing_bucket_is_logged_as_lasting_and_answered_503(
    queue: TestQueue, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="durable_eda_gateway")
    gateway = make_gateway(
        queue.url, moto_endpoint, GATEWAY_LARGE_PAYLOAD_BUCKET="gw-no-such-bucket"
    )
    response = gateway.handle(request(LARGE))
    assert (response.status, error_code(response)) == (503, "payload_store_unavailable")
    [record] = [r for r in caplog.records if "S3 refused" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "NoSuchBucket" in record.getMessage()
    assert "GATEWAY_LARGE_PAYLOAD_BUCKET" in record.getMessage()
    assert queue.counts() == (0, 0)


# 9 s with 2 attempts a call: three calls (secrets, PutObject, SendMessage) fit, as on Lambda.
LAMBDA_SETTINGS = {"GATEWAY_TIMEOUT_SECONDS": "9", "GATEWAY_SQS_MAX_ATTEMPTS": "2"}


@pytest.mark.usefixtures("fresh_handler")
def test_no_put_starts_without_the_time_to_queue_its_pointer_too(
    queue: TestQueue, bucket: str, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = gateway_env(queue.url, proxy.url, GATEWAY_LARGE_PAYLOAD_BUCKET=bucket, **LAMBDA_SETTINGS)
    use_environment(monkeypatch, env)
    timeouts = config_for(queue.url, proxy.url, **env).aws_timeouts
    # Time for one call (the PutObject) but not for the SendMessage after it.
    between = (timeouts.needed_seconds(1) + timeouts.needed_seconds(2)) / 2
    event = lambda_event(json.dumps(LARGE))

    response = lambda_function.handler(event, LambdaContext(between))

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "payload_store_unavailable"
    assert response["headers"]["retry-after"] == "5"
    assert proxy.count(S3_CALL) == 0
    assert lambda_function.handler(event, LambdaContext(9))["statusCode"] == 202
    assert proxy.count(S3_CALL) == 1


@pytest.mark.usefixtures("fresh_handler")
def test_a_stalled_s3_is_answered_503_before_the_function_times_out(
    queue: TestQueue, moto_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultProxy(upstream=moto_endpoint, latency=60.0) as stalled:
        use_environment(
            monkeypatch,
            gateway_env(
                queue.url, stalled.url, GATEWAY_LARGE_PAYLOAD_BUCKET=bucket, **LAMBDA_SETTINGS
            ),
        )
        context = LambdaContext(9)
        response = lambda_function.handler(lambda_event(json.dumps(LARGE)), context)
        assert context.get_remaining_time_in_millis() > 0, "Lambda would have killed the function"
        assert response["statusCode"] == 503
        assert json.loads(response["body"])["error"]["code"] == "payload_store_unavailable"
        assert stalled.count(S3_CALL) == 2
        assert stalled.count("SendMessage") == 0


def lambda_event(body: str) -> dict[str, Any]:
    return {
        "version": "2.0",
        "headers": {"content-type": "application/json", "x-api-key": API_KEY},
        "requestContext": {"http": {"method": "POST"}, "requestId": "req-large"},
        "body": body,
        "isBase64Encoded": False,
    }


def post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    headers = {"content-type": "application/json", "x-api-key": API_KEY}
    try:
        connection.request("POST", "/", body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        connection.close()


@pytest.mark.asyncio
async def test_the_service_takes_a_large_webhook_and_the_source_reads_it_as_if_inline(
    queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    config = config_for(
        queue.url,
        moto_endpoint,
        GATEWAY_LARGE_PAYLOAD_BUCKET=bucket,
        GATEWAY_MAX_REQUEST_BYTES="3000000",
    )
    payload = {"status": "failed", "service": "nginx", "host": "web01", "log": "y" * 2_000_000}
    with serving(config) as server:
        status, answer = post(server.url, json.dumps(payload).encode())
        too_big, refusal = post(server.url, json.dumps({"log": "z" * 3_000_000}).encode())
    assert status == 202, answer
    assert (too_big, refusal["error"]["code"]) == (413, "payload_too_large")
    [key] = stored(moto_endpoint, bucket)

    options = {"large_payloads": True, "s3_endpoint_url": moto_endpoint}
    async with running_source(source_args(queue, moto_endpoint, **options)) as engine:
        event = await engine.take()
    assert event["body"]["gateway"] == "durable.eda"
    assert event["body"]["payload"] == payload
    assert event["meta"]["MessageId"] == answer["message_id"]
    assert event["meta"]["sqs"]["large_payload"] == {"bucket": bucket, "key": key}
