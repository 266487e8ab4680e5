"""The webhook gateway: requests/s it accepts and forwards, against boto3 sending directly.

The local service runs in its own process (as it would in production) in front of the
given SQS endpoint. At each level of concurrency (1, 16 and 64 clients, each on its own
keep-alive connection) the same requests go first to the gateway over loopback HTTP, then
straight to SQS with boto3 (the ceiling), in the same run. The ratio is what HTTP,
authentication, filtering and the envelope cost. Separately, a fresh interpreter times
`import lambda_function` plus its first call: the Lambda cold-start share that is ours.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import boto3

GATEWAY_DIR = Path(__file__).resolve().parent.parent / "gateway"
API_KEY = "bench-gateway-key"
PAYLOAD = json.dumps(
    {"status": "failed", "host": "web1", "check": "disk", "detail": "x" * 400}
).encode()
LEVELS = (1, 16, 64)


@dataclass(frozen=True)
class LevelResult:
    clients: int
    gateway_per_second: float
    direct_per_second: float

    @property
    def ratio(self) -> float:
        return self.gateway_per_second / self.direct_per_second


@dataclass(frozen=True)
class GatewayResults:
    requests: int
    levels: tuple[LevelResult, ...]
    lambda_import_ms: float
    lambda_first_call_ms: float


def run(endpoint: str, requests: int = 400) -> bool:
    """Measure against the SQS endpoint, print the report; False if a request failed."""
    try:
        results = measure(endpoint, requests)
    except RuntimeError as error:
        print(f"gateway benchmark failed: {error}")
        return False
    report(results)
    return True


def measure(endpoint: str, requests: int = 400, levels: tuple[int, ...] = LEVELS) -> GatewayResults:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    gateway_queue = _new_queue(sqs)
    direct_queue = _new_queue(sqs)
    results = []
    with _gateway_process(endpoint, gateway_queue) as url:
        for clients in levels:
            gateway_rate = _rate(requests, clients, lambda: _HttpSender(url))
            direct_rate = _rate(requests, clients, lambda: _Boto3Sender(endpoint, direct_queue))
            results.append(LevelResult(clients, gateway_rate, direct_rate))
    import_ms, first_call_ms = _lambda_cold_start(endpoint, gateway_queue)
    for queue_url in (gateway_queue, direct_queue):
        sqs.delete_queue(QueueUrl=queue_url)
    sqs.close()
    return GatewayResults(requests, tuple(results), import_ms, first_call_ms)


def report(results: GatewayResults) -> None:
    lines = [
        f"gateway: {results.requests} webhooks per level, loopback, each client on its own"
        " connection",
        "  clients   local gateway (HTTP -> SQS) req/s   boto3 straight to SQS req/s   ratio",
    ]
    lines += [
        f"  {level.clients:7d}   {level.gateway_per_second:33.1f}   "
        f"{level.direct_per_second:27.1f}   {level.ratio:5.2f}"
        for level in results.levels
    ]
    lines += [
        f"  Lambda handler import       {results.lambda_import_ms:8.1f} ms",
        f"  Lambda handler first call   {results.lambda_first_call_ms:8.1f} ms",
    ]
    print("\n".join(lines))


def _new_queue(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName=f"bench-gw-{uuid.uuid4().hex[:8]}")["QueueUrl"])


def _gateway_env(endpoint: str, queue_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "GATEWAY_QUEUE_URL": queue_url,
        "GATEWAY_AWS_ENDPOINT_URL": endpoint,
        "GATEWAY_API_KEYS": API_KEY,
        "GATEWAY_SOURCE": "bench",
        # moto answers 64 concurrent clients far slower than SQS does; the 15 s default
        # would give each attempt under a second (see GATEWAY_TIMEOUT_SECONDS in the README).
        "GATEWAY_TIMEOUT_SECONDS": "60",
        "AWS_REGION": "us-east-1",
        "PYTHONPATH": str(GATEWAY_DIR),
    }
    return env


@contextlib.contextmanager
def _gateway_process(endpoint: str, queue_url: str) -> Iterator[str]:
    """The local service in its own process; yields its URL."""
    command = [sys.executable, "-m", "durable_eda_gateway.service", "--port", "0"]
    with subprocess.Popen(
        [*command, "--log-level", "warning"],
        env=_gateway_env(endpoint, queue_url),
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if "listening on" not in line:
                raise RuntimeError("the gateway did not start")
            yield line.split()[-1]
        finally:
            process.terminate()
            process.wait(10)


class Sender(Protocol):
    def send(self) -> None: ...

    def close(self) -> None: ...


def _rate(requests: int, clients: int, make_sender: Callable[[], Sender]) -> float:
    """Requests/s with `clients` threads, each with its own connection, sharing the work."""
    senders = [make_sender() for _ in range(clients)]
    counts = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    errors: list[BaseException] = []

    def work(sender: Sender, count: int) -> None:
        try:
            for _ in range(count):
                sender.send()
        except (OSError, RuntimeError) as error:
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=pair) for pair in zip(senders, counts, strict=True)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for sender in senders:
        sender.close()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    return requests / elapsed


class _HttpSender:
    """POSTs the payload to the gateway over one keep-alive connection."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self._headers = {"content-type": "application/json", "x-api-key": API_KEY}

    def send(self) -> None:
        self._connection.request("POST", "/", body=PAYLOAD, headers=self._headers)
        reply = self._connection.getresponse()
        reply.read()
        if reply.status != 202:
            raise RuntimeError(f"the gateway answered {reply.status}")

    def close(self) -> None:
        self._connection.close()


class _Boto3Sender:
    """Sends the payload straight to SQS: one client per thread, as the gateway has one."""

    def __init__(self, endpoint: str, queue_url: str) -> None:
        session = boto3.session.Session()
        self._client = session.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        self._queue_url = queue_url

    def send(self) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=PAYLOAD.decode(),
            MessageAttributes={"source": {"DataType": "String", "StringValue": "bench"}},
        )

    def close(self) -> None:
        self._client.close()


_COLD_START = """
import json, time
started = time.perf_counter()
from durable_eda_gateway import lambda_function
imported = time.perf_counter()
event = {"version": "2.0", "headers": {"content-type": "application/json", "x-api-key": %r},
         "requestContext": {"http": {"method": "POST"}, "requestId": "bench"},
         "body": %r, "isBase64Encoded": False}
answer = lambda_function.handler(event, None)
called = time.perf_counter()
assert answer["statusCode"] == 202, answer
print(json.dumps([(imported - started) * 1000, (called - imported) * 1000]))
"""


def _lambda_cold_start(endpoint: str, queue_url: str) -> tuple[float, float]:
    script = _COLD_START % (API_KEY, PAYLOAD.decode())
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=_gateway_env(endpoint, queue_url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the Lambda cold-start probe failed: {result.stderr[-500:]}")
    import_ms, call_ms = json.loads(result.stdout)
    return float(import_ms), float(call_ms)
