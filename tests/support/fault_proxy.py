"""A fault-injecting HTTP proxy on loopback, put between an AWS client and moto's server.

It forwards every request unchanged, records which SQS action each one was and which
credentials signed it, and, on demand, answers the next requests for an action with a
fault instead: a connection reset before or after forwarding (a lost request, a lost
response), a 5xx, a throttling error, an AWS error of any code, a batch answer whose
every entry failed, or extra latency for every request. Answers can also be rewritten.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

_CREDENTIAL = re.compile(r"Credential=([^/]+)/")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Fault:
    """One canned failure. `status` 0 means: reset the connection without answering, after
    forwarding the request upstream when `forward` is set. `failed_entries` answers a batch
    call with HTTP 200 and every entry in `Failed`, with that `SenderFault` value."""

    status: int
    code: str = ""
    message: str = "injected by the fault proxy"
    forward: bool = False
    failed_entries: bool | None = None

    def body(self) -> bytes:
        return json.dumps(
            {"__type": f"com.amazonaws.sqs#{self.code}", "message": self.message}
        ).encode()


RESET = Fault(status=0)
LOST_RESPONSE = Fault(status=0, forward=True)
SERVER_ERROR = Fault(status=500, code="InternalError")
UNAVAILABLE = Fault(status=503, code="ServiceUnavailable")
THROTTLED = Fault(status=400, code="ThrottlingException", message="Rate exceeded")


def aws_error(code: str, status: int = 400, message: str = "injected") -> Fault:
    return Fault(status=status, code=code, message=message)


def failed_entries(sender_fault: bool, code: str = "InternalError") -> Fault:
    return Fault(status=200, code=code, failed_entries=sender_fault)


@dataclass(frozen=True)
class RecordedRequest:
    action: str
    access_key_id: str
    security_token: str
    body: bytes


@dataclass
class _Plan:
    action: str | None
    fault: Fault
    remaining: int


@dataclass
class _Rewrite:
    action: str
    transform: Callable[[bytes], bytes]


@dataclass
class FaultProxy:
    upstream: str
    latency: float = 0.0
    requests: list[RecordedRequest] = field(default_factory=list)
    _plans: list[_Plan] = field(default_factory=list)
    _rewrites: list[_Rewrite] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    url: str = ""

    def inject(self, fault: Fault, action: str | None = None, times: int = 1) -> None:
        """Answer the next `times` requests for `action` (any action if None) with `fault`."""
        with self._lock:
            self._plans.append(_Plan(action, fault, times))

    def rewrite_replies(self, action: str, transform: Callable[[bytes], bytes]) -> None:
        """Pass every upstream answer to `action` through `transform` from now on."""
        with self._lock:
            self._rewrites.append(_Rewrite(action, transform))

    def bodies(self, action: str) -> list[bytes]:
        with self._lock:
            return [r.body for r in self.requests if r.action == action]

    def count(self, action: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if action is None or r.action == action)

    def actions(self) -> Counter[str]:
        with self._lock:
            return Counter(r.action for r in self.requests)

    def pending_faults(self) -> int:
        with self._lock:
            return sum(p.remaining for p in self._plans)

    def start(self) -> str:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self.url

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._start_site())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._session.close())
        loop.close()

    async def _start_site(self) -> None:
        # moto's server drops idle keep-alive connections; a fresh one per request keeps that
        # from surfacing as a fault nobody injected.
        self._session = ClientSession(
            timeout=ClientTimeout(total=120),
            auto_decompress=False,
            connector=TCPConnector(force_close=True),
        )
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    def _take_fault(self, action: str) -> Fault | None:
        with self._lock:
            for plan in self._plans:
                if plan.remaining > 0 and plan.action in (None, action):
                    plan.remaining -= 1
                    return plan.fault
        return None

    def _record(self, request: web.Request, body: bytes) -> str:
        action = _action_of(request, body)
        key = _CREDENTIAL.search(request.headers.get("Authorization", ""))
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    action=action,
                    access_key_id=key.group(1) if key else "",
                    security_token=request.headers.get("X-Amz-Security-Token", ""),
                    body=body,
                )
            )
        return action

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        action = self._record(request, body)
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._take_fault(action)
        if fault is not None and not fault.forward:
            return _answer_with(fault, request, body)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            async with self._session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body
            ) as upstream:
                payload = self._rewritten(action, await upstream.read())
                reply_headers = {
                    k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP
                }
        except ClientError as exc:  # moto going away under a long poll, at the end of a run
            return web.Response(status=502, text=f"upstream failed: {exc}")
        if fault is not None:
            return _answer_with(fault, request, body)
        return web.Response(status=upstream.status, body=payload, headers=reply_headers)

    def _rewritten(self, action: str, payload: bytes) -> bytes:
        with self._lock:
            transforms = [r.transform for r in self._rewrites if r.action == action]
        for transform in transforms:
            payload = transform(payload)
        return payload


def _answer_with(fault: Fault, request: web.Request, body: bytes) -> web.StreamResponse:
    if fault.status == 0:
        _reset(request)
        raise asyncio.CancelledError
    if fault.failed_entries is not None:
        return _all_entries_failed(fault, body)
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-query-error": f"{fault.code};Sender",
    }
    return web.Response(status=fault.status, body=fault.body(), headers=headers)


def _all_entries_failed(fault: Fault, body: bytes) -> web.StreamResponse:
    entries = json.loads(body).get("Entries", [])
    failed = [
        {
            "Id": entry["Id"],
            "SenderFault": fault.failed_entries,
            "Code": fault.code,
            "Message": fault.message,
        }
        for entry in entries
    ]
    answer = json.dumps({"Successful": [], "Failed": failed}).encode()
    return web.Response(body=answer, headers={"Content-Type": "application/x-amz-json-1.0"})


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock: socket.socket | None = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0 turns the close into a TCP RST, what a dropped connection looks like.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _action_of(request: web.Request, body: bytes) -> str:
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target.rpartition(".")[2]
    form = parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action", [""])[0]
