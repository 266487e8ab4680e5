"""The core against moto's SQS (and Secrets Manager / SSM) over real HTTP."""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
import pytest
from durable_eda_gateway.core import HttpResponse

from tests.support.aws import REGION, TestQueue
from tests.support.fault_proxy import (
    RESET,
    SERVER_ERROR,
    THROTTLED,
    UNAVAILABLE,
    FaultProxy,
    aws_error,
)
from tests.unit.gateway.support import (
    API_KEY,
    GITHUB_SECRET,
    OLD_API_KEY,
    SECRETS,
    STANDARD_SECRET,
    github_signature,
    make_gateway,
    request,
    standard_headers,
)


def body_of(message: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(message["Body"]))


def attributes_of(message: dict[str, Any]) -> dict[str, str]:
    return {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}


def receive_all(queue: TestQueue) -> list[dict[str, Any]]:
    reply = queue.client.receive_message(
        QueueUrl=queue.url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        AttributeNames=["All"],
    )
    return list(reply.get("Messages", []))


def error_code(response: HttpResponse) -> str:
    return str(response.payload["error"]["code"])


def test_an_accepted_webhook_is_queued_in_the_documented_envelope(
    queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(queue.url, moto_endpoint)
    headers = {
        "x-github-event": "workflow_run",
        "x-github-delivery": "d-1",
        "authorization": "Bearer nope",
        "cookie": "session=abc",
        "user-agent": "GitHub-Hookshot/1",
    }
    response = gateway.handle(request({"status": "failed", "n": 1}, headers))

    assert response.status == 202
    assert response.payload["forwarded"] is True
    [message] = receive_all(queue)
    assert response.payload["message_id"] == message["MessageId"]
    envelope = body_of(message)
    assert envelope["received_at"].endswith("Z")
    del envelope["received_at"]
    assert envelope == {
        "gateway": "durable.eda",
        "version": 1,
        "source": "github",
        "event_type": "workflow_run",
        "request_id": "req-1",
        "headers": {
            "content-type": "application/json",
            "user-agent": "GitHub-Hookshot/1",
            "x-github-event": "workflow_run",
            "x-github-delivery": "d-1",
        },
        "payload": {"status": "failed", "n": 1},
    }
    assert attributes_of(message) == {"source": "github", "event_type": "workflow_run"}


def test_event_type_can_come_from_the_payload(queue: TestQueue, moto_endpoint: str) -> None:
    gateway = make_gateway(queue.url, moto_endpoint, GATEWAY_EVENT_TYPE_FIELD="alert.kind")
    assert gateway.handle(request({"alert": {"kind": "disk_full"}})).status == 202
    [message] = receive_all(queue)
    assert body_of(message)["event_type"] == "disk_full"
    assert attributes_of(message) == {"source": "github", "event_type": "disk_full"}


def test_without_an_event_type_only_the_source_attribute_is_sent(
    queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(queue.url, moto_endpoint)
    assert gateway.handle(request({"a": 1})).status == 202
    [message] = receive_all(queue)
    assert body_of(message)["event_type"] is None
    assert attributes_of(message) == {"source": "github"}


def test_a_filtered_out_request_is_answered_but_not_queued(
    queue: TestQueue, moto_endpoint: str
) -> None:
    rules = {"forward_if": {"field": "status", "in": ["failed", "error"]}, "drop": ["secret"]}
    gateway = make_gateway(queue.url, moto_endpoint, GATEWAY_FILTER_RULES=json.dumps(rules))

    skipped = gateway.handle(request({"status": "ok"}))
    kept = gateway.handle(request({"status": "error", "secret": "x"}))

    assert (skipped.status, skipped.payload["forwarded"]) == (202, False)
    assert (kept.status, kept.payload["forwarded"]) == (202, True)
    [message] = receive_all(queue)
    assert body_of(message)["payload"] == {"status": "error"}


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"method": "GET"}, 405, "method_not_allowed"),
        ({"api_key": None}, 401, "missing_credentials"),
        ({"api_key": "wrong"}, 401, "invalid_credentials"),
        ({"headers": {"content-type": "text/plain"}}, 400, "unsupported_content_type"),
        (
            {"headers": {"content-type": "application/x-www-form-urlencoded"}},
            400,
            "unsupported_content_type",
        ),
        ({"body": b"{not json"}, 400, "invalid_json"),
        ({"body": b""}, 400, "invalid_json"),
        ({"body": b"\xff\xfe"}, 400, "invalid_json"),
        ({"body": b'{"x": NaN}'}, 400, "invalid_json"),
        ({"body": b'{"x": 1e999}'}, 400, "invalid_json"),
        ({"body": b"[" * 100_000}, 400, "invalid_json"),
        ({"body": b"[1, 2]"}, 400, "not_a_json_object"),
        ({"body": b'"text"'}, 400, "not_a_json_object"),
        ({"headers": {"x-github-event": "bad\nline"}}, 400, "invalid_event_type"),
        ({"body": b'{"pad": "' + b"x" * 262_144 + b'"}'}, 413, "payload_too_large"),
    ],
)
def test_bad_requests_get_stable_error_codes_and_nothing_is_queued(
    queue: TestQueue, moto_endpoint: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    gateway = make_gateway(queue.url, moto_endpoint)
    response = gateway.handle(request(**kwargs))
    assert (response.status, error_code(response)) == (status, code)
    assert set(response.payload) == {"error"}
    if status == 405:
        assert response.headers["allow"] == "POST"
    assert queue.counts() == (0, 0)


def test_a_payload_that_grows_past_the_limit_in_its_envelope_is_refused(
    queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(queue.url, moto_endpoint, GATEWAY_MAX_MESSAGE_BYTES="2048")
    # 700 characters that JSON-escape to 6 bytes each: under the limit raw, over it queued.
    body = json.dumps({"t": "\u00e9" * 700}, ensure_ascii=False).encode()
    assert len(body) < 2048
    response = gateway.handle(request(body=body))
    assert (response.status, error_code(response)) == (413, "payload_too_large")
    assert queue.counts() == (0, 0)


def test_a_rotated_key_still_works(queue: TestQueue, moto_endpoint: str) -> None:
    gateway = make_gateway(queue.url, moto_endpoint)
    assert gateway.handle(request(api_key=OLD_API_KEY)).status == 202


def test_a_custom_key_header_is_honoured_and_never_forwarded(
    queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(
        queue.url,
        moto_endpoint,
        GATEWAY_API_KEY_HEADER="X-Gateway-Token",
        GATEWAY_FORWARD_HEADERS="content-type,x-trace",
    )
    headers = {"x-gateway-token": API_KEY, "x-trace": "t-1"}
    assert gateway.handle(request(headers=headers, api_key=None)).status == 202
    [message] = receive_all(queue)
    assert body_of(message)["headers"] == {"content-type": "application/json", "x-trace": "t-1"}


def test_github_signature_is_required_when_configured(queue: TestQueue, moto_endpoint: str) -> None:
    gateway = make_gateway(
        queue.url,
        moto_endpoint,
        GATEWAY_API_KEYS="",
        GATEWAY_SIGNATURE_SCHEME="github",
        GATEWAY_SIGNING_SECRETS=GITHUB_SECRET,
    )
    body = b'{"action": "completed"}'
    signed = request(
        body=body, headers={"x-hub-signature-256": github_signature(body)}, api_key=None
    )
    unsigned = request(body=body, api_key=API_KEY)
    forged = request(
        body=body, headers={"x-hub-signature-256": github_signature(body, "guess")}, api_key=None
    )

    assert gateway.handle(signed).status == 202
    assert error_code(gateway.handle(unsigned)) == "missing_signature"
    assert error_code(gateway.handle(forged)) == "invalid_signature"
    [message] = receive_all(queue)
    assert "x-hub-signature-256" not in body_of(message)["headers"]


def test_key_and_signature_together_both_have_to_match(
    queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(
        queue.url,
        moto_endpoint,
        GATEWAY_SIGNATURE_SCHEME="github",
        GATEWAY_SIGNING_SECRETS=GITHUB_SECRET,
    )
    body = b"{}"
    signature = {"x-hub-signature-256": github_signature(body)}
    assert gateway.handle(request(body=body, headers=signature)).status == 202
    assert gateway.handle(request(body=body, headers=signature, api_key="no")).status == 401
    assert gateway.handle(request(body=body)).status == 401


def test_standard_webhooks_refuse_a_replay(queue: TestQueue, moto_endpoint: str) -> None:
    clock = [1_800_000_000.0]
    gateway = make_gateway(
        queue.url,
        moto_endpoint,
        clock=lambda: clock[0],
        GATEWAY_API_KEYS="",
        GATEWAY_SIGNATURE_SCHEME="standard-webhooks",
        GATEWAY_SIGNING_SECRETS=STANDARD_SECRET,
    )
    body = b'{"type": "invoice.paid"}'
    signed = request(body=body, headers=standard_headers(body, int(clock[0])), api_key=None)

    assert gateway.handle(signed).status == 202
    clock[0] += 600
    replay = gateway.handle(signed)
    assert (replay.status, error_code(replay)) == (401, "stale_timestamp")
    assert len(receive_all(queue)) == 1


def test_fifo_ids_come_from_the_payload_and_the_delivery_header(
    fifo_queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(fifo_queue.url, moto_endpoint, GATEWAY_GROUP_ID_FIELD="repo.name")
    delivery = {"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    first = gateway.handle(request({"repo": {"name": "infra"}}, delivery))
    retried = gateway.handle(request({"repo": {"name": "infra"}}, delivery))

    assert first.status == retried.status == 202
    [message] = receive_all(fifo_queue)
    assert message["Attributes"]["MessageGroupId"] == "infra"
    assert message["Attributes"]["MessageDeduplicationId"] == delivery["x-github-delivery"]


def test_fifo_without_a_delivery_id_deduplicates_on_the_body(
    fifo_queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(fifo_queue.url, moto_endpoint)
    for payload in ({"n": 1}, {"n": 1}, {"n": 2}):
        assert gateway.handle(request(payload)).status == 202
    messages = receive_all(fifo_queue)
    assert [body_of(m)["payload"] for m in messages] == [{"n": 1}, {"n": 2}]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"github"}


def test_fifo_ids_that_sqs_would_refuse_are_hashed(
    fifo_queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(fifo_queue.url, moto_endpoint, GATEWAY_GROUP_ID_FIELD="g")
    response = gateway.handle(request({"g": "with space é"}, {"webhook-id": "x" * 300}))
    assert response.status == 202
    [message] = receive_all(fifo_queue)
    assert len(message["Attributes"]["MessageGroupId"]) == 64
    assert len(message["Attributes"]["MessageDeduplicationId"]) == 64


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (THROTTLED, 429, "queue_throttled"),
        (aws_error("RequestThrottled"), 429, "queue_throttled"),
        (UNAVAILABLE, 503, "queue_unavailable"),
        (SERVER_ERROR, 503, "queue_unavailable"),
        (RESET, 503, "queue_unavailable"),
        (aws_error("AccessDenied", status=403), 503, "queue_unavailable"),
    ],
)
def test_sqs_failures_ask_the_sender_to_retry(
    queue: TestQueue, proxy: FaultProxy, fault: Any, status: int, code: str
) -> None:
    gateway = make_gateway(queue.url, proxy.url)
    proxy.inject(fault, action="SendMessage")
    response = gateway.handle(request({"status": "failed"}))
    assert (response.status, error_code(response)) == (status, code)
    assert response.headers["retry-after"] == "5"
    assert queue.counts() == (0, 0)
    assert gateway.handle(request({"status": "failed"})).status == 202


def test_a_single_throttle_is_absorbed_by_a_retry(queue: TestQueue, proxy: FaultProxy) -> None:
    gateway = make_gateway(queue.url, proxy.url, GATEWAY_SQS_MAX_ATTEMPTS="2")
    proxy.inject(THROTTLED, action="SendMessage")
    assert gateway.handle(request({"status": "failed"})).status == 202
    assert proxy.count("SendMessage") == 2
    assert queue.counts() == (1, 0)


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def test_keys_from_secrets_manager_are_fetched_once_and_cached(
    queue: TestQueue, moto_endpoint: str, proxy: FaultProxy
) -> None:
    name = f"gw-keys-{queue.name}"
    aws_client("secretsmanager", moto_endpoint).create_secret(
        Name=name, SecretString=f"{API_KEY}\n{OLD_API_KEY}"
    )
    gateway = make_gateway(
        queue.url, proxy.url, GATEWAY_API_KEYS="", GATEWAY_API_KEYS_SECRET_ID=name
    )
    assert gateway.handle(request()).status == 202
    assert gateway.handle(request(api_key=OLD_API_KEY)).status == 202
    assert gateway.handle(request(api_key="nope")).status == 401
    assert proxy.count("GetSecretValue") == 1


def test_signing_secrets_from_ssm_are_used(queue: TestQueue, moto_endpoint: str) -> None:
    name = f"/gw/{queue.name}/github"
    aws_client("ssm", moto_endpoint).put_parameter(
        Name=name, Value=GITHUB_SECRET, Type="SecureString"
    )
    gateway = make_gateway(
        queue.url,
        moto_endpoint,
        GATEWAY_SIGNATURE_SCHEME="github",
        GATEWAY_SIGNING_SECRETS_SSM_PARAMETER=name,
    )
    body = b"{}"
    assert (
        gateway.handle(
            request(body=body, headers={"x-hub-signature-256": github_signature(body)})
        ).status
        == 202
    )


def test_unreachable_secrets_are_a_retryable_503(queue: TestQueue, proxy: FaultProxy) -> None:
    gateway = make_gateway(
        queue.url, proxy.url, GATEWAY_API_KEYS="", GATEWAY_API_KEYS_SECRET_ID="gw-missing-secret"
    )
    response = gateway.handle(request())
    assert (response.status, error_code(response)) == (503, "secrets_unavailable")
    assert response.headers["retry-after"] == "5"


def test_no_secret_reaches_logs_answers_or_messages(
    queue: TestQueue, moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="durable_eda_gateway")
    gateway = make_gateway(
        queue.url,
        moto_endpoint,
        GATEWAY_SIGNATURE_SCHEME="github",
        GATEWAY_SIGNING_SECRETS=GITHUB_SECRET,
        GATEWAY_FORWARD_HEADERS="content-type,x-note",
    )
    body = b'{"status": "failed"}'
    good = {"x-hub-signature-256": github_signature(body), "x-note": "hello"}
    answers = [
        gateway.handle(request(body=body, headers=good)),
        gateway.handle(request(body=body, headers=good, api_key=API_KEY + "x")),
        gateway.handle(request(body=body, headers={"x-hub-signature-256": "sha256=00"})),
    ]
    assert [a.status for a in answers] == [202, 401, 401]
    seen = caplog.text + "".join(a.body().decode() + repr(a.headers) for a in answers)
    seen += "".join(m["Body"] + repr(m.get("MessageAttributes")) for m in receive_all(queue))
    assert "refused" in caplog.text
    for secret in SECRETS:
        assert secret not in seen


def test_an_allowed_header_holding_a_secret_is_not_forwarded(
    queue: TestQueue, moto_endpoint: str
) -> None:
    gateway = make_gateway(queue.url, moto_endpoint)
    headers = {"user-agent": f"curl {API_KEY}", "x-github-event": "push"}
    assert gateway.handle(request(headers=headers)).status == 202
    [message] = receive_all(queue)
    assert body_of(message)["headers"] == {
        "content-type": "application/json",
        "x-github-event": "push",
    }
