"""`make soak`: durable.eda.aws_sqs_queue under steady traffic and faults, then a backlog.

Parts, all on 127.0.0.1: moto's server in its own process; a relay in front of it that lets
one mutating SQS call at a time through (moto 5.2.5 loses a message when a send and a delete
on one queue overlap, which would be counted against the plugin); the fault proxy from
tests/support/fault_proxy.py between the source and the relay, adding 20 ms to every request
and injecting, at a steady rate, connection resets (request lost, or response lost), 500,
503 and throttling answers; and the source process (benchmarks/soak_source.py): the plugin's
`main(queue, args)` with feedback on and a consumer that acknowledges each event.

Phase 1, steady: a producer sends at a steady rate for the soak's duration; then the queue
drains. Phase 2, backlog: the consumer pauses while the queue fills to a depth, then the
backlog drains while the producer keeps it topped up until the backlog's count was sent.

Checks: the source never ends by itself (0 crashes); every message sent was taken by the
consumer (0 lost; duplicates counted separately); the source process's RSS, sampled over
time, stays within 10 % of its steady median after warm-up, through both phases. Also
printed: SQS requests per 1,000 events, counted by the proxy.

Settings from the environment: SOAK_SECONDS (600), SOAK_RATE (20 messages/s), SOAK_BACKLOG
(10000 messages), SOAK_BACKLOG_DEPTH (500; moto's cost per message grows with the depth of
its queue, see README), SOAK_FAULT_EVERY (2 s), SOAK_SAMPLE_EVERY (5 s).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from tests.support.aws import TestQueue, create_queue
from tests.support.fault_proxy import (
    LOST_RESPONSE,
    RESET,
    SERVER_ERROR,
    THROTTLED,
    UNAVAILABLE,
    FaultProxy,
)

LATENCY_SECONDS = 0.02
FAULTS = (RESET, LOST_RESPONSE, SERVER_ERROR, UNAVAILABLE, THROTTLED)
RSS_TOLERANCE = 0.10
WARM_UP_FRACTION = 0.2
PROJECT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    seconds: float = 600
    rate: float = 20
    backlog: int = 10_000
    backlog_depth: int = 500
    fault_every: float = 2.0
    sample_every: float = 5.0
    # Message redelivered after a lost receive response waits out its visibility timeout.
    drain_within: float = 180
    # The plugin's options; small values keep tests/integration/test_soak.py short.
    visibility_timeout: int = 30
    wait_time_seconds: int = 20
    forget: int = 0

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ
        return cls(
            seconds=float(env.get("SOAK_SECONDS", cls.seconds)),
            rate=float(env.get("SOAK_RATE", cls.rate)),
            backlog=int(env.get("SOAK_BACKLOG", cls.backlog)),
            backlog_depth=int(env.get("SOAK_BACKLOG_DEPTH", cls.backlog_depth)),
            fault_every=float(env.get("SOAK_FAULT_EVERY", cls.fault_every)),
            sample_every=float(env.get("SOAK_SAMPLE_EVERY", cls.sample_every)),
        )


# ---------------------------------------------------------------------------------------
# One mutating call at a time into moto


class SerialRelay:
    """Forwards to moto, holding every call but ReceiveMessage to one at a time.

    moto's delete rebuilds the queue's message list, and a send that lands meanwhile is
    dropped from it. Receives are left concurrent: a long poll would otherwise stall every
    other call for its whole wait.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    def __enter__(self) -> SerialRelay:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("relay did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        lock = asyncio.Lock()
        async with ClientSession(
            timeout=ClientTimeout(total=120),
            auto_decompress=False,
            connector=TCPConnector(force_close=True),
        ) as session:

            async def forward(request: web.Request) -> web.StreamResponse:
                body = await request.read()
                headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
                if "ReceiveMessage" in request.headers.get("X-Amz-Target", ""):
                    return await call(request, headers, body)
                async with lock:
                    return await call(request, headers, body)

            async def call(
                request: web.Request, headers: dict[str, str], body: bytes
            ) -> web.Response:
                async with session.request(
                    request.method, self.upstream + request.path_qs, headers=headers, data=body
                ) as upstream:
                    payload = await upstream.read()
                    reply_headers = {
                        k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                return web.Response(status=upstream.status, body=payload, headers=reply_headers)

            app = web.Application(client_max_size=8 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", forward)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stopped.wait()
            await runner.cleanup()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


# ---------------------------------------------------------------------------------------
# The source process


@dataclass
class Taken:
    """What the source process reported: each event's message id, and how it ended."""

    ids: Counter[str] = field(default_factory=Counter)
    ending: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, stream: IO[str]) -> None:
        for line in stream:
            kind, _, rest = line.rstrip("\n").partition(" ")
            with self.lock:
                if kind == "event":
                    self.ids[rest] += 1
                else:
                    self.ending = line.strip()

    def count(self) -> int:
        with self.lock:
            return sum(self.ids.values())

    def missing(self, sent: set[str]) -> set[str]:
        with self.lock:
            return {message_id for message_id in sent if message_id not in self.ids}

    def duplicates(self) -> int:
        with self.lock:
            return sum(n - 1 for n in self.ids.values() if n > 1)

    def duplicated_ids(self) -> list[str]:
        with self.lock:
            return sorted(message_id for message_id, n in self.ids.items() if n > 1)


class SourceProcess:
    def __init__(self, endpoint: str, queue_name: str, settings: Settings, log: IO[bytes]) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PROJECT), str(PROJECT / "extensions/eda/plugins/event_source")]
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.soak_source",
                endpoint,
                queue_name,
                str(settings.forget),
                str(settings.visibility_timeout),
                str(settings.wait_time_seconds),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
            cwd=PROJECT,
        )
        self.taken = Taken()
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=self.taken.read, args=(self.process.stdout,))
        self.reader.start()

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_kib(self) -> int:
        """Resident set size from /proc (Linux), 0 once the process is gone."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def pause(self) -> None:
        self.process.send_signal(signal.SIGUSR1)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGUSR2)

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


# ---------------------------------------------------------------------------------------
# Traffic, faults and samples


class Producer:
    """Sends numbered JSON messages straight to the relay, recording every MessageId."""

    def __init__(self, queue: TestQueue) -> None:
        self.queue = queue
        self.sent: set[str] = set()
        self.numbers = itertools.count()
        self.deepest = 0

    def send(self, count: int) -> None:
        bodies = [f'{{"n": {next(self.numbers)}}}' for _ in range(count)]
        self.sent.update(self.queue.send_many(bodies))

    def steady(self, rate: float, seconds: float, alive: Callable[[], bool]) -> float:
        """Send `rate` messages/s in ticks of 0.5 s for `seconds`; the rate achieved."""
        tick = 0.5
        started = time.monotonic()
        before = len(self.sent)
        owed = 0.0
        for n in range(1, int(seconds / tick) + 1):
            owed += rate * tick
            self.send(int(owed))
            owed -= int(owed)
            if not alive():
                break
            time.sleep(max(0.0, started + n * tick - time.monotonic()))
        return (len(self.sent) - before) / (time.monotonic() - started)

    def fill_to(self, depth: int, remaining: int) -> int:
        """Top the queue up towards `depth` waiting messages; how many were sent."""
        visible, _in_flight = self.queue.counts()
        count = max(0, min(depth - visible, remaining, 100))
        if count:
            self.send(count)
        self.deepest = max(self.deepest, visible + count)
        return count


class FaultInjector:
    """One fault of the next kind every `every` seconds, on whatever request comes next.

    A fault waits for a request, and the next one waits for a request that got through:
    otherwise a quiet source (long polls, back-off) would meet nothing but faults.
    """

    def __init__(self, proxy: FaultProxy, every: float) -> None:
        self.proxy = proxy
        self.every = every
        self.injected: Counter[str] = Counter()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for fault in itertools.cycle(FAULTS):
            if self.stopped.wait(self.every):
                return
            self.proxy.inject(fault)
            while self.proxy.pending_faults():
                if self.stopped.wait(0.05):
                    return
            faulted = self.proxy.count()
            while self.proxy.count() <= faulted:
                if self.stopped.wait(0.05):
                    return
            self.injected[describe(fault)] += 1

    def __enter__(self) -> FaultInjector:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join(10)


def describe(fault: Any) -> str:
    if fault.status == 0:
        return "reset, response lost" if fault.forward else "reset, request lost"
    return f"{fault.status} {fault.code}"


@dataclass(frozen=True)
class Sample:
    at: float
    phase: str
    rss_kib: int
    taken: int


class Sampler:
    def __init__(self, source: SourceProcess, every: float) -> None:
        self.source = source
        self.every = every
        self.phase = "steady"
        self.samples: list[Sample] = []
        self.started = time.monotonic()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            rss = self.source.rss_kib()
            if rss:
                at = time.monotonic() - self.started
                self.samples.append(Sample(at, self.phase, rss, self.source.taken.count()))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join(10)


# ---------------------------------------------------------------------------------------
# The run


@dataclass
class PhaseFigures:
    name: str
    seconds: float
    sent: int
    taken: int
    requests: int
    lost: int

    @property
    def requests_per_1000(self) -> float:
        return self.requests * 1000 / self.taken if self.taken else float("nan")


@dataclass
class Result:
    settings: Settings
    phases: list[PhaseFigures]
    samples: list[Sample]
    lost: int
    duplicates: int
    duplicated_ids: list[str]
    crashed: str
    exit_code: int
    faults: Counter[str]
    actions: Counter[str]
    steady_rate: float
    deepest: int

    def steady_rss(self) -> list[int]:
        """Steady samples after warm-up: from the first event on, less the first fifth."""
        steady = [s for s in self.samples if s.phase == "steady" and s.taken > 0]
        skip = int(len(steady) * WARM_UP_FRACTION)
        return [s.rss_kib for s in steady[skip:]]

    def rss_baseline_kib(self) -> float:
        steady = self.steady_rss()
        return statistics.median(steady) if steady else float("nan")

    def rss_after_warm_up(self) -> list[int]:
        steady = self.steady_rss()
        return steady + [s.rss_kib for s in self.samples if s.phase == "backlog"]

    def rss_flat(self) -> bool:
        baseline = self.rss_baseline_kib()
        after = self.rss_after_warm_up()
        return bool(after) and all(abs(rss - baseline) <= RSS_TOLERANCE * baseline for rss in after)

    def checks(self) -> dict[str, bool]:
        return {
            "0 crashes": not self.crashed and self.exit_code == 0,
            "0 lost": self.lost == 0,
            f"RSS within {RSS_TOLERANCE:.0%} of its steady median after warm-up": self.rss_flat(),
        }

    @property
    def ok(self) -> bool:
        return all(self.checks().values())


def wait_drained(
    sent: set[str], queue: TestQueue, source: SourceProcess, within: float
) -> set[str]:
    """Wait until every message sent was taken, the queue holds none, the source ended, or
    `within` s passed; what is missing then."""
    deadline = time.monotonic() + within
    while True:
        missing = source.taken.missing(sent)
        if not missing or not source.alive() or time.monotonic() > deadline:
            return missing
        if queue.counts() == (0, 0):
            # Deleted only after the consumer wrote its line; let the reader catch up.
            time.sleep(1)
            return source.taken.missing(sent)
        time.sleep(0.2)


def run_backlog(settings: Settings, producer: Producer, source: SourceProcess) -> None:
    """Fill the queue to the backlog depth with the consumer paused, then drain it while
    topping it up until the backlog's count was sent (or the source stops taking)."""
    remaining = settings.backlog
    source.pause()
    try:
        while remaining > 0 and source.alive():
            sent = producer.fill_to(settings.backlog_depth, remaining)
            remaining -= sent
            if sent == 0:
                break
    finally:
        source.resume()
    progress = (source.taken.count(), time.monotonic())
    while remaining > 0 and source.alive():
        sent = producer.fill_to(settings.backlog_depth, remaining)
        remaining -= sent
        taken = source.taken.count()
        if taken != progress[0] or sent:
            progress = (taken, time.monotonic())
        elif time.monotonic() - progress[1] > settings.drain_within:
            return
        if sent == 0:
            time.sleep(0.2)


