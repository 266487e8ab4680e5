"""Feedback mode: acknowledgements matched to messages by what they carry, never by count.

The source runs behind ansible-rulebook's own FilteredQueue where a test needs event
filters, and the test acknowledges events in the order the engine takes them, as
ansible-rulebook does.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import uuid
from typing import Any

import pytest

from tests.integration.source_harness import (
    Engine,
    eventually,
    running_source,
    source_args,
)
from tests.support.aws import TestQueue
from tests.support.fault_proxy import FaultProxy

pytestmark = pytest.mark.asyncio


def event_and_copy(event: dict[str, Any], **_: Any) -> list[dict[str, Any]]:
    """A fan-out filter: the copy keeps the message id and has its own uuid."""
    duplicate = copy.deepcopy(event)
    duplicate["meta"]["uuid"] = str(uuid.uuid4())
    return [event, duplicate]


def drop_marked(event: dict[str, Any], **_: Any) -> list[dict[str, Any]]:
    return [] if event["body"] == "drop" else [event]


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in record.getMessage() for record in caplog.records)


async def take_and_acknowledge(engine: Engine) -> dict[str, Any]:
    event = await engine.take()
    await engine.acknowledge(event)
    return event


async def test_a_fanned_out_message_is_deleted_after_its_last_event_is_acknowledged(
    queue: TestQueue, proxy: FaultProxy
) -> None:
    queue.send("fanned out")
    args = source_args(queue, proxy.url, visibility_timeout=2)
    async with running_source(args, feedback=True, filters=[event_and_copy]) as engine:
        await take_and_acknowledge(engine)
        copy_event = await engine.take()
        # Two renewals after the first acknowledgement: a delete it had caused would have
        # been sent by then (deletes go out within 0.1 s; renewals every 0.5 s).
        renewals = proxy.count("ChangeMessageVisibilityBatch")
        await eventually(
            lambda: proxy.count("ChangeMessageVisibilityBatch") >= renewals + 2,
            what="two renewals of the held message",
        )
        assert proxy.count("DeleteMessageBatch") == 0
        assert await asyncio.to_thread(queue.counts) == (0, 1)
        await engine.acknowledge(copy_event)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted after the copy")
    assert [e["meta"]["MessageId"] for e in engine.events] == [copy_event["meta"]["MessageId"]] * 2


async def test_fanned_out_messages_each_wait_for_their_own_events(
    queue: TestQueue, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent = queue.send_many(["a", "b", "c"])
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")
    args = source_args(queue, moto_endpoint)
    async with running_source(args, feedback=True, filters=[event_and_copy]) as engine:
        for _ in range(6):
            await take_and_acknowledge(engine)
        await eventually(lambda: queue.counts() == (0, 0), what="all deleted")
    assert engine.message_ids() == [m for m in sent for _ in range(2)]
    assert not logged(caplog, "acknowledgement for"), "an acknowledgement was mismatched"
    assert not logged(caplog, "released for redelivery")


async def test_a_message_a_filter_drops_is_deleted_without_an_acknowledgement(
    queue: TestQueue, moto_endpoint: str
) -> None:
    queue.send("drop")
    args = source_args(queue, moto_endpoint)
    async with running_source(args, feedback=True, filters=[drop_marked]) as engine:
        # No later acknowledgement comes to settle it: the drop itself must.
        await eventually(lambda: queue.counts() == (0, 0), what="the dropped message deleted")
        kept = queue.send("keep")
        await take_and_acknowledge(engine)
        await eventually(lambda: queue.counts() == (0, 0), what="the kept message deleted")
    assert engine.message_ids() == [kept]


async def test_a_message_the_engine_could_not_post_is_released_and_the_next_goes_on(
    queue: TestQueue, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    unposted, posted = queue.send_many(["posting fails", "posted"])
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")
    async with running_source(source_args(queue, moto_endpoint), feedback=True) as engine:
        # The engine takes the first event and, posting it failed, sends no acknowledgement.
        assert (await engine.take())["meta"]["MessageId"] == unposted
        assert (await take_and_acknowledge(engine))["meta"]["MessageId"] == posted
        redelivered = await take_and_acknowledge(engine)
        await eventually(lambda: queue.counts() == (0, 0), what="all deleted")
    assert redelivered["meta"]["MessageId"] == unposted
    assert redelivered["meta"]["sqs"]["receipt_count"] == 2
    assert logged(caplog, f"SQS message {unposted} (posting it failed)")


async def test_a_late_acknowledgement_is_reported_and_never_fatal(
    queue: TestQueue, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue.send("acknowledged late")
    caplog.set_level(logging.WARNING, logger="durable.eda.aws_sqs_queue")
    args = source_args(queue, moto_endpoint, feedback_timeout=0.2)
    async with running_source(args, feedback=True) as engine:
        event = await engine.take()
        await eventually(
            lambda: sum("has waited" in r.getMessage() for r in caplog.records) >= 3,
            what="the wait reported three times",
        )
        assert engine.source is not None
        assert not engine.source.done()
        assert await asyncio.to_thread(queue.counts) == (0, 1)
        await engine.acknowledge(event)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted once acknowledged")
