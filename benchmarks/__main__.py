"""`make bench`: every benchmark, against a moto server started for the run on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks import gateway, sqs_source


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in its own process, so its CPU is not shared with the client under test."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("moto_server")),
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(command, stdout=log, stderr=log)
        try:
            wait_for_port(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(10)


def wait_for_port(port: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto_server did not listen on 127.0.0.1:{port}")


def isolate_aws_environment() -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        del os.environ[name]
    os.environ |= {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {shutil.which('moto_server')}"


def main() -> int:
    isolate_aws_environment()
    print(f"machine: {machine()}")
    with moto_server() as endpoint:
        met = sqs_source.report(asyncio.run(sqs_source.compare(endpoint)))
        print()
        met &= gateway.run(endpoint)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
