"""The gateway as a local HTTP service, for sites without Lambda.

    python -m durable_eda_gateway.service [--host 127.0.0.1] [--port 8080] [--rules FILE]

Configuration comes from the same GATEWAY_* environment variables as the Lambda
function. It listens on loopback unless told otherwise; put TLS in front of it (a reverse
proxy) before exposing it. GET /healthz answers 200 for readiness checks.

HTTP is aiohttp's low-level server: its llhttp parser refuses ambiguous framing, and on
asyncio a slow or idle client costs a socket, not a thread. Only the core's blocking boto3
calls run in a thread pool. Every answer, a refused request line included, is the
gateway's JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpVersion, HttpVersion10, HttpVersion11, RawRequestMessage
from aiohttp.http_exceptions import BadStatusLine, HttpProcessingError, LineTooLong
from aiohttp.streams import StreamReader

from durable_eda_gateway.config import ConfigError, GatewayConfig, load_config
from durable_eda_gateway.core import (
    Gateway,
    HttpRequest,
    HttpResponse,
    RejectError,
    normalise_headers,
    too_large,
)

logger = logging.getLogger(__name__)

# Requests waiting for SQS run here; also the size of each boto3 client's connection pool.
WORKERS = 32
# Connections the kernel queues before the server accepts them: a burst of webhooks must
# not meet a reset (the kernel caps it at net.core.somaxconn).
BACKLOG = 1024
# http.server's limit; a request with more headers is answered 431.
MAX_HEADERS = 100
MAX_LINE_BYTES = 8190
SERVER_HEADER = "durable-eda-gateway"


@dataclass(frozen=True)
class _ParserRefusal:
    """How a request the HTTP parser refused is answered: matched on the parser's message."""

    fragment: str
    status: int
    code: str
    message: str


# The parser says why in words only; the first matching fragment decides. Order matters:
# "Content-Length can't be present with Transfer-Encoding" mentions both headers.
_PARSER_REFUSALS = (
    _ParserRefusal(
        "be present with",
        400,
        "conflicting_framing",
        "send either Content-Length or Transfer-Encoding, not both",
    ),
    _ParserRefusal(
        "Duplicate Content-Length",
        400,
        "conflicting_content_length",
        "send exactly one Content-Length header",
    ),
    _ParserRefusal(
        "Content-Length", 400, "invalid_content_length", "Content-Length is not a number"
    ),
    _ParserRefusal(
        "Transfer-Encoding",
        400,
        "invalid_transfer_encoding",
        "Transfer-Encoding is repeated or names an unsupported coding",
    ),
    _ParserRefusal(
        "Too many headers",
        431,
        "too_many_headers",
        f"the request has more than {MAX_HEADERS} headers",
    ),
)


def parser_refusal(exc: BaseException | None) -> RejectError:
    """The JSON answer to a request aiohttp's parser refused, by what it refused."""
    if isinstance(exc, LineTooLong):
        return RejectError(
            431,
            "header_too_large",
            f"the request line or a header is longer than {MAX_LINE_BYTES} bytes",
        )
    if isinstance(exc, BadStatusLine):  # BadHttpMethod included
        return RejectError(
            400,
            "malformed_request_line",
            "the request line is not METHOD /path HTTP/1.1 with a method HTTP defines",
        )
    said = exc.message if isinstance(exc, HttpProcessingError) else ""
    for refusal in _PARSER_REFUSALS:
        if refusal.fragment in said:
            return RejectError(refusal.status, refusal.code, refusal.message)
    return RejectError(400, "malformed_request", "the request is not well-formed HTTP/1.1")


def to_web_response(response: HttpResponse, close: bool = False) -> web.Response:
    headers = {**response.all_headers(), "server": SERVER_HEADER}
    answer = web.Response(status=response.status, body=response.body(), headers=headers)
    if close:
        answer.force_close()
    return answer


class _GatewayProtocol(web.RequestHandler):
    """aiohttp's connection handler, answering what its parser refuses in the gateway's JSON."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of an answer is out already: the connection can only be dropped.
            raise ConnectionError("an answer was already under way")
        request_id = uuid.uuid4().hex
        if status == 400:
            reject = parser_refusal(exc)
            # One line and no traceback: any client can send garbage, as often as it likes.
            logger.info("request %s refused by the HTTP parser: %s", request_id, reject.code)
        else:
            logger.error("request %s failed in the HTTP layer (status %s)", request_id, status)
            reject = RejectError(500, "internal_error", "the gateway failed unexpectedly")
        return to_web_response(reject.response(request_id), close=True)


class _Request(web.BaseRequest):
    """A request that remembers the HTTP version it came in; it is answered in HTTP/1.1."""

    ATTRS = web.BaseRequest.ATTRS | frozenset(["spoken_version"])
    spoken_version: HttpVersion = HttpVersion11


class _LowLevelServer(web.Server):
    """aiohttp's low-level server, building _GatewayProtocol connections and _Requests."""

    def __init__(
        self, handler: Any, loop: asyncio.AbstractEventLoop, **protocol_options: Any
    ) -> None:
        super().__init__(handler, loop=loop, request_factory=self._request, **protocol_options)
        self._event_loop = loop
        self._protocol_options = protocol_options

    def __call__(self) -> web.RequestHandler:
        return _GatewayProtocol(self, loop=self._event_loop, **self._protocol_options)

    def _request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: web.RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        spoken = message.version
        if spoken not in (HttpVersion10, HttpVersion11):
            # The answer's status line repeats the request's version: one the client can read.
            message = message._replace(version=HttpVersion11, should_close=True)
        request = _Request(message, payload, protocol, writer, task, self._event_loop)
        request.spoken_version = spoken
        return request


