"""Raw HTTP/1.1 over asyncio sockets, for tests that hold many connections to the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.unit.gateway.support import API_KEY

ANSWER_TIMEOUT = 60.0


def post_head(length: int, api_key: str = API_KEY) -> bytes:
    return (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"X-Api-Key: {api_key}\r\nContent-Length: {length}\r\n\r\n".encode()
    )


def post_bytes(payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    return post_head(len(body)) + body


@dataclass(frozen=True)
class Answer:
    status: int
    payload: Any


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP/1.1 answer with a Content-Length body, as the gateway sends them."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in header_lines if line and not line.startswith(" "))
    length = int({k.lower(): v for k, v in headers.items()}["content-length"])
    body = await reader.readexactly(length)
    return Answer(int(status_line.split()[1]), json.loads(body) if body else None)


async def exchange(address: tuple[str, int], raw: bytes) -> Answer:
    """Open a connection, send `raw`, read the answer, close."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(read_answer(reader), ANSWER_TIMEOUT)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, as the kernel reports it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def unread_bytes(port: int) -> int:
    """Bytes in flight on loopback TCP connections to or from `port`: sent, not yet read."""
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = (int(a.rsplit(":", 1)[1], 16) for a in fields[1:3])
        if port in (local_port, remote_port):
            queued, unread = (int(n, 16) for n in fields[4].split(":"))
            total += queued + unread
    return total


@dataclass(frozen=True)
class ServiceProcess:
    process: subprocess.Popen[str]
    address: tuple[str, int]


@contextlib.contextmanager
def service_process(env: dict[str, str], project_root: Path) -> Iterator[ServiceProcess]:
    """`python -m durable_eda_gateway.service --port 0` as production runs it; SIGTERM on exit."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    full_env |= env | {"PYTHONPATH": str(project_root / "gateway")}
    process = subprocess.Popen(
        [sys.executable, "-m", "durable_eda_gateway.service", "--port", "0"],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = urlsplit(line.split()[-1])
        yield ServiceProcess(process, (url.hostname or "", url.port or 0))
        process.terminate()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