def run(moto: str, settings: Settings, log: IO[bytes]) -> Result:
    with (
        SerialRelay(moto) as relay,
        FaultProxy(upstream=relay.url, latency=LATENCY_SECONDS) as proxy,
    ):
        queue = create_queue(relay.url)
        producer = Producer(queue)
        source = SourceProcess(proxy.url, queue.name, settings, log)
        phases: list[PhaseFigures] = []
        try:
            with (
                Sampler(source, settings.sample_every) as sampler,
                FaultInjector(proxy, settings.fault_every) as faults,
            ):
                phases.append(
                    measure_phase("steady", producer, source, proxy, settings, steady=True)
                )
                steady_rate = phases[-1].sent / settings.seconds
                sampler.phase = "backlog"
                phases.append(
                    measure_phase("backlog", producer, source, proxy, settings, steady=False)
                )
        finally:
            exit_code = source.stop()
        missing = source.taken.missing(producer.sent)
        return Result(
            settings=settings,
            phases=phases,
            samples=sampler.samples,
            lost=len(missing),
            duplicates=source.taken.duplicates(),
            duplicated_ids=source.taken.duplicated_ids(),
            crashed=source.taken.ending if source.taken.ending != "stopped" else "",
            exit_code=exit_code,
            faults=faults.injected,
            actions=proxy.actions(),
            steady_rate=steady_rate,
            deepest=producer.deepest,
        )