class _Handler:
    """One HTTP request in, the core's answer out; the core's blocking calls off the loop."""

    def __init__(self, gateway: Gateway, executor: ThreadPoolExecutor, timeout: float) -> None:
        self._gateway = gateway
        self._executor = executor
        self._timeout = timeout

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        request_id = uuid.uuid4().hex
        try:
            answer = await self._answer(request, request_id)
        except RejectError as reject:
            answer = reject.response(request_id)
        except Exception:
            # Unexpected: log the failure (never the request's content) and answer 500.
            logger.exception("request %s failed", request_id)
            answer = RejectError(500, "internal_error", "the gateway failed unexpectedly").response(
                request_id
            )
        # A body left unread would be taken for the next request: close instead.
        return to_web_response(answer, close=not request.content.is_eof())

    async def _answer(self, request: web.BaseRequest, request_id: str) -> HttpResponse:
        spoken = request.spoken_version if isinstance(request, _Request) else request.version
        if spoken not in (HttpVersion10, HttpVersion11):
            raise RejectError(505, "http_version_not_supported", "speak HTTP/1.1 or HTTP/1.0")
        if request.method == "GET" and request.path == "/healthz":
            return HttpResponse(200, {"status": "ok"})
        if request.method != "POST":
            return self._gateway.handle(HttpRequest(request.method, {}, b"", request_id))
        body = await self._read_body(request)
        incoming = HttpRequest(
            request.method, normalise_headers(request.headers.items()), body, request_id
        )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._gateway.handle, incoming)

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        length = request.content_length
        if length is None:
            # The parser has already refused chunked bodies that also carry a length.
            raise RejectError(411, "length_required", "send the body with a Content-Length")
        config = self._gateway.config
        if length > config.max_body_bytes:
            raise RejectError(413, "payload_too_large", too_large(config))
        if request.headers.get("expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            async with asyncio.timeout(self._timeout):
                return await request.content.readexactly(length)
        except TimeoutError:
            raise RejectError(
                408, "request_timeout", f"the body did not arrive within {self._timeout:g} s"
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError, HttpProcessingError):
            # Half a body must not be forwarded, even if it happens to parse as JSON.
            raise RejectError(
                400, "incomplete_body", "the connection ended before the whole body arrived"
            ) from None


class HttpService:
    """The gateway behind aiohttp's HTTP server, on the running event loop."""

    def __init__(self, gateway: Gateway, request_timeout: float = 30.0) -> None:
        self._gateway = gateway
        # One deadline for a client: to send its headers, its body, or its next request.
        self._request_timeout = request_timeout
        self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="gateway")
        self._runner: web.ServerRunner | None = None
        self.server_address: tuple[str, int] = ("", 0)

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}"

    async def open(self, host: str, port: int) -> None:
        server = _LowLevelServer(
            _Handler(self._gateway, self._executor, self._request_timeout),
            asyncio.get_running_loop(),
            keepalive_timeout=self._request_timeout,
            lingering_time=min(self._request_timeout, 5.0),
            max_headers=MAX_HEADERS,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_LINE_BYTES,
            access_log=None,
        )
        # Stopping waits this long for requests in flight (SQS included) to be answered.
        self._runner = web.ServerRunner(server, shutdown_timeout=self._request_timeout)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, backlog=BACKLOG, reuse_address=True)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.server_address = (str(bound_host), int(bound_port))

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self._executor.shutdown(wait=True)


class GatewayServer:
    """An HttpService on an event loop in a thread of its own (tests, benchmarks)."""

    def __init__(self, service: HttpService) -> None:
        self._service = service
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway-loop")

    @property
    def url(self) -> str:
        return self._service.url

    @property
    def server_address(self) -> tuple[str, int]:
        return self._service.server_address

    def start(self, host: str, port: int) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._service.open(host, port), self._loop).result(30)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._service.close(), self._loop).result(120)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._loop.close()


def start(
    config: GatewayConfig, host: str = "127.0.0.1", port: int = 0, request_timeout: float = 30.0
) -> GatewayServer:
    """A running service (on a thread of its own); call .stop() when done."""
    gateway = Gateway.from_config(config, pool_size=WORKERS)
    server = GatewayServer(HttpService(gateway, request_timeout))
    server.start(host, port)
    return server


async def serve(server: HttpService, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight and return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.open(host, port)
    try:
        print(f"durable.eda gateway listening on {server.url}", flush=True)
        await stop.wait()
    finally:
        await server.close()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # Only our own logger follows --log-level: botocore at DEBUG would log request headers.
    logging.getLogger("durable_eda_gateway").setLevel(arguments.log_level.upper())
    env = dict(os.environ)
    if arguments.rules:
        env["GATEWAY_FILTER_RULES_FILE"] = arguments.rules
    try:
        config = load_config(env)
    except ConfigError as error:
        print(f"durable-eda-gateway: {error}", file=sys.stderr)
        return 2
    server = HttpService(Gateway.from_config(config, pool_size=WORKERS))
    asyncio.run(serve(server, arguments.host, arguments.port))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m durable_eda_gateway.service",
        description="durable.eda webhook gateway: authenticate, filter and forward to SQS",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument("--rules", help="filter rules file (JSON); overrides GATEWAY_FILTER_RULES*")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
