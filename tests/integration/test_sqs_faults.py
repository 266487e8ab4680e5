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
    failed_entries,
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


async def test_batch_entries_sqs_failed_on_its_side_are_retried_with_back_off(
    queue: TestQueue, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    queue.send("deleted on the fourth try")
    proxy.inject(failed_entries(sender_fault=False), action="DeleteMessageBatch", times=3)
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")
    async with running_source(source_args(queue, proxy.url)) as engine:
        await consume(engine, 1)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted")
    assert proxy.count("DeleteMessageBatch") == 4
    retries = [r.getMessage() for r in caplog.records if "failed for 1 of 1" in r.getMessage()]
    assert len(retries) == 3, retries
    assert all("InternalError" in line for line in retries)


async def test_a_long_run_of_partial_failures_is_retried_without_exhausting_the_stack(
    queue: TestQueue, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deeper than Python's recursion limit, if each retry were a nested call.
    failures = 1200
    monkeypatch.setattr(aws_sqs_queue, "BACKOFF_BASE_SECONDS", 0.0001)
    monkeypatch.setattr(aws_sqs_queue, "BACKOFF_CAP_SECONDS", 0.0001)
    queue.send("survives an SQS incident")
    proxy.inject(failed_entries(sender_fault=False), action="DeleteMessageBatch", times=failures)
    async with running_source(source_args(queue, proxy.url)) as engine:
        await consume(engine, 1)
        await eventually(lambda: queue.counts() == (0, 0), 120, what="deleted")
        assert engine.source is not None
        assert not engine.source.done()
    assert proxy.count("DeleteMessageBatch") == failures + 1


@pytest.mark.parametrize("action", ["DeleteMessageBatch", "ChangeMessageVisibilityBatch"])
async def test_entries_refused_as_the_senders_fault_are_given_up_not_retried(
    queue: TestQueue, proxy: FaultProxy, caplog: pytest.LogCaptureFixture, action: str
) -> None:
    queue.send_many(["first", "second"])
    proxy.inject(failed_entries(sender_fault=True, code="ReceiptHandleIsInvalid"), action=action)
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")
    verb = "delete" if action == "DeleteMessageBatch" else "renew"
    # The second event waits in put, held, while the heartbeat renews it.
    async with running_source(source_args(queue, proxy.url, visibility_timeout=2)) as engine:
        await eventually(lambda: f"refused to {verb}" in caplog.text, what="the refusal logged")
        await consume(engine, 2)
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1
    assert not [r for r in caplog.records if "retrying them" in r.getMessage()]


async def test_settling_on_stop_against_a_dead_endpoint_ends_and_says_so(
    queue: TestQueue, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    queue.send_many(["taken", "in the engine's queue", "held"])
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")
    async with running_source(source_args(queue, proxy.url)) as engine:
        await engine.take()
        await eventually(lambda: queue.counts() == (0, 1), what="one held")
        proxy.inject(RESET, times=10_000)
        assert engine.source is not None
        engine.source.cancel()
        done, _ = await asyncio.wait({engine.source}, timeout=60)
        assert engine.source in done, "the source never finished stopping"
    assert "could not settle 1 held messages on stop" in caplog.text


async def test_a_renewal_refused_while_the_message_is_being_deleted_leaves_it_to_the_delete(
    queue: TestQueue, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    queue.send("acknowledged, its delete retried while the heartbeat renews it")
    # The delete fails on SQS's side for a while, so the heartbeat renews the message
    # meanwhile, and that renewal is refused as if the delete had already gone through.
    # Six failures back off for 6 s at least: longer than a renewal takes to fall due.
    proxy.inject(failed_entries(sender_fault=False), action="DeleteMessageBatch", times=6)
    refusal = failed_entries(sender_fault=True, code="ReceiptHandleIsInvalid")
    proxy.inject(refusal, action="ChangeMessageVisibilityBatch")
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")
    args = source_args(queue, proxy.url, visibility_timeout=2)
    async with running_source(args, feedback=True) as engine:
        await consume(engine, 1)
        await eventually(lambda: proxy.pending_faults() == 0, what="the refused renewal")
        await eventually(lambda: queue.counts() == (0, 0), what="deleted after all")
    assert "refused to renew" not in caplog.text


async def test_a_renewal_that_lands_after_the_visibility_timeout_ran_out_is_reported(
    queue: TestQueue, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    queue.send_many(["fills the engine's queue of one", "waits in put, held"])
    # SQS fails the renewal on its side four times: backing off 0.1 + 0.2 + 0.4 + 0.8 s at
    # least, after it fell due with at most 1.3 s of the 2 s visibility timeout left.
    renewal_failed = failed_entries(sender_fault=False)
    proxy.inject(renewal_failed, action="ChangeMessageVisibilityBatch", times=4)
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")
    async with running_source(source_args(queue, proxy.url, visibility_timeout=2)) as engine:
        await eventually(
            lambda: "after their visibility timeout ran out" in caplog.text,
            what="the late renewal reported",
        )
        events = await consume(engine, 2)
    assert [e["body"] for e in events] == ["fills the engine's queue of one", "waits in put, held"]
    assert "visibility_timeout=2 allows" in caplog.text