def measure_phase(
    name: str,
    producer: Producer,
    source: SourceProcess,
    proxy: FaultProxy,
    settings: Settings,
    steady: bool,
) -> PhaseFigures:
    started = time.monotonic()
    sent_before, taken_before, requests_before = (
        set(producer.sent),
        source.taken.count(),
        proxy.count(),
    )
    if steady:
        producer.steady(settings.rate, settings.seconds, source.alive)
    else:
        run_backlog(settings, producer, source)
    sent = producer.sent - sent_before
    missing = wait_drained(sent, producer.queue, source, settings.drain_within)
    return PhaseFigures(
        name=name,
        seconds=time.monotonic() - started,
        sent=len(sent),
        taken=source.taken.count() - taken_before,
        requests=proxy.count() - requests_before,
        lost=len(missing),
    )


# ---------------------------------------------------------------------------------------
# Report


def report(result: Result, out: IO[str] = sys.stdout) -> None:
    s = result.settings
    print(
        f"SQS source soak: {s.seconds:.0f} s at {s.rate:g} messages/s, then a backlog of "
        f"{s.backlog} kept up to {s.backlog_depth} deep; {LATENCY_SECONDS * 1000:.0f} ms "
        f"latency, a fault every {s.fault_every:g} s",
        file=out,
    )
    for phase in result.phases:
        print(
            f"  {phase.name:8} {phase.seconds:7.0f} s  sent {phase.sent:6}  taken "
            f"{phase.taken:6}  lost {phase.lost}  SQS requests per 1,000 events "
            f"{phase.requests_per_1000:.0f}",
            file=out,
        )
    print(f"  steady rate achieved: {result.steady_rate:.1f} messages/s", file=out)
    print(f"  deepest backlog seen: {result.deepest} messages waiting", file=out)
    print(f"  faults injected: {dict(sorted(result.faults.items()))}", file=out)
    print(f"  requests by action: {dict(sorted(result.actions.items()))}", file=out)
    print(f"  duplicates (taken more than once): {result.duplicates}", file=out)
    if result.duplicated_ids:
        # To look up in the source's log, e.g. a delete SQS refused.
        print(f"  taken more than once: {' '.join(result.duplicated_ids[:20])}", file=out)
    print(f"  source: {source_ending(result)} (exit {result.exit_code})", file=out)
    report_rss(result, out)
    for check, passed in result.checks().items():
        print(f"  {check}: {'ok' if passed else 'FAILED'}", file=out)


