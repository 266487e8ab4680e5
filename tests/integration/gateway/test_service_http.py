"""The local service over real HTTP on loopback, in front of moto's SQS."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from durable_eda_gateway.service import GatewayServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.aws import TestQueue, wait_until
from tests.support.fault_proxy import THROTTLED, UNAVAILABLE, FaultProxy
from tests.unit.gateway.support import API_KEY, SECRETS, config_for, gateway_env, serving

GOOD_HEADERS = {"content-type": "application/json", "x-api-key": API_KEY}


@pytest.fixture
def server(queue: TestQueue, moto_endpoint: str) -> Iterator[GatewayServer]:
    with serving(config_for(queue.url, moto_endpoint)) as running:
        yield running


@pytest.fixture
def proxied_server(queue: TestQueue, proxy: FaultProxy) -> Iterator[GatewayServer]:
    with serving(config_for(queue.url, proxy.url)) as running:
        yield running


def connect(server: GatewayServer) -> http.client.HTTPConnection:
    parts = urlsplit(server.url)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)


def call(
    server: GatewayServer,
    method: str = "POST",
    body: bytes = b'{"status": "failed"}',
    headers: dict[str, str] | None = None,
    path: str = "/webhook",
) -> tuple[int, dict[str, str], Any]:
    connection = connect(server)
    try:
        connection.request(
            method, path, body=body, headers=GOOD_HEADERS if headers is None else headers
        )
        reply = connection.getresponse()
        raw = reply.read()
        return (
            reply.status,
            {k.lower(): v for k, v in reply.getheaders()},
            json.loads(raw) if raw else None,
        )
    finally:
        connection.close()


def test_a_webhook_is_forwarded_and_answered_after_sqs_confirms(
    server: GatewayServer, queue: TestQueue
) -> None:
    status, headers, answer = call(server)
    assert status == 202
    assert answer["forwarded"] is True
    assert headers["x-request-id"] == answer["request_id"]
    [message] = queue.drain()
    assert answer["message_id"] == message["MessageId"]
    assert json.loads(message["Body"])["payload"] == {"status": "failed"}


def test_one_connection_carries_several_requests(server: GatewayServer, queue: TestQueue) -> None:
    connection = connect(server)
    try:
        for n in range(3):
            connection.request("POST", "/", body=json.dumps({"n": n}), headers=GOOD_HEADERS)
            reply = connection.getresponse()
            reply.read()
            assert reply.status == 202
    finally:
        connection.close()
    assert sorted(json.loads(m["Body"])["payload"]["n"] for m in queue.drain()) == [0, 1, 2]


def test_health_check(server: GatewayServer) -> None:
    assert call(server, "GET", b"", {}, path="/healthz")[:1] == (200,)


@pytest.mark.parametrize(
    ("method", "body", "headers", "status", "code"),
    [
        ("GET", b"", {}, 405, "method_not_allowed"),
        ("PUT", b"{}", GOOD_HEADERS, 405, "method_not_allowed"),
        ("DELETE", b"", GOOD_HEADERS, 405, "method_not_allowed"),
        ("POST", b"{}", {"content-type": "application/json"}, 401, "missing_credentials"),
        ("POST", b"{}", {**GOOD_HEADERS, "x-api-key": "guess"}, 401, "invalid_credentials"),
        (
            "POST",
            b"a=b",
            {**GOOD_HEADERS, "content-type": "application/x-www-form-urlencoded"},
            400,
            "unsupported_content_type",
        ),
        ("POST", b"{oops", GOOD_HEADERS, 400, "invalid_json"),
        ("POST", b"[]", GOOD_HEADERS, 400, "not_a_json_object"),
    ],
)
def test_every_client_error_has_its_status_and_code(
    server: GatewayServer,
    queue: TestQueue,
    method: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    got_status, got_headers, answer = call(server, method, body, headers)
    assert (got_status, answer["error"]["code"]) == (status, code)
    assert got_headers["content-type"] == "application/json"
    if status == 405:
        assert got_headers["allow"] == "POST"
    assert queue.counts() == (0, 0)


def test_head_is_refused_without_a_body(server: GatewayServer) -> None:
    connection = connect(server)
    try:
        connection.request("HEAD", "/")
        reply = connection.getresponse()
        assert (reply.status, reply.read()) == (405, b"")
    finally:
        connection.close()


def raw_exchange(
    server: GatewayServer, raw: bytes, expect_close: bool = True
) -> tuple[int, dict[str, str], Any, bool]:
    """Send hand-written bytes; (status, headers, JSON answer, whether the server then closed).

    With `expect_close` false, the connection counts as open if it says keep-alive and a
    second request on it is answered.
    """
    connection = connect(server)
    try:
        connection.connect()
        assert connection.sock is not None
        connection.sock.sendall(raw)
        reply = http.client.HTTPResponse(connection.sock, method="POST")
        reply.begin()
        answer = json.loads(reply.read())
        headers = {k.lower(): v for k, v in reply.getheaders()}
        if expect_close:
            return reply.status, headers, answer, connection.sock.recv(1024) == b""
        connection.sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        second = http.client.HTTPResponse(connection.sock, method="GET")
        second.begin()
        return reply.status, headers, answer, second.status != 200
    finally:
        connection.close()


def refused_quietly(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> bool:
    """No traceback logged or printed: a client must not be able to fill the log with them."""
    printed = capfd.readouterr().err
    logged = any(record.exc_info for record in caplog.records) or "Traceback" in caplog.text
    return not logged and "Traceback" not in printed


SIGNED = b"Host: x\r\nContent-Type: application/json\r\n" + f"X-Api-Key: {API_KEY}\r\n".encode()
SMALL = b'{"status": "failed", "n": 1}'
HIDDEN = b"POST / HTTP/1.1\r\n" + SIGNED + b"Content-Length: %d\r\n\r\n%s" % (len(SMALL), SMALL)


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        pytest.param(b"HELLO\r\n\r\n", 400, "malformed_request_line", id="not-http"),
        pytest.param(
            b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "malformed_request_line",
            id="unknown-method",
        ),
        pytest.param(
            b"POST / HTTP/9.9\r\nHost: x\r\n\r\n", 400, "malformed_request_line", id="http-9.9"
        ),
        pytest.param(
            b"POST / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported", id="http-2.0"
        ),
        pytest.param(b"POST /\r\n\r\n", 505, "http_version_not_supported", id="http-0.9"),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-Header-%d: v\r\n" % n for n in range(101))
            + b"\r\n",
            431,
            "too_many_headers",
            id="101-headers",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
            431,
            "header_too_large",
            id="70kB-header",
        ),
        pytest.param(
            b"POST /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            431,
            "header_too_large",
            id="70kB-path",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\n"
            + SIGNED
            + b"Content-Length: 49\r\nContent-Length: 98\r\n\r\n"
            + HIDDEN.ljust(98, b" "),
            400,
            "conflicting_content_length",
            id="two-content-lengths",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\n"
            + SIGNED
            + b"Transfer-Encoding: chunked\r\n"
            + b"Content-Length: %d\r\n\r\n0\r\n\r\n%s" % (len(HIDDEN) + 5, HIDDEN),
            400,
            "conflicting_framing",
            id="chunked-and-length",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\n"
            + SIGNED
            + b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"
            + b"Content-Length: %d\r\n\r\n0\r\n\r\n%s" % (len(HIDDEN) + 5, HIDDEN),
            400,
            "invalid_transfer_encoding",
            id="identity-then-chunked-and-length",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\n" + SIGNED + b"Transfer-Encoding: gzip\r\n\r\n",
            400,
            "invalid_transfer_encoding",
            id="unknown-coding",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\n" + SIGNED + b"Content-Length: 2, 2\r\n\r\n{}",
            400,
            "invalid_content_length",
            id="length-list",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            400,
            "malformed_request",
            id="no-host",
        ),
        pytest.param(
            b"POST / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n folded\r\n\r\n",
            400,
            "malformed_request",
            id="folded-header",
        ),
    ],
)
def test_a_request_the_parser_refuses_gets_json_and_queues_nothing(
    server: GatewayServer,
    queue: TestQueue,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    raw: bytes,
    status: int,
    code: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    got_status, headers, answer, closed = raw_exchange(server, raw)
    assert (got_status, answer["error"]["code"]) == (status, code)
    assert headers["content-type"] == "application/json"
    assert answer["error"]["message"]
    assert closed
    assert queue.counts() == (0, 0)
    assert refused_quietly(caplog, capfd)


def test_a_client_that_hangs_up_mid_headers_leaves_no_traceback(
    server: GatewayServer,
    queue: TestQueue,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        with socket.create_connection(server.server_address, timeout=30) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty")
    assert call(server)[0] == 202
    assert len(queue.drain()) == 1
    assert refused_quietly(caplog, capfd)


def test_a_client_that_expects_100_continue_is_told_to_send_its_body(
    server: GatewayServer, queue: TestQueue
) -> None:
    body = b'{"status": "failed"}'
    with socket.create_connection(server.server_address, timeout=30) as sock:
        head = b"POST / HTTP/1.1\r\n" + SIGNED + b"Content-Length: %d\r\n" % len(body)
        sock.sendall(head + b"Expect: 100-continue\r\n\r\n")
        with sock.makefile("rb") as reply:
            assert reply.readline() == b"HTTP/1.1 100 Continue\r\n"
            assert reply.readline() == b"\r\n"
            sock.sendall(body)
            assert reply.readline().startswith(b"HTTP/1.1 202 ")
    assert len(queue.drain()) == 1


def test_an_oversized_body_expecting_100_continue_is_refused_unsent(server: GatewayServer) -> None:
    head = b"POST / HTTP/1.1\r\n" + SIGNED + b"Content-Length: 50000000\r\n"
    with socket.create_connection(server.server_address, timeout=30) as sock:
        sock.sendall(head + b"Expect: 100-continue\r\n\r\n")
        with sock.makefile("rb") as reply:
            assert reply.readline().startswith(b"HTTP/1.1 413 ")


def test_an_oversized_body_is_refused_before_it_is_read(server: GatewayServer) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"X-Api-Key: {API_KEY}\r\nContent-Length: 50000000\r\n\r\n".encode()
    )
    status, _, answer, closed = raw_exchange(server, head)
    assert (status, answer["error"]["code"], closed) == (413, "payload_too_large", True)


@pytest.mark.parametrize(
    ("framing", "status", "code", "closes"),
    [
        # A chunked body is left unread, so the connection cannot carry another request.
        (b"Transfer-Encoding: chunked\r\n", 411, "length_required", True),
        # Without either header HTTP/1.1 says there is no body: the connection stays usable.
        (b"", 411, "length_required", False),
        (b"Content-Length: -5\r\n", 400, "invalid_content_length", True),
        (b"Content-Length: many\r\n", 400, "invalid_content_length", True),
    ],
)
def test_a_body_without_a_usable_length_is_refused(
    server: GatewayServer, framing: bytes, status: int, code: str, closes: bool
) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing + b"\r\n"
    got_status, _, answer, closed = raw_exchange(server, head, expect_close=closes)
    assert (got_status, answer["error"]["code"], closed) == (status, code, closes)


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [(THROTTLED, 429, "queue_throttled"), (UNAVAILABLE, 503, "queue_unavailable")],
)
def test_sqs_trouble_is_a_retryable_answer_over_http(
    proxied_server: GatewayServer,
    proxy: FaultProxy,
    queue: TestQueue,
    fault: Any,
    status: int,
    code: str,
) -> None:
    proxy.inject(fault, action="SendMessage")
    got_status, headers, answer = call(proxied_server)
    assert (got_status, answer["error"]["code"]) == (status, code)
    assert headers["retry-after"] == "5"
    assert queue.counts() == (0, 0)
    assert call(proxied_server)[0] == 202


def test_missing_secrets_are_a_retryable_503_over_http(queue: TestQueue, proxy: FaultProxy) -> None:
    config = config_for(
        queue.url, proxy.url, GATEWAY_API_KEYS="", GATEWAY_API_KEYS_SECRET_ID="gw-absent"
    )
    with serving(config) as running:
        status, headers, answer = call(running)
    assert (status, answer["error"]["code"], headers["retry-after"]) == (
        503,
        "secrets_unavailable",
        "5",
    )


def service_env(
    queue: TestQueue, endpoint: str, project_root: Path, **overrides: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(gateway_env(queue.url, endpoint, **overrides))
    env["PYTHONPATH"] = str(project_root / "gateway")
    return env


def test_the_module_runs_as_a_service_and_stops_on_sigterm(
    queue: TestQueue, moto_endpoint: str, project_root: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"forward_if": {"field": "status", "equals": "failed"}}))
    process = subprocess.Popen(
        [sys.executable, "-m", "durable_eda_gateway.service", "--port", "0", "--rules", str(rules)],
        env=service_env(queue, moto_endpoint, project_root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("durable.eda gateway listening on http://127.0.0.1:"), line
        parts = urlsplit(line.split()[-1])
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        for status in ("failed", "ok"):
            connection.request(
                "POST", "/", body=json.dumps({"status": status}), headers=GOOD_HEADERS
            )
            reply = connection.getresponse()
            assert reply.status == 202
            reply.read()
        connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    _, stderr = process.communicate()
    for secret in SECRETS:
        assert secret not in stderr
    assert [json.loads(m["Body"])["payload"] for m in queue.drain()] == [{"status": "failed"}]


def test_the_service_refuses_to_start_without_authentication(
    queue: TestQueue, moto_endpoint: str, project_root: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "durable_eda_gateway.service", "--port", "0"],
        env=service_env(queue, moto_endpoint, project_root, GATEWAY_API_KEYS=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no authentication configured" in result.stderr


def test_requests_are_handled_concurrently(server: GatewayServer, queue: TestQueue) -> None:
    # A slow client holding a connection open must not block others.
    idle = connect(server)
    idle.connect()
    try:
        assert call(server)[0] == 202
    finally:
        idle.close()
    wait_until(lambda: queue.counts()[0] == 1, what="the message to be visible")


def test_a_client_that_stalls_mid_headers_is_disconnected(
    queue: TestQueue,
    moto_endpoint: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        serving(config_for(queue.url, moto_endpoint), request_timeout=0.5) as running,
        socket.create_connection(running.server_address, timeout=30) as sock,
    ):
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty")
        assert sock.recv(1024) == b""  # closed, after the timeout, with no one to answer
    assert queue.counts() == (0, 0)
    assert refused_quietly(caplog, capfd)


def test_a_client_that_stalls_mid_body_is_answered_408_and_nothing_is_queued(
    queue: TestQueue,
    moto_endpoint: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(config_for(queue.url, moto_endpoint), request_timeout=0.5) as running:
        head = b"POST / HTTP/1.1\r\n" + SIGNED + b"Content-Length: 100\r\n\r\n"
        status, _, answer, closed = raw_exchange(running, head + b'{"status": ')
        assert (status, answer["error"]["code"], closed) == (408, "request_timeout", True)
        assert call(running)[0] == 202
    assert [json.loads(m["Body"])["payload"] for m in queue.drain()] == [{"status": "failed"}]
    assert refused_quietly(caplog, capfd)


# Framing headers are left to http.client: a body shorter than its Content-Length just waits.
FRAMING = {"content-length", "transfer-encoding", "host"}
header_names = (
    st.sampled_from(["content-type", "x-api-key", "x-github-event", "cookie", "Authorization"])
    | st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True)
).filter(lambda name: name.lower() not in FRAMING)
latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
header_values = st.sampled_from(["application/json", API_KEY, "0", "9" * 30]) | st.text(
    latin1, max_size=40
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    body=st.binary(max_size=200),
)
def test_no_request_over_http_gets_a_server_error(
    server: GatewayServer, method: str, headers: dict[str, str], body: bytes
) -> None:
    connection = connect(server)
    try:
        connection.putrequest(method, "/", skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.putheader("content-length", str(len(body)))
        connection.endheaders(body)
        reply = connection.getresponse()
        answer = reply.read()
    finally:
        connection.close()
    assert reply.status < 500, answer
    for secret in SECRETS:
        assert secret.encode() not in answer


def test_a_body_cut_short_by_the_client_is_not_forwarded(
    server: GatewayServer, queue: TestQueue
) -> None:
    connection = connect(server)
    try:
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(20)
        head = (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-Api-Key: {API_KEY}\r\nContent-Length: 100\r\n\r\n".encode()
        )
        connection.sock.sendall(head + b'{"status": "failed"}')
        connection.sock.shutdown(socket.SHUT_WR)
        assert connection.sock.recv(1024) == b""
    finally:
        connection.close()
    assert call(server)[0] == 202
    assert len(queue.drain()) == 1
