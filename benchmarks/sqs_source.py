"""Throughput of durable.eda.aws_sqs_queue against a raw aiobotocore loop, in one run.

Both consume the same number of messages from a queue of moderate depth on one moto
server, first directly, then behind a proxy that adds 20 ms to every request (roughly an
in-region SQS call). Figures are ratios against the raw loop measured in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aws_sqs_queue
from aiobotocore.session import AioSession

from tests.support.aws import REGION, create_queue
from tests.support.fault_proxy import FaultProxy

MESSAGES = 200
ROUNDS = 3
LATENCY_SECONDS = 0.02


@dataclass(frozen=True)
class Result:
    name: str
    rate: float
    requests_per_1000: float | None = None


async def raw_loop(endpoint: str, queue_url: str, count: int) -> None:
    """The naive consumer: receive 10, hand them over, delete them in one batch, repeat."""
    consumer: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1)
    drained = 0

    async def drain() -> None:
        while True:
            await consumer.get()

    drainer = asyncio.create_task(drain())
    async with AioSession().create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        while drained < count:
            reply = await sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = reply.get("Messages", [])
            for message in messages:
                await consumer.put({"body": message["Body"]})
            if messages:
                entries: list[Any] = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ]
                await sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            drained += len(messages)
    drainer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await drainer


async def plugin(endpoint: str, queue_name: str, count: int, feedback: bool = False) -> None:
    """The plugin with default options, feeding a queue of one drained by a consumer."""
    engine: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1)
    acknowledgements: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1)
    args: dict[str, Any] = {"name": queue_name, "region": REGION, "endpoint_url": endpoint}
    if feedback:
        args |= {"feedback": True, "eda_feedback_queue": acknowledgements}
    source = asyncio.create_task(aws_sqs_queue.main(engine, args))
    for _ in range(count):
        event = await next_event(engine, source)
        if feedback:
            await acknowledgements.put(event)
    source.cancel()  # deletes what is acknowledged before it returns
    with contextlib.suppress(asyncio.CancelledError):
        await source


async def next_event(
    engine: asyncio.Queue[dict[str, Any]], source: asyncio.Task[None]
) -> dict[str, Any]:
    """The next event, or the source's own error if it stops first."""
    waiting = asyncio.ensure_future(engine.get())
    done, _ = await asyncio.wait({waiting, source}, return_when=asyncio.FIRST_COMPLETED)
    if waiting not in done:
        waiting.cancel()
        source.result()
        raise RuntimeError("the source stopped before delivering every message")
    return waiting.result()


Consumer = Callable[[str, str, str, int], Awaitable[None]]


def fill_queue(endpoint: str) -> tuple[str, str]:
    queue = create_queue(endpoint)
    queue.send_many([f'{{"n": {i}, "id": "{uuid.uuid4()}"}}' for i in range(MESSAGES)])
    return queue.name, queue.url


async def measure(moto: str, endpoint: str, run: Consumer) -> float:
    """Messages/s of one run through `endpoint`; the queue is filled straight into moto."""
    name, url = await asyncio.to_thread(fill_queue, moto)
    started = time.perf_counter()
    await run(endpoint, name, url, MESSAGES)
    return MESSAGES / (time.perf_counter() - started)


async def best_of(moto: str, endpoint: str, run: Consumer) -> float:
    return max([await measure(moto, endpoint, run) for _ in range(ROUNDS)])


def raw(endpoint: str, _name: str, url: str, count: int) -> Awaitable[None]:
    return raw_loop(endpoint, url, count)


def default_plugin(endpoint: str, name: str, _url: str, count: int) -> Awaitable[None]:
    return plugin(endpoint, name, count)


def feedback_plugin(endpoint: str, name: str, _url: str, count: int) -> Awaitable[None]:
    return plugin(endpoint, name, count, feedback=True)


async def requests_per_1000(proxy: FaultProxy, run: Consumer) -> float:
    before = proxy.count()
    await measure(proxy.upstream, proxy.url, run)
    return (proxy.count() - before) * 1000 / MESSAGES


async def compare(moto_endpoint: str) -> list[tuple[str, Result, Result]]:
    """(setting, baseline, plugin) pairs; the plugin's requests are counted behind the proxy."""
    moto = moto_endpoint
    direct_raw = Result("raw loop", await best_of(moto, moto, raw))
    direct_plugin = Result("plugin", await best_of(moto, moto, default_plugin))
    direct_feedback = Result("plugin, feedback", await best_of(moto, moto, feedback_plugin))
    with FaultProxy(upstream=moto, latency=LATENCY_SECONDS) as proxy:
        slow_raw = Result(
            "raw loop", await best_of(moto, proxy.url, raw), await requests_per_1000(proxy, raw)
        )
        slow_plugin = Result(
            "plugin",
            await best_of(moto, proxy.url, default_plugin),
            await requests_per_1000(proxy, default_plugin),
        )
    return [
        ("direct to moto", direct_raw, direct_plugin),
        ("direct to moto, feedback: true", direct_raw, direct_feedback),
        (f"behind {LATENCY_SECONDS * 1000:.0f} ms latency", slow_raw, slow_plugin),
    ]


TARGETS = {
    "direct to moto": 0.8,
    "direct to moto, feedback: true": 0.5,
    f"behind {LATENCY_SECONDS * 1000:.0f} ms latency": 1.0,
}
REQUEST_BUDGET_PER_1000 = 250


def report(rows: list[tuple[str, Result, Result]]) -> bool:
    """Print the table; True when every target is met."""
    met = True
    print(f"SQS source: {MESSAGES} messages per run, best of {ROUNDS}")
    print(f"{'setting':34} {'raw msg/s':>10} {'plugin msg/s':>13} {'ratio':>6} {'target':>7}")
    for setting, baseline, candidate in rows:
        ratio = candidate.rate / baseline.rate
        ok = ratio >= TARGETS[setting]
        met &= ok
        print(
            f"{setting:34} {baseline.rate:10.0f} {candidate.rate:13.0f} {ratio:6.2f} "
            f"{'>=' + str(TARGETS[setting]):>7} {'ok' if ok else 'MISSED'}"
        )
    for _, baseline, candidate in rows:
        if candidate.requests_per_1000 is not None and baseline.requests_per_1000 is not None:
            ok = candidate.requests_per_1000 <= REQUEST_BUDGET_PER_1000
            met &= ok
            print(
                f"SQS requests per 1,000 events: plugin {candidate.requests_per_1000:.0f}, "
                f"raw loop {baseline.requests_per_1000:.0f} "
                f"(budget {REQUEST_BUDGET_PER_1000}) {'ok' if ok else 'MISSED'}"
            )
    return met
