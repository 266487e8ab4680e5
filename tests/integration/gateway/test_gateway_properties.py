"""Property: no body, header set or signature makes the gateway answer 5xx or leak a secret."""

from __future__ import annotations

import json
import logging

import pytest
from durable_eda_gateway.core import Gateway, HttpRequest, HttpResponse
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support.aws import TestQueue
from tests.unit.gateway.support import (
    API_KEY,
    GITHUB_SECRET,
    SECRETS,
    STANDARD_SECRET,
    github_signature,
    make_gateway,
    standard_headers,
)

# The queue and gateway are shared by every example of a test: only the request varies.
SHARED = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLIENT_ERRORS = {400, 401, 405, 413}

header_names = st.sampled_from(
    [
        "content-type",
        "x-api-key",
        "x-hub-signature-256",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-github-event",
        "x-github-delivery",
        "authorization",
        "cookie",
        "user-agent",
    ]
) | st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
header_values = st.text(max_size=80) | st.sampled_from(
    ["application/json", "application/cloudevents+json; charset=utf-8", API_KEY, "v1,", "sha256="]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
object_bodies = st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(
    lambda d: json.dumps(d).encode()
)
bodies = st.binary(max_size=300) | object_bodies | json_values.map(lambda v: json.dumps(v).encode())


def assert_safe(response: HttpResponse, queue: TestQueue, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status in CLIENT_ERRORS | {202}, response.payload
    seen = response.body().decode() + json.dumps(dict(response.headers)) + caplog.text
    for secret in SECRETS:
        assert secret not in seen
    if response.status != 202:
        assert set(response.payload) == {"error"}


@pytest.fixture
def key_gateway(queue: TestQueue, moto_endpoint: str) -> Gateway:
    return make_gateway(
        queue.url,
        moto_endpoint,
        GATEWAY_SIGNATURE_SCHEME="github",
        GATEWAY_SIGNING_SECRETS=GITHUB_SECRET,
        GATEWAY_EVENT_TYPE_FIELD="type",
        GATEWAY_FILTER_RULES=json.dumps(
            {"drop": ["a.b"], "forward_if": {"not": {"field": "x", "exists": True}}}
        ),
    )


@SHARED
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "post", "BREW"]),
    headers=st.dictionaries(header_names, header_values, max_size=8),
    body=bodies,
)
def test_arbitrary_requests_never_cause_a_server_error(
    key_gateway: Gateway,
    queue: TestQueue,
    caplog: pytest.LogCaptureFixture,
    method: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    caplog.set_level(logging.DEBUG, logger="durable_eda_gateway")
    response = key_gateway.handle(HttpRequest(method, headers, body, "prop"))
    assert_safe(response, queue, caplog)


@SHARED
@given(
    extra_headers=st.dictionaries(header_names, header_values, max_size=6),
    body=object_bodies | bodies,
    event_type=st.text(max_size=40),
)
def test_authenticated_requests_are_forwarded_faithfully_or_refused_as_bad_input(
    key_gateway: Gateway,
    queue: TestQueue,
    caplog: pytest.LogCaptureFixture,
    extra_headers: dict[str, str],
    body: bytes,
    event_type: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="durable_eda_gateway")
    headers = {
        **extra_headers,
        "content-type": "application/json",
        "x-api-key": API_KEY,
        "x-github-event": event_type,
        "x-hub-signature-256": github_signature(body),
    }
    response = key_gateway.handle(HttpRequest("POST", headers, body, "prop"))
    assert_safe(response, queue, caplog)
    assert response.status in {202, 400}
    event(f"answered {response.status}")
    if response.status == 202 and response.payload["forwarded"]:
        [message] = queue.drain(visibility_timeout=600)
        envelope = json.loads(message["Body"])
        for secret in SECRETS:
            assert secret not in message["Body"]
        payload = json.loads(body)
        if isinstance(payload.get("a"), dict):
            payload["a"].pop("b", None)
        assert envelope["payload"] == payload


NOW = 1_800_000_000


@pytest.fixture
def signature_gateway(queue: TestQueue, moto_endpoint: str) -> Gateway:
    return make_gateway(
        queue.url,
        moto_endpoint,
        clock=lambda: float(NOW),
        GATEWAY_API_KEYS="",
        GATEWAY_SIGNATURE_SCHEME="standard-webhooks",
        GATEWAY_SIGNING_SECRETS=STANDARD_SECRET,
    )


@SHARED
@given(
    headers=st.dictionaries(header_names, header_values, max_size=6),
    body=bodies,
    skew=st.integers(min_value=-10_000, max_value=10_000),
    sign=st.booleans(),
)
def test_standard_webhooks_signatures_never_cause_a_server_error(
    signature_gateway: Gateway,
    queue: TestQueue,
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
    body: bytes,
    skew: int,
    sign: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger="durable_eda_gateway")
    if sign:
        headers = {**headers, **standard_headers(body, NOW + skew)}
    response = signature_gateway.handle(HttpRequest("POST", headers, body, "prop"))
    assert_safe(response, queue, caplog)
    if sign and abs(skew) > 300:
        assert response.payload["error"]["code"] == "stale_timestamp"
