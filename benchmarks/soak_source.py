"""The process under soak: durable.eda.aws_sqs_queue's `main(queue, args)` with feedback on,
and a consumer standing in for ansible-rulebook.

The consumer takes each event from an `asyncio.Queue(1)`, writes its message id to stdout
(one `event <id>` line), then acknowledges it on the feedback queue, as the engine does once
it has handled an event. It keeps no record itself, so this process's memory is the
plugin's. The source task must never end by itself: if it does, a `crashed <error>` line
is written and the process exits 3. SIGTERM or SIGINT cancel the source (which settles what
it holds) and the process exits 0 after a `stopped` line. SIGUSR1 pauses the consumer (an
engine that takes nothing while a backlog builds up), SIGUSR2 resumes it.

Run by benchmarks/soak.py: `python -m benchmarks.soak_source ENDPOINT QUEUE_NAME FORGET
VISIBILITY_TIMEOUT WAIT_TIME_SECONDS`. FORGET > 0 makes the consumer acknowledge its
FORGET-th event without reporting it, a loss that the soak's own loss check must catch
(tests/integration/test_soak.py uses it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

import aws_sqs_queue

CRASHED = 3


def report(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def consume(
    engine: asyncio.Queue[dict[str, Any]],
    acknowledgements: asyncio.Queue[dict[str, Any]],
    forget: int,
    running: asyncio.Event,
) -> None:
    taken = 0
    while True:
        await running.wait()
        event = await engine.get()
        taken += 1
        if taken != forget:
            report(f"event {event['meta']['MessageId']}")
        await acknowledgements.put(event)


async def run(endpoint: str, queue_name: str, forget: int, options: dict[str, Any]) -> int:
    engine: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1)
    acknowledgements: asyncio.Queue[dict[str, Any]] = asyncio.Queue(1)
    args: dict[str, Any] = {
        "name": queue_name,
        "region": "us-east-1",
        "endpoint_url": endpoint,
        "feedback": True,
        "eda_feedback_queue": acknowledgements,
        **options,
    }
    source = asyncio.create_task(aws_sqs_queue.main(engine, args))
    running = asyncio.Event()
    running.set()
    consumer = asyncio.create_task(consume(engine, acknowledgements, forget, running))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    loop.add_signal_handler(signal.SIGUSR1, running.clear)
    loop.add_signal_handler(signal.SIGUSR2, running.set)
    stop = asyncio.create_task(stopping.wait())
    await asyncio.wait({source, consumer, stop}, return_when=asyncio.FIRST_COMPLETED)
    if not stop.done():
        stop.cancel()
        failed = source if source.done() else consumer
        error = failed.exception() if not failed.cancelled() else "cancelled"
        report(f"crashed {'source' if failed is source else 'consumer'}: {error!r}")
        consumer.cancel()
        source.cancel()
        return CRASHED
    consumer.cancel()
    source.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await source
    report("stopped")
    return 0


def main() -> int:
    endpoint, queue_name, forget, visibility_timeout, wait_time_seconds = sys.argv[1:6]
    options = {"visibility_timeout": visibility_timeout, "wait_time_seconds": wait_time_seconds}
    # The plugin's warnings (each injected fault retried) go to stderr, which the soak keeps.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    return asyncio.run(run(endpoint, queue_name, int(forget), options))


if __name__ == "__main__":
    sys.exit(main())