def source_ending(result: Result) -> str:
    if result.crashed:
        return result.crashed
    if result.exit_code:
        return "the source process died without a word"
    return "never ended by itself"


def report_rss(result: Result, out: IO[str]) -> None:
    baseline = result.rss_baseline_kib()
    after = result.rss_after_warm_up()
    if not after:
        print("  RSS: no samples after warm-up", file=out)
        return
    print(
        f"  RSS after warm-up: median {baseline / 1024:.1f} MiB, min {min(after) / 1024:.1f}, "
        f"max {max(after) / 1024:.1f} ({len(after)} samples)",
        file=out,
    )
    for phase in ("steady", "backlog"):
        samples = [s for s in result.samples if s.phase == phase]
        if samples:
            print(
                f"  RSS {phase}: "
                + " ".join(f"{s.at:.0f}s={s.rss_kib / 1024:.1f}" for s in thinned(samples)),
                file=out,
            )


def thinned(samples: list[Sample], most: int = 12) -> Iterator[Sample]:
    step = max(1, len(samples) // most)
    yield from samples[::step]
    if (len(samples) - 1) % step:
        yield samples[-1]


def main() -> int:
    from benchmarks.__main__ import isolate_aws_environment, machine, moto_server

    isolate_aws_environment()
    settings = Settings.from_environment()
    print(f"machine: {machine()}")
    with (
        tempfile.NamedTemporaryFile(prefix="soak-source-", suffix=".log", delete=False) as log,
        moto_server() as endpoint,
    ):
        result = run(endpoint, settings, log)
    report(result)
    print(f"  source process log: {log.name}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
