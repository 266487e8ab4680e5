"""Helpers shared by the gateway's tests: configurations and correctly signed requests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from durable_eda_gateway.config import GatewayConfig, load_config
from durable_eda_gateway.core import Gateway, HttpRequest
from durable_eda_gateway.service import GatewayServer, start

API_KEY = "gw-key-0123456789-never-logged"
OLD_API_KEY = "gw-key-old-rotated-never-logged"
GITHUB_SECRET = "github-hook-secret-never-logged"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-secret-never-logged").decode()
SECRETS = (API_KEY, OLD_API_KEY, GITHUB_SECRET, STANDARD_SECRET, STANDARD_SECRET[6:])


def gateway_env(queue_url: str, endpoint: str, **overrides: str) -> dict[str, str]:
    env = {
        "GATEWAY_QUEUE_URL": queue_url,
        "GATEWAY_AWS_ENDPOINT_URL": endpoint,
        "GATEWAY_SOURCE": "github",
        "GATEWAY_API_KEYS": f"{API_KEY},{OLD_API_KEY}",
        "GATEWAY_SQS_MAX_ATTEMPTS": "1",
        "AWS_REGION": "us-east-1",
    }
    env.update(overrides)
    return {name: value for name, value in env.items() if value != ""}


def make_gateway(
    queue_url: str, endpoint: str, clock: Callable[[], float] = time.time, **overrides: str
) -> Gateway:
    config = load_config(gateway_env(queue_url, endpoint, **overrides))
    return Gateway.from_config(config, clock=clock)


def config_for(queue_url: str, endpoint: str, **overrides: str) -> GatewayConfig:
    return load_config(gateway_env(queue_url, endpoint, **overrides))


@contextmanager
def serving(config: GatewayConfig, request_timeout: float = 30.0) -> Iterator[GatewayServer]:
    """The local service on 127.0.0.1, stopped on the way out."""
    running = start(config, request_timeout=request_timeout)
    try:
        yield running
    finally:
        running.stop()


def request(
    payload: Any = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    method: str = "POST",
    api_key: str | None = API_KEY,
) -> HttpRequest:
    raw = body if body is not None else json.dumps(payload or {"status": "failed"}).encode()
    all_headers = {"content-type": "application/json"}
    if api_key is not None:
        all_headers["x-api-key"] = api_key
    all_headers.update(headers or {})
    return HttpRequest(method=method, headers=all_headers, body=raw, request_id="req-1")


def github_signature(body: bytes, secret: str = GITHUB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_headers(
    body: bytes, timestamp: int, message_id: str = "msg_1", secret: str = STANDARD_SECRET
) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }
