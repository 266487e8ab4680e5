"""Runs the event source plugin as ansible-rulebook would, against a real SQS endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aws_sqs_queue
from ansible_rulebook.engine import FilteredQueue

from tests.support.aws import REGION, TestQueue


def source_args(queue: TestQueue, endpoint: str, **options: Any) -> dict[str, Any]:
    return {
        "name": queue.name,
        "region": REGION,
        "endpoint_url": endpoint,
        # Short polls keep moto from parking a message on a poll the test has abandoned.
        "wait_time_seconds": 1,
        **options,
    }


@dataclass
class Engine:
    """Stands in for ansible-rulebook: a queue of one, and optionally a feedback queue."""

    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(1))
    feedback: asyncio.Queue[dict[str, Any]] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    source: asyncio.Task[None] | None = None

    async def take(self) -> dict[str, Any]:
        event = await asyncio.wait_for(self.queue.get(), 30)
        self.events.append(event)
        return event

    async def acknowledge(self, event: dict[str, Any]) -> None:
        assert self.feedback is not None
        await self.feedback.put(event)

    def message_ids(self) -> list[str]:
        return [e["meta"]["MessageId"] for e in self.events]

    def bodies(self) -> list[Any]:
        return [e["body"] for e in self.events]


async def eventually(
    condition: Callable[[], Any], within: float = 30.0, what: str = "condition"
) -> Any:
    """Wait for `condition` (run in a thread, so blocking SQS calls don't stall the loop)."""
    deadline = time.monotonic() + within
    while True:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


EventFilter = Callable[..., Any]


@contextlib.asynccontextmanager
async def running_source(
    args: dict[str, Any], feedback: bool = False, filters: list[EventFilter] | None = None
) -> AsyncIterator[Engine]:
    """Run the source; with `filters`, through ansible-rulebook's own FilteredQueue."""
    engine = Engine(feedback=asyncio.Queue(1) if feedback else None)
    if feedback:
        args = {**args, "feedback": True, "eda_feedback_queue": engine.feedback}
    queue: Any = engine.queue
    if filters is not None:
        queue = FilteredQueue([(f, {}) for f in filters], engine.queue)
    engine.source = asyncio.create_task(aws_sqs_queue.main(queue, args))
    try:
        yield engine
    finally:
        if not engine.source.done():
            engine.source.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await engine.source


async def consume(engine: Engine, count: int) -> list[dict[str, Any]]:
    """Take `count` events, acknowledging each when feedback is on."""
    taken = []
    for _ in range(count):
        event = await engine.take()
        if engine.feedback is not None:
            await engine.acknowledge(event)
        taken.append(event)
    return taken
