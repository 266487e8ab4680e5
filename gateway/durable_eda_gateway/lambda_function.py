"""AWS Lambda entry point: `durable_eda_gateway.lambda_function.handler`.

Takes API Gateway REST (payload format 1.0), HTTP API (2.0) and Lambda function URL
events (2.0 format), base64-encoded bodies included. The configuration is read from the
environment once per execution environment, on the first request.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

from durable_eda_gateway.config import ConfigError, load_config
from durable_eda_gateway.core import (
    Gateway,
    HttpRequest,
    HttpResponse,
    RejectError,
    normalise_headers,
)

logger = logging.getLogger(__name__)
_gateway: Gateway | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request_id = _request_id(event, context)
    try:
        request = to_request(event, request_id, _time_left(context))
    except RejectError as reject:
        return to_lambda_response(reject.response(request_id))
    try:
        gateway = _get_gateway()
    except ConfigError as error:
        logger.error("gateway configuration is unusable: %s", error)
        failure = RejectError(500, "gateway_misconfigured", "the gateway is misconfigured")
        return to_lambda_response(failure.response(request_id))
    return to_lambda_response(gateway.handle(request))


def _get_gateway() -> Gateway:
    global _gateway
    if _gateway is None:
        _gateway = Gateway.from_config(load_config(os.environ))
    return _gateway


def reset() -> None:
    """Forget the cached gateway, so the next call reads the environment again."""
    global _gateway
    _gateway = None


def _time_left(context: Any) -> Callable[[], float] | None:
    """Seconds until Lambda stops the function: AWS calls must end, and the answer go, before."""
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining_ms):
        return None
    return lambda: float(remaining_ms()) / 1000


def to_request(
    event: dict[str, Any], request_id: str, time_left: Callable[[], float] | None = None
) -> HttpRequest:
    context = event.get("requestContext") or {}
    if event.get("version") == "2.0":
        method = (context.get("http") or {}).get("method", "")
        pairs = list((event.get("headers") or {}).items())
    else:
        method = event.get("httpMethod", "")
        pairs = _v1_header_pairs(event)
    return HttpRequest(
        method=str(method),
        headers=normalise_headers((str(k), str(v)) for k, v in pairs),
        body=_body(event),
        request_id=request_id,
        time_left=time_left,
    )


def _v1_header_pairs(event: dict[str, Any]) -> list[tuple[Any, Any]]:
    # multiValueHeaders holds every value of a repeated header; headers only the last.
    multi = event.get("multiValueHeaders")
    if multi:
        return [(name, value) for name, values in multi.items() for value in values or ()]
    return list((event.get("headers") or {}).items())


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(str(body), validate=True)
    except (binascii.Error, ValueError):
        raise RejectError(400, "invalid_encoding", "the body is not valid base64") from None


def _request_id(event: dict[str, Any], context: Any) -> str:
    from_event = (event.get("requestContext") or {}).get("requestId")
    from_context = getattr(context, "aws_request_id", None)
    return str(from_event or from_context or uuid.uuid4())


def to_lambda_response(response: HttpResponse) -> dict[str, Any]:
    return {
        "statusCode": response.status,
        "headers": response.all_headers(),
        "body": response.body().decode(),
        "isBase64Encoded": False,
    }
