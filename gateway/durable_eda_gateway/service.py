"""The gateway as a local HTTP service, for sites without Lambda.

    python -m durable_eda_gateway.service [--host 127.0.0.1] [--port 8080] [--rules FILE]

Configuration comes from the same GATEWAY_* environment variables as the Lambda
function. It listens on loopback unless told otherwise; put TLS in front of it (a reverse
proxy) before exposing it. GET /healthz answers 200 for readiness checks.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

from durable_eda_gateway.config import ConfigError, GatewayConfig, load_config
from durable_eda_gateway.core import (
    Gateway,
    HttpRequest,
    HttpResponse,
    RejectError,
    normalise_headers,
)

logger = logging.getLogger(__name__)


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], gateway: Gateway, request_timeout: float = 30.0
    ) -> None:
        super().__init__(address, GatewayRequestHandler)
        self.gateway = gateway
        # A client that stops sending mid-request (or idles on keep-alive) frees its thread.
        self.request_timeout = request_timeout

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class GatewayRequestHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    # Keep-alive: webhook senders and load balancers reuse connections.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "durable-eda-gateway"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/healthz":
            self._send(HttpResponse(200, {"status": "ok"}))
        else:
            self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch(with_body=False)

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def _dispatch(self, with_body: bool = True) -> None:
        request_id = uuid.uuid4().hex
        try:
            response = self._respond(request_id)
        except OSError:
            # The client timed out or went away while sending: there is no one to answer.
            self.close_connection = True
            return
        except Exception:
            # Unexpected: log the failure (never the request's content) and answer 500.
            logger.exception("request %s failed", request_id)
            self.close_connection = True
            failure = RejectError(500, "internal_error", "the gateway failed unexpectedly")
            response = failure.response(request_id)
        self._send(response, with_body)

    def _respond(self, request_id: str) -> HttpResponse:
        gateway = self.server.gateway
        if self.command != "POST":
            self.close_connection = True  # any body it sent is left unread
            return gateway.handle(HttpRequest(self.command, {}, b"", request_id))
        try:
            body = self._read_body(gateway.config.max_message_bytes)
        except RejectError as reject:
            self.close_connection = True  # the unread body would be taken for the next request
            return reject.response(request_id)
        headers = normalise_headers(self.headers.items())
        return gateway.handle(HttpRequest(self.command, headers, body, request_id))

    def _read_body(self, limit: int) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            raise RejectError(411, "length_required", "send the body with a Content-Length")
        raw = self.headers.get("content-length")
        if raw is None:
            raise RejectError(411, "length_required", "send the body with a Content-Length")
        if not raw.strip().isdigit() or not raw.strip().isascii():
            raise RejectError(400, "invalid_content_length", "Content-Length is not a number")
        length = int(raw)
        if length > limit:
            raise RejectError(
                413, "payload_too_large", f"the body exceeds the queue's limit of {limit} bytes"
            )
        body = self.rfile.read(length)
        if len(body) < length:
            # Half a body must not be forwarded, even if it happens to parse as JSON.
            raise ConnectionError("the client closed before sending its whole body")
        return body

    def _send(self, response: HttpResponse, with_body: bool = True) -> None:
        body = response.body()
        self.send_response(response.status)
        for name, value in response.all_headers().items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        if self.close_connection:
            self.send_header("connection", "close")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # The base class writes every request line to stderr; the path may carry a token.
        logger.debug("%s %s", self.command, self.path.split("?")[0])


def start(
    config: GatewayConfig, host: str = "127.0.0.1", port: int = 0, request_timeout: float = 30.0
) -> GatewayServer:
    """A running server (in a background thread); call .shutdown() and .server_close()."""
    server = GatewayServer((host, port), Gateway.from_config(config), request_timeout)
    # A short poll interval: shutdown() waits up to one interval for the loop to notice.
    serve = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="gateway", daemon=True
    )
    serve.start()
    return server


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
    server = GatewayServer((arguments.host, arguments.port), Gateway.from_config(config))
    signal.signal(signal.SIGTERM, _stop_on_signal(server))
    print(f"durable.eda gateway listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _stop_on_signal(server: GatewayServer) -> Callable[[int, FrameType | None], None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, so it cannot run on that thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    return stop


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
