"""Running the collection for real: an installed tarball, ansible-rulebook, a demo target."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import yaml

from demo.harness import DemoTarget as DemoTarget
from demo.harness import build_and_install_collection as build_and_install_collection
from demo.harness import tool as tool
from demo.harness import tool_env
from tests.support.aws import ACCESS_KEY, REGION, SECRET_KEY, wait_until

# Long enough for a JVM start, short enough that a hung run fails the test quickly.
EXIT_TIMEOUT = 30.0


def handled_timeout(runs: int) -> float:
    """How long to wait for `runs` playbook runs, ansible-rulebook's start included. A run
    takes about 2 s on idle cores; 10-20 s was seen on 2 cores busy with other tests. Only a
    failing test waits this long."""
    return 120 + 20.0 * runs


_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


def subprocess_env(collections_path: Path) -> dict[str, str]:
    """The venv's tools first on PATH: ansible-rulebook finds collections with ansible-galaxy.

    AWS_* settings come from the test's environment, which isolated_aws_env has emptied of
    the developer's (config files included) and pointed at moto's fake credentials.
    """
    env = {k: v for k, v in tool_env().items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        ANSIBLE_NOCOLOR="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Rulebook:
    """One ansible-rulebook process, its output in a log file; always stopped by the test."""

    rulebook: str
    workdir: Path
    inventory: Path
    variables: dict[str, Any]
    env: dict[str, str]
    persistence_id: str | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def _next_log_path(self) -> Path:
        """ansible-rulebook-N.log, N counting every start in this work folder."""
        started_before = len(list(self.workdir.glob("ansible-rulebook-*.log")))
        return self.workdir / f"ansible-rulebook-{started_before + 1}.log"

    def start(self) -> Rulebook:
        assert self.process is None, "already running"
        vars_file = self.workdir / "vars.yml"
        vars_file.write_text(yaml.safe_dump(self.variables))
        command = [
            tool("ansible-rulebook"),
            "--rulebook",
            self.rulebook,
            "-i",
            str(self.inventory),
            "--vars",
            str(vars_file),
            # INFO: the source's own account of what it received, deleted and released.
            "-v",
        ]
        if self.persistence_id:
            command += ["--persistence-id", self.persistence_id]
        self._log = self._next_log_path().open("wb")
        # Its own process group: kill() takes its ansible-playbook children with it, as a
        # crash of the machine would.
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Send `sig` to ansible-rulebook, wait for its exit; returns the exit code."""
        if self.process is None:
            return 0
        process = self.process
        try:
            if process.poll() is None:
                process.send_signal(sig)
            return process.wait(EXIT_TIMEOUT)
        finally:
            self.kill()

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None, "not running"
        self.process.send_signal(sig)

    def exit_code(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds for the exit; None if it is still running."""
        assert self.process is not None, "not running"
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int:
        """SIGKILL to the whole process group; safe to call when already stopped."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait(EXIT_TIMEOUT)
        if self._log is not None:
            self._log.close()
        return code

    def assert_running(self) -> bool:
        """For wait_until conditions: fail at once, with the log, if the process died."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"ansible-rulebook exited early:\n{self.log_tail()}")
        return True

    def log_tail(self, lines: int = 60) -> str:
        text = "\n".join(
            path.read_text(errors="replace")
            for path in sorted(
                self.workdir.glob("ansible-rulebook-*.log"),
                key=lambda p: int(p.stem.rpartition("-")[2]),
            )
        )
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, condition: Any, timeout: float, what: str) -> Any:
        """wait_until that also fails fast when ansible-rulebook dies, and shows its log."""
        try:
            return wait_until(lambda: self.assert_running() and condition(), timeout, 0.2, what)
        except AssertionError as failure:
            log = self.log_tail()
            raise AssertionError(f"{failure}\n--- ansible-rulebook log ---\n{log}") from None


class NotifyReceiver:
    """A loopback HTTP endpoint that records the JSON the playbooks POST to notify_url."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                """Silent: the test reads the posts, not an access log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/notify"

    def __enter__(self) -> NotifyReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Silent: a client SIGKILLed in the middle of a call is what these tests do."""


@dataclass(frozen=True)
class SQSCall:
    """One SQS call through a RecordingProxy. Times are time.time(), the clock the engine
    stamps `meta.received_at` with; `client` is the access key id that signed the call."""

    client: str
    action: str
    sent: float
    answered: float
    request: dict[str, Any]
    reply: dict[str, Any]


@dataclass(frozen=True)
class Delivery:
    """A message in a ReceiveMessage answer: who received it, when, with which handle."""

    client: str
    answered: float
    message_id: str
    receipt_handle: str
    body: str
    group: str


class RecordingProxy:
    """A loopback proxy in front of moto that records every SQS call and lets one through
    at a time.

    moto 5.2 is not safe under concurrent requests on one queue (two receives at once can
    return the same message, two deletes can undo each other: see runtime-contract); real
    SQS is. Serialising the calls keeps what a test counts the source's doing, not moto's.
    A long poll holds the line for its wait, so keep `wait_time_seconds` short. Tests tell
    activations apart by giving each its own access key id (moto accepts any).
    """

    def __init__(self, upstream: str) -> None:
        self.calls: list[SQSCall] = []
        self._upstream = urlsplit(upstream)
        self._serial = threading.Lock()
        self._record = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, payload = proxy._forward(self, body)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                """Silent: the test reads the calls, not an access log."""

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _forward(
        self, request: BaseHTTPRequestHandler, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        with self._serial:
            sent = time.time()
            upstream = http.client.HTTPConnection(
                self._upstream.hostname or "127.0.0.1", self._upstream.port, timeout=60
            )
            try:
                upstream.request("POST", request.path, body=body, headers=headers)
                reply = upstream.getresponse()
                payload = reply.read()
                reply_headers = [
                    (k, v) for k, v in reply.getheaders() if k.lower() not in _HOP_BY_HOP
                ]
            except OSError as exc:  # moto going away at the end of the session
                return 502, [], f"upstream failed: {exc}".encode()
            finally:
                upstream.close()
            answered = time.time()
        self._keep(request, body, payload, sent, answered)
        return reply.status, reply_headers, payload

    def _keep(
        self,
        request: BaseHTTPRequestHandler,
        body: bytes,
        payload: bytes,
        sent: float,
        answered: float,
    ) -> None:
        target = request.headers.get("X-Amz-Target", "")
        key = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        call = SQSCall(
            client=key.group(1) if key else "",
            action=target.rpartition(".")[2],
            sent=sent,
            answered=answered,
            request=_json_or_empty(body),
            reply=_json_or_empty(payload),
        )
        with self._record:
            self.calls.append(call)

    def recorded(self, action: str, client: str | None = None) -> list[SQSCall]:
        with self._record:
            return [
                c
                for c in self.calls
                if c.action == action and (client is None or c.client == client)
            ]

    def deliveries(self, client: str | None = None) -> list[Delivery]:
        """Every message handed out by ReceiveMessage, in the order the answers left moto."""
        return [
            Delivery(
                client=call.client,
                answered=call.answered,
                message_id=m["MessageId"],
                receipt_handle=m["ReceiptHandle"],
                body=m.get("Body", ""),
                group=m.get("Attributes", {}).get("MessageGroupId", ""),
            )
            for call in self.recorded("ReceiveMessage", client)
            for m in call.reply.get("Messages", [])
        ]

    def deletions(self, client: str | None = None) -> list[tuple[float, str, str]]:
        """(time the request was sent, client, message id) of every successful delete."""
        message_of = {d.receipt_handle: d.message_id for d in self.deliveries()}
        deleted = []
        for call in self.recorded("DeleteMessageBatch", client):
            handles = {e["Id"]: e["ReceiptHandle"] for e in call.request.get("Entries", [])}
            for entry in call.reply.get("Successful", []):
                deleted.append((call.sent, call.client, message_of[handles[entry["Id"]]]))
        for call in self.recorded("DeleteMessage", client):
            if not call.reply.get("__type"):
                handle = call.request["ReceiptHandle"]
                deleted.append((call.sent, call.client, message_of[handle]))
        return deleted

    def held(self, client: str) -> set[str]:
        """Messages `client` received and has not deleted: what it holds, or held when it died."""
        received = {d.message_id for d in self.deliveries(client)}
        return received - {message_id for _, _, message_id in self.deletions(client)}


def _json_or_empty(payload: bytes) -> dict[str, Any]:
    """SQS's JSON protocol, what botocore speaks to SQS; anything else is not recorded."""
    try:
        value = json.loads(payload or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
