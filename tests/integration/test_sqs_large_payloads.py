"""Bodies stored in S3 by the Amazon SQS Extended Client: fetched, or refused per message.

moto serves S3 and SQS on one endpoint; the producer side writes what the Extended Client
writes (the object, then a pointer message with the ExtendedPayloadSize attribute).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import pytest

from tests.integration.source_harness import consume, eventually, running_source, source_args
from tests.support.aws import (
    TestQueue,
    create_queue_with_dead_letters,
    s3_client,
)
from tests.support.fault_proxy import FaultProxy, aws_error

pytestmark = pytest.mark.asyncio

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LARGE = {"status": "failed", "service": "nginx", "host": "web01", "log": "x" * 300_000}


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"payloads-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


def send_pointer(queue: TestQueue, bucket: str, key: str, size: int) -> str:
    body = json.dumps([POINTER_CLASS, {"s3BucketName": bucket, "s3Key": key}])
    attributes = {"ExtendedPayloadSize": {"DataType": "Number", "StringValue": str(size)}}
    return queue.send(body, MessageAttributes=attributes)


def store_and_send(queue: TestQueue, endpoint: str, bucket: str, payload: Any) -> tuple[str, str]:
    key = str(uuid.uuid4())
    data = json.dumps(payload).encode()
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=data)
    return key, send_pointer(queue, bucket, key, len(data))


def stored_keys(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return [entry["Key"] for entry in listing.get("Contents", [])]


def large_payload_args(queue: TestQueue, endpoint: str, **options: Any) -> dict[str, Any]:
    return source_args(queue, endpoint, large_payloads=True, s3_endpoint_url=endpoint, **options)


async def test_a_body_stored_in_s3_arrives_as_if_it_were_inline(
    queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    key, message_id = store_and_send(queue, moto_endpoint, bucket, LARGE)
    async with running_source(large_payload_args(queue, moto_endpoint)) as engine:
        (event,) = await consume(engine, 1)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted")
    assert event["body"] == LARGE
    assert event["meta"]["MessageId"] == message_id
    assert event["meta"]["sqs"]["large_payload"] == {"bucket": bucket, "key": key}
    assert event["meta"]["sqs"]["attributes"]["ExtendedPayloadSize"] > 256 * 1024
    # Kept unless asked: other consumers of the same payload may still need it.
    assert stored_keys(moto_endpoint, bucket) == [key]


async def test_delete_large_payloads_removes_the_object_after_its_message(
    queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    store_and_send(queue, moto_endpoint, bucket, LARGE)
    args = large_payload_args(queue, moto_endpoint, delete_large_payloads=True)
    async with running_source(args, feedback=True) as engine:
        await consume(engine, 1)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted")
        await eventually(lambda: not stored_keys(moto_endpoint, bucket), what="object deleted")


async def test_without_the_option_a_pointer_passes_through_as_amazon_aws_would(
    queue: TestQueue, moto_endpoint: str, bucket: str
) -> None:
    key, _ = store_and_send(queue, moto_endpoint, bucket, LARGE)
    async with running_source(source_args(queue, moto_endpoint)) as engine:
        (event,) = await consume(engine, 1)
    assert event["body"] == [POINTER_CLASS, {"s3BucketName": bucket, "s3Key": key}]
    assert "large_payload" not in event["meta"]["sqs"]


async def test_a_missing_object_is_an_error_for_its_message_which_reaches_the_dlq(
    moto_endpoint: str, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue, dead_letters = create_queue_with_dead_letters(moto_endpoint, max_receive_count=2)
    missing = send_pointer(queue, bucket, "no-such-key", 300_000)
    caplog.set_level(logging.ERROR, logger="durable.eda.aws_sqs_queue")
    args = large_payload_args(queue, moto_endpoint, visibility_timeout=1)
    async with running_source(args) as engine:
        await eventually(lambda: dead_letters.counts()[0] == 1, 60, what="moved to the DLQ")
        # The source goes on with the next message.
        _, after = store_and_send(queue, moto_endpoint, bucket, {"status": "failed"})
        await consume(engine, 1)
    assert engine.message_ids() == [after]
    assert [m["MessageId"] for m in await asyncio.to_thread(dead_letters.drain)] == [missing]
    assert f"s3://{bucket}/no-such-key does not exist" in caplog.text


async def test_a_denied_read_is_an_error_for_its_message_not_for_the_source(
    queue: TestQueue, moto_endpoint: str, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    with FaultProxy(upstream=moto_endpoint) as s3_proxy:
        # SQS speaks JSON with an X-Amz-Target; S3's GET has no action name.
        s3_proxy.inject(aws_error("AccessDenied", 403), action="")
        key, denied = store_and_send(queue, moto_endpoint, bucket, LARGE)
        caplog.set_level(logging.ERROR, logger="durable.eda.aws_sqs_queue")
        args = source_args(
            queue,
            moto_endpoint,
            large_payloads=True,
            s3_endpoint_url=s3_proxy.url,
            visibility_timeout=1,
        )
        async with running_source(args) as engine:
            (event,) = await consume(engine, 1)
            await eventually(lambda: queue.counts() == (0, 0), what="deleted once readable")
    assert f"access denied to s3://{bucket}/{key}" in caplog.text
    assert event["meta"]["MessageId"] == denied
    assert event["meta"]["sqs"]["receipt_count"] == 2
