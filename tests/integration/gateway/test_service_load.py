"""The local service under load over real loopback sockets: bursts, slow clients, memory."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from durable_eda_gateway.service import GatewayServer

from tests.integration.gateway.wire import (
    ANSWER_TIMEOUT,
    ServiceProcess,
    exchange,
    post_bytes,
    post_head,
    read_answer,
    rss_bytes,
    service_process,
    unread_bytes,
)
from tests.support.aws import TestQueue, wait_until
from tests.support.fault_proxy import FaultProxy
from tests.unit.gateway.support import config_for, gateway_env, serving

BURST = 200


@pytest.fixture
def server(queue: TestQueue, moto_endpoint: str) -> Iterator[GatewayServer]:
    with serving(config_for(queue.url, moto_endpoint)) as running:
        yield running


@pytest.mark.asyncio
async def test_a_burst_of_concurrent_webhooks_is_answered_and_queued_once_each(
    server: GatewayServer, queue: TestQueue
) -> None:
    connections = await asyncio.gather(
        *(asyncio.open_connection(*server.server_address) for _ in range(BURST))
    )
    go = asyncio.Event()

    async def post(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        try:
            await go.wait()
            writer.write(post_bytes({"status": "failed", "n": n}))
            await writer.drain()
            return (await asyncio.wait_for(read_answer(reader), ANSWER_TIMEOUT)).status
        finally:
            writer.close()

    posts = [post(n, reader, writer) for n, (reader, writer) in enumerate(connections)]
    go.set()
    statuses = await asyncio.gather(*posts)

    assert statuses == [202] * BURST
    messages = queue.drain()
    assert sorted(json.loads(m["Body"])["payload"]["n"] for m in messages) == list(range(BURST))
    assert len({m["MessageId"] for m in messages}) == BURST


@contextlib.asynccontextmanager
async def held_open(address: tuple[str, int], sends: list[bytes]) -> AsyncIterator[None]:
    """Connections that each sent their bytes and then say nothing, until the block ends."""
    opened = [await asyncio.open_connection(*address) for _ in sends]
    try:
        for (_, writer), raw in zip(opened, sends, strict=True):
            writer.write(raw)
            await writer.drain()
        yield
    finally:
        for _, writer in opened:
            writer.close()


@pytest.mark.asyncio
async def test_slow_clients_stall_nobody_else(server: GatewayServer, queue: TestQueue) -> None:
    half_headers = [b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"] * 100
    half_bodies = [post_head(100) + b'{"status": "fa'] * 100
    async with held_open(server.server_address, half_headers + half_bodies):
        answers = [await exchange(server.server_address, post_bytes({"n": n})) for n in range(3)]
    assert [a.status for a in answers] == [202] * 3
    assert len(queue.drain()) == 3


def test_memory_stays_bounded_while_200_clients_hold_half_sent_bodies(
    queue: TestQueue, moto_endpoint: str, project_root: Path
) -> None:
    declared, sent = 256_000, 64_000
    with service_process(gateway_env(queue.url, moto_endpoint), project_root) as service:
        growth = asyncio.run(_growth_while_held(service, post_head(declared) + b" " * sent))
        after = asyncio.run(exchange(service.address, post_bytes({"n": 1})))
    # It holds what the clients sent plus a little per connection: not their declared
    # lengths, not a thread's stack each.
    budget = BURST * (sent + 64 * 1024)
    assert growth < budget, f"{growth} bytes for {BURST} half-sent bodies (budget {budget})"
    assert after.status == 202
    assert len(queue.drain()) == 2


async def _growth_while_held(service: ServiceProcess, raw: bytes) -> int:
    assert (await exchange(service.address, post_bytes({"n": 0}))).status == 202
    before = rss_bytes(service.process.pid)
    async with held_open(service.address, [raw] * BURST):
        port = service.address[1]
        await asyncio.to_thread(
            wait_until, lambda: unread_bytes(port) == 0, 60, what="the service to read every byte"
        )
        return rss_bytes(service.process.pid) - before


def test_sigterm_answers_the_webhooks_in_flight_before_exiting(
    queue: TestQueue, moto_endpoint: str, project_root: Path
) -> None:
    with (
        FaultProxy(upstream=moto_endpoint, latency=2.0) as slow_sqs,
        service_process(gateway_env(queue.url, slow_sqs.url), project_root) as service,
        ThreadPoolExecutor(1) as client,
    ):
        answer = client.submit(asyncio.run, exchange(service.address, post_bytes({"n": 7})))
        wait_until(lambda: slow_sqs.count("SendMessage") == 1, what="SendMessage to be under way")
        service.process.terminate()
        assert answer.result(timeout=60).status == 202
        assert service.process.wait(timeout=60) == 0
    assert [json.loads(m["Body"])["payload"] for m in queue.drain()] == [{"n": 7}]
