"""The event source against moto's SQS server over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
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
from tests.support.aws import TestQueue
from tests.support.fault_proxy import LOST_RESPONSE, RESET, FaultProxy

pytestmark = pytest.mark.asyncio


async def test_event_keeps_the_amazon_aws_shape_and_adds_sqs_meta(
    queue: TestQueue, moto_endpoint: str
) -> None:
    sent = queue.send(
        json.dumps({"status": "failed", "service": "nginx"}),
        MessageAttributes={
            "source": {"DataType": "String", "StringValue": "github"},
            "attempt": {"DataType": "Number", "StringValue": "3"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    async with running_source(source_args(queue, moto_endpoint)) as engine:
        event = await engine.take()

    assert event["body"] == {"status": "failed", "service": "nginx"}
    meta = event["meta"]
    assert meta["MessageId"] == sent
    assert meta["uuid"] == sent
    assert meta["sqs"]["message_id"] == sent
    assert meta["sqs"]["receipt_count"] == 1
    assert meta["sqs"]["sent_at"].endswith("+00:00")
    assert meta["sqs"]["attributes"] == {
        "source": "github",
        "attempt": 3,
        "blob": base64.b64encode(b"\x00\x01").decode(),
    }
    json.dumps(event)  # the engine drops events that do not serialise


async def test_bodies_that_are_not_json_objects_pass_unchanged(
    queue: TestQueue, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    for body in ("plain text, not JSON", "[1, 2, 3]", '"a JSON string"'):
        queue.send(body)
    caplog.set_level(logging.DEBUG, logger=aws_sqs_queue.LOG.name)
    async with running_source(source_args(queue, moto_endpoint)) as engine:
        await consume(engine, 3)

    assert sorted(map(str, engine.bodies())) == sorted(
        ["plain text, not JSON", "[1, 2, 3]", "a JSON string"]
    )
    # The source's own records: asyncio may log, at garbage collection, a task that an
    # earlier test on this worker left behind.
    source_errors = [
        r for r in caplog.records if r.name == aws_sqs_queue.LOG.name and r.levelno >= logging.ERROR
    ]
    assert not source_errors


async def test_message_is_deleted_only_after_the_engine_took_it(
    queue: TestQueue, moto_endpoint: str
) -> None:
    queue.send_many(["1", "2", "3"])
    async with running_source(source_args(queue, moto_endpoint)) as engine:
        # Nothing taken yet: the first event sits in the engine's queue of one (its put
        # returned, so it may go), the second waits in put, the third is prefetched.
        await eventually(lambda: queue.counts() == (0, 2), what="one deleted, two held")
        await consume(engine, 1)
        await eventually(lambda: queue.counts() == (0, 1), what="two deleted, one held")
        await consume(engine, 2)
        await eventually(lambda: queue.counts() == (0, 0), what="all deleted")


async def test_feedback_mode_deletes_only_acknowledged_messages(
    queue: TestQueue, moto_endpoint: str
) -> None:
    queue.send_many(["a", "b", "c"])
    async with running_source(source_args(queue, moto_endpoint), feedback=True) as engine:
        await consume(engine, 2)
        unacknowledged = await engine.take()
        await eventually(lambda: queue.counts() == (0, 1), what="two acknowledged deleted")
        assert await asyncio.to_thread(queue.counts) == (0, 1)
        await engine.acknowledge(unacknowledged)
        await eventually(lambda: queue.counts() == (0, 0), what="third deleted after ack")


async def test_cancellation_releases_held_messages_at_once(
    queue: TestQueue, moto_endpoint: str
) -> None:
    queue.send_many([str(i) for i in range(5)])
    async with running_source(source_args(queue, moto_endpoint)) as engine:
        await consume(engine, 1)
        # One taken, one in the engine's queue of one (both deleted), three held.
        await eventually(lambda: queue.counts() == (0, 3), what="three held by the source")
    # The default visibility timeout is 30 s: only an explicit release makes them visible now.
    assert await asyncio.to_thread(queue.counts) == (3, 0)


async def test_heartbeat_keeps_a_waiting_message_invisible(
    queue: TestQueue, proxy: FaultProxy
) -> None:
    queue.send_many(["fills the engine's queue of one", "waits in put"])
    args = source_args(queue, proxy.url, visibility_timeout=2)
    async with running_source(args) as engine:
        # The second event waits in put while the heartbeat renews its lease several times:
        # longer than the 2 s visibility timeout.
        await eventually(
            lambda: proxy.count("ChangeMessageVisibilityBatch") >= 4, what="four renewals"
        )
        assert await asyncio.to_thread(queue.drain) == []
        events = await consume(engine, 2)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted")
    assert [e["meta"]["sqs"]["receipt_count"] for e in events] == [1, 1]


async def test_every_message_of_a_received_batch_is_kept_invisible_while_it_waits(
    queue: TestQueue, proxy: FaultProxy
) -> None:
    """A batch received while the engine is busy waits in the source until the engine takes
    it; each of its messages must be renewed from the moment it was received, or SQS gives
    it to another consumer meanwhile (a duplicate delivery while this process still has it).
    """
    queue.send_many([f"message {n}" for n in range(6)])
    # Batches of 2: one in the engine's queue (deleted: its put returned), one in hand, two
    # waiting to be handed over, and the last batch received while those wait.
    args = source_args(queue, proxy.url, visibility_timeout=2, max_number_of_messages=2)
    async with running_source(args) as engine:
        await eventually(lambda: queue.counts() == (0, 5), what="all received, one deleted")
        renewals = proxy.count("ChangeMessageVisibilityBatch")
        # Eight heartbeats (0.5 s apart): twice the 2 s visibility timeout.
        await eventually(
            lambda: proxy.count("ChangeMessageVisibilityBatch") >= renewals + 8,
            what="eight more renewals",
        )
        assert await asyncio.to_thread(queue.counts) == (0, 5)
        events = await consume(engine, 6)
    assert sorted(e["body"] for e in events) == sorted(f"message {n}" for n in range(6))
    assert [e["meta"]["sqs"]["receipt_count"] for e in events] == [1] * 6


async def test_deletes_and_receives_are_batched(queue: TestQueue, proxy: FaultProxy) -> None:
    queue.send_many([str(i) for i in range(60)])
    async with running_source(source_args(queue, proxy.url)) as engine:
        await consume(engine, 60)
        await eventually(lambda: queue.counts() == (0, 0), what="all deleted")
    actions = proxy.actions()
    assert actions["DeleteMessage"] == 0
    # One receive and one delete per message would be 120 requests.
    assert actions["ReceiveMessage"] + actions["DeleteMessageBatch"] <= 40, actions


def send_fifo_groups(fifo_queue: TestQueue, groups: int, per_group: int) -> dict[str, list[str]]:
    sent: dict[str, list[str]] = {f"g{g}": [] for g in range(1, groups + 1)}
    for i in range(per_group):
        for group, bodies in sent.items():
            body = f"{group}-{i}"
            fifo_queue.send(body, MessageGroupId=group, MessageDeduplicationId=body)
            bodies.append(body)
    return sent


def received_by_group(engine: Engine, groups: dict[str, list[str]]) -> dict[str, list[str]]:
    return {
        group: [e["body"] for e in engine.events if e["meta"]["sqs"]["message_group_id"] == group]
        for group in groups
    }


def attempt_ids(proxy: FaultProxy) -> list[str]:
    return [json.loads(body)["ReceiveRequestAttemptId"] for body in proxy.bodies("ReceiveMessage")]


async def test_fifo_order_is_kept_within_each_group_across_lost_receive_requests(
    fifo_queue: TestQueue, proxy: FaultProxy
) -> None:
    sent = send_fifo_groups(fifo_queue, groups=3, per_group=15)
    proxy.inject(RESET, action="ReceiveMessage", times=2)
    args = source_args(fifo_queue, proxy.url, max_number_of_messages=4)
    async with running_source(args) as engine:
        await consume(engine, 45)
        await eventually(lambda: fifo_queue.counts() == (0, 0), what="all deleted")
    assert received_by_group(engine, sent) == sent


async def test_a_lost_fifo_receive_response_is_retried_with_the_same_attempt_id(
    fifo_queue: TestQueue, proxy: FaultProxy
) -> None:
    sent = send_fifo_groups(fifo_queue, groups=3, per_group=5)
    # SQS processed these receives, but their answers never arrived.
    proxy.inject(LOST_RESPONSE, action="ReceiveMessage", times=2)
    # On SQS a retry with the lost receive's attempt id returns the same messages, in order.
    # moto ignores the attempt id: the lost messages come back only when their visibility
    # timeout expires, and its redelivery after a timeout can reorder a group (it re-checks
    # the group's busy state message by message). So here: same attempt id, nothing lost.
    args = source_args(fifo_queue, proxy.url, max_number_of_messages=4, visibility_timeout=2)
    async with running_source(args) as engine:
        await consume(engine, 15)
        await eventually(lambda: fifo_queue.counts() == (0, 0), what="all deleted")

    ids = attempt_ids(proxy)
    assert ids[0] == ids[1] == ids[2], ids[:4]
    assert ids[3] != ids[2]
    assert {g: sorted(bodies) for g, bodies in received_by_group(engine, sent).items()} == {
        g: sorted(bodies) for g, bodies in sent.items()
    }


async def test_fifo_groups_flow_without_waiting_out_long_polls(
    fifo_queue: TestQueue, moto_endpoint: str
) -> None:
    sent = send_fifo_groups(fifo_queue, groups=3, per_group=15)
    # Full 20 s long polls: moto's FIFO poll would sleep through groups freeing up.
    args = source_args(fifo_queue, moto_endpoint, wait_time_seconds=20)
    async with running_source(args) as engine:
        async with asyncio.timeout(15):
            await consume(engine, 45)
        await eventually(lambda: fifo_queue.counts() == (0, 0), what="all deleted")
    assert received_by_group(engine, sent) == sent


async def test_visibility_timeout_zero_keeps_a_message_delivered_twice_while_held_once(
    queue: TestQueue, proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    queue.send("held, and visible again at once")
    caplog.set_level(logging.DEBUG, logger="durable.eda.aws_sqs_queue")
    args = source_args(queue, proxy.url, visibility_timeout=0)
    async with running_source(args, feedback=True) as engine:
        event = await engine.take()
        await eventually(
            lambda: caplog.text.count("delivered twice while held") >= 2,
            what="two redeliveries while the engine holds the event",
        )
        assert engine.queue.empty(), "a redelivered copy reached the engine"
        await engine.acknowledge(event)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted")
    assert engine.message_ids()[0] == event["meta"]["MessageId"]
    assert proxy.count("ChangeMessageVisibilityBatch") == 0, "no heartbeat at visibility 0"


async def test_stop_arriving_with_an_acknowledgement_still_stops(
    queue: TestQueue, moto_endpoint: str
) -> None:
    queue.send_many(["a", "b"])
    async with running_source(source_args(queue, moto_endpoint), feedback=True) as engine:
        event = await engine.take()
        assert engine.source is not None
        # The acknowledgement and the cancellation reach the source in the same loop turn.
        await engine.acknowledge(event)
        engine.source.cancel()
        done, _ = await asyncio.wait({engine.source}, timeout=20)
        assert engine.source in done, "the source ignored its cancellation"
