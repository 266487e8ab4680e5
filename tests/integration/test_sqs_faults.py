"""Faults between the source and SQS, injected by a proxy on loopback."""

from __future__ import annotations

import asyncio
import logging

import aws_sqs_queue
import pytest

from tests.integration.source_harness import (
    Engine,
    consume,
    eventually,
    running_source,
    source_args,
)
from tests.support.aws import ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, TestQueue
from tests.support.fault_proxy import (
    RESET,
    SERVER_ERROR,
    THROTTLED,
    UNAVAILABLE,
    FaultProxy,
    aws_error,
)

pytestmark = pytest.mark.asyncio


async def test_transient_faults_are_retried_without_loss_or_duplicates(
    queue: TestQueue, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    sent = queue.send_many([str(i) for i in range(30)])
    faults = (RESET, SERVER_ERROR, UNAVAILABLE, THROTTLED)
    for fault in faults:
        proxy.inject(fault, action="ReceiveMessage")
        proxy.inject(fault, action="DeleteMessageBatch")
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")

    async with running_source(source_args(queue, proxy.url)) as engine:
        await consume(engine, 30)
        await eventually(lambda: queue.counts() == (0, 0), what="all deleted")

    assert proxy.pending_faults() == 0
    assert sorted(engine.message_ids()) == sorted(sent)
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 2 * len(faults), retries
    for cause in ("HTTP 500", "HTTP 503", "ThrottlingException", "ConnectionError"):
        assert any(cause in line for line in retries), (cause, retries)


async def test_a_missing_queue_fails_at_once_saying_what_to_fix(moto_endpoint: str) -> None:
    args = {"name": "no-such-queue", "endpoint_url": moto_endpoint, "region": "us-east-1"}
    with pytest.raises(aws_sqs_queue.FatalSQSError, match=r"no-such-queue.*does not exist"):
        await asyncio.wait_for(aws_sqs_queue.main(asyncio.Queue(1), args), 30)


async def test_a_missing_queue_url_fails_at_once(moto_endpoint: str) -> None:
    url = f"{moto_endpoint}/123456789012/gone"
    args = {"queue_url": url, "endpoint_url": moto_endpoint, "region": "us-east-1"}
    with pytest.raises(aws_sqs_queue.FatalSQSError, match="does not exist"):
        await asyncio.wait_for(aws_sqs_queue.main(asyncio.Queue(1), args), 30)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDenied", 403, "access denied.*sqs:ReceiveMessage"),
        ("InvalidClientTokenId", 403, "rejected the credentials"),
        ("SignatureDoesNotMatch", 403, "rejected the credentials"),
    ],
)
async def test_authorisation_errors_fail_at_once(
    queue: TestQueue, proxy: FaultProxy, code: str, status: int, expected: str
) -> None:
    proxy.inject(aws_error(code, status), action="ReceiveMessage")
    args = source_args(queue, proxy.url)
    with pytest.raises(aws_sqs_queue.FatalSQSError, match=expected):
        await asyncio.wait_for(aws_sqs_queue.main(asyncio.Queue(1), args), 30)
    assert proxy.count("ReceiveMessage") == 1


async def test_secrets_never_reach_logs_events_or_errors(
    queue: TestQueue, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    queue.send_many(["one", "two"])
    # AWS may quote what it was sent; the source must not repeat it.
    leaky = f"key {ACCESS_KEY} secret {SECRET_KEY} token {SESSION_TOKEN} rejected"
    proxy.inject(aws_error("ThrottlingException", 400, leaky), action="DeleteMessageBatch")
    caplog.set_level(logging.DEBUG)  # what ansible-rulebook -vv does
    args = source_args(
        queue, proxy.url, access_key=ACCESS_KEY, secret_key=SECRET_KEY, session_token=SESSION_TOKEN
    )

    async with running_source(args) as engine:
        await consume(engine, 2)
        await eventually(lambda: queue.counts() == (0, 0), what="all deleted")
    proxy.inject(aws_error("InvalidClientTokenId", 403, leaky), action="ReceiveMessage")
    with pytest.raises(aws_sqs_queue.FatalSQSError) as failure:
        await asyncio.wait_for(aws_sqs_queue.main(Engine().queue, args), 30)

    assert proxy.count("ReceiveMessage") > 0
    assert {r.access_key_id for r in proxy.requests} == {ACCESS_KEY}
    for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN):
        assert secret not in caplog.text
        assert secret not in str(failure.value)
        assert secret not in repr(engine.events)
    assert "retrying" in caplog.text
