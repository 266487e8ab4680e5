"""The gateway itself: one request in, one answer out, shared by Lambda and the local service.

Order of checks: method, size, authentication, content type, JSON, filter, envelope, SQS
(an envelope too large for the queue goes to S3 first, and the queue gets a pointer).
Authentication comes before anything that looks at the body's content, so an
unauthenticated client learns nothing about what the gateway accepts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from durable_eda_gateway.auth import (
    AuthError,
    MisconfiguredSecretError,
    as_bytes,
    check_api_key,
    check_github_signature,
    check_standard_webhooks_signature,
)
from durable_eda_gateway.config import GatewayConfig, SecretSpec
from durable_eda_gateway.filtering import lookup
from durable_eda_gateway.forwarder import (
    OutgoingMessage,
    QueueFailureError,
    S3PayloadStore,
    SqsForwarder,
    StoreFailureError,
)
from durable_eda_gateway.secrets import CachedSecrets, SecretsUnavailableError

logger = logging.getLogger(__name__)

ENVELOPE_VERSION = 1
# SQS refuses message attribute values with control characters or non-characters.
_ATTRIBUTE_SAFE = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff\ufffe\uffff]{1,256}")
# MessageGroupId / MessageDeduplicationId: 1-128 characters, alphanumerics and punctuation.
_FIFO_ID = re.compile(r"[!-~]{1,128}")


@dataclass(frozen=True)
class HttpRequest:
    method: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    request_id: str
    # Seconds left to answer, when something outside sets a deadline (Lambda's timeout).
    time_left: Callable[[], float] | None = None


@dataclass(frozen=True)
class HttpResponse:
    status: int
    payload: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return json.dumps(self.payload, separators=(",", ":")).encode()

    def all_headers(self) -> dict[str, str]:
        return {"content-type": "application/json", **self.headers}


class RejectError(Exception):
    """Stop handling the request and answer with an error body of a stable code."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: int | None = None
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def response(self, request_id: str) -> HttpResponse:
        headers = {"x-request-id": request_id}
        if self.retry_after is not None:
            headers["retry-after"] = str(self.retry_after)
        if self.status == 405:
            headers["allow"] = "POST"
        return HttpResponse(
            self.status, {"error": {"code": self.code, "message": self.message}}, headers
        )


def normalise_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ", " as HTTP allows."""
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        forwarder: SqsForwarder,
        api_keys: CachedSecrets | None,
        signing_secrets: CachedSecrets | None,
        clock: Callable[[], float] = time.time,
        payload_store: S3PayloadStore | None = None,
    ) -> None:
        self.config = config
        self._forwarder = forwarder
        self._payload_store = payload_store
        self._api_keys = api_keys
        self._signing_secrets = signing_secrets
        self._clock = clock

    @classmethod
    def from_config(
        cls, config: GatewayConfig, pool_size: int = 10, clock: Callable[[], float] = time.time
    ) -> Gateway:
        """A gateway with its own boto3 clients; secrets are fetched on first use.

        `pool_size`: connections each client keeps, one per thread that may call it at once.
        `clock`: the wall clock, for timestamps and signature tolerances.
        """
        session = boto3.session.Session(region_name=config.region)
        timeouts = config.aws_timeouts
        client_config = Config(
            retries={"mode": "standard", "total_max_attempts": timeouts.max_attempts},
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            max_pool_connections=pool_size,
            user_agent_extra="durable-eda-gateway",
        )
        clients: dict[str, Any] = {}

        def client_for(service: str) -> Any:
            if service not in clients:
                options = client_config
                if service == "s3" and config.aws_endpoint_url:
                    # A local S3 (moto, MinIO) is one host: buckets go in the path.
                    options = client_config.merge(Config(s3={"addressing_style": "path"}))
                clients[service] = session.client(
                    service, endpoint_url=config.aws_endpoint_url, config=options
                )
            return clients[service]

        def cached(spec: SecretSpec | None) -> CachedSecrets | None:
            if spec is None:
                return None
            return CachedSecrets(
                spec,
                client_for,
                config.secrets_ttl_seconds,
                backoff=config.retry_after_seconds,
            )

        forwarder = SqsForwarder(client_for("sqs"), config.queue_url)
        store = None
        if config.large_payload_bucket:
            store = S3PayloadStore(client_for("s3"), config.large_payload_bucket)
        # Clients are made here, not lazily in request threads: boto3 sessions are not thread-safe.
        if any(s is not None and s.secret_id for s in (config.api_keys, config.signing_secrets)):
            client_for("secretsmanager")
        if any(
            s is not None and s.ssm_parameter for s in (config.api_keys, config.signing_secrets)
        ):
            client_for("ssm")
        return cls(
            config,
            forwarder,
            cached(config.api_keys),
            cached(config.signing_secrets),
            clock,
            store,
        )

    def handle(self, request: HttpRequest) -> HttpResponse:
        try:
            return self._handle(request)
        except RejectError as reject:
            return reject.response(request.request_id)

    def _handle(self, request: HttpRequest) -> HttpResponse:
        if request.method.upper() != "POST":
            raise RejectError(405, "method_not_allowed", "only POST is accepted")
        self._check_body_size(len(request.body))
        secrets = self._authenticate(request)
        payload = parse_payload(request.headers, request.body)
        event_type = self._event_type(request.headers, payload)
        try:
            forwarded = self.config.rules.apply(payload, event_type)
        except RecursionError:
            raise RejectError(400, "invalid_json", "the JSON body is nested too deeply") from None
        if forwarded is None:
            logger.info("request %s filtered out (event_type=%s)", request.request_id, event_type)
            return self._accepted(request, {"forwarded": False, "reason": "filtered"})
        message = self._message(request, forwarded, event_type, secrets)
        if message.sqs_size() > self.config.max_message_bytes:
            message = self._offload(request, message)
        if not self._has_time_for_aws(request):
            raise RejectError(
                503,
                "queue_unavailable",
                "too little time left to reach the queue; retry later",
                self.config.retry_after_seconds,
            )
        message_id = self._send(message)
        logger.info(
            "request %s forwarded as message %s (event_type=%s)",
            request.request_id,
            message_id,
            event_type,
        )
        return self._accepted(request, {"forwarded": True, "message_id": message_id})

    @staticmethod
    def _accepted(request: HttpRequest, payload: dict[str, Any]) -> HttpResponse:
        payload["request_id"] = request.request_id
        return HttpResponse(202, payload, {"x-request-id": request.request_id})

    def _check_body_size(self, size: int) -> None:
        if size > self.config.max_body_bytes:
            raise RejectError(413, "payload_too_large", too_large(self.config))

    def _offload(self, request: HttpRequest, message: OutgoingMessage) -> OutgoingMessage:
        """The message with its envelope stored in S3, as a pointer SQS takes."""
        store = self._payload_store
        if store is None:
            raise RejectError(413, "payload_too_large", too_large(self.config))
        # Storing without the time to queue the pointer too would only leave an orphan.
        if not self._has_time_for_aws(request, calls=2):
            raise RejectError(
                503,
                "payload_store_unavailable",
                "too little time left to store the payload; retry later",
                self.config.retry_after_seconds,
            )
        try:
            key = store.put(message.body, self.config.source)
        except StoreFailureError as failure:
            if failure.throttled:
                raise RejectError(
                    429,
                    "payload_store_throttled",
                    "the payload store is throttling; retry later",
                    self.config.retry_after_seconds,
                ) from None
            raise RejectError(
                503,
                "payload_store_unavailable",
                "the payload store did not accept the payload; retry later",
                self.config.retry_after_seconds,
            ) from None
        logger.info(
            "request %s: envelope of %d bytes stored as s3://%s/%s",
            request.request_id,
            len(message.body),
            store.bucket,
            key,
        )
        return message.pointing_to(store.bucket, key)

    def _authenticate(self, request: HttpRequest) -> tuple[str, ...]:
        """The secrets the request was checked against, once it passed."""
        try:
            return self._check_credentials(request)
        except AuthError as error:
            logger.warning("request %s refused: %s", request.request_id, error.code)
            raise RejectError(401, error.code, error.message) from None
        except SecretsUnavailableError:
            raise RejectError(
                503,
                "secrets_unavailable",
                "the gateway cannot check credentials right now",
                self.config.retry_after_seconds,
            ) from None
        except MisconfiguredSecretError as error:
            logger.error("request %s: %s", request.request_id, error)
            raise RejectError(
                500, "gateway_misconfigured", "the gateway is misconfigured"
            ) from None

    def _has_time_for_aws(self, request: HttpRequest, calls: int = 1) -> bool:
        """Whether `calls` AWS calls at their slowest would still leave time to answer."""
        if request.time_left is None:
            return True
        left = request.time_left()
        if left >= self.config.aws_timeouts.needed_seconds(calls):
            return True
        logger.warning(
            "request %s: %.1f s left, too little for %d AWS call(s)",
            request.request_id,
            left,
            calls,
        )
        return False

    def _check_credentials(self, request: HttpRequest) -> tuple[str, ...]:
        def may_fetch() -> bool:
            return self._has_time_for_aws(request)

        api_keys: tuple[str, ...] = ()
        if self._api_keys is not None:
            api_keys = self._api_keys.values(may_fetch)
            check_api_key(request.headers, self.config.api_key_header, api_keys)
        if self._signing_secrets is None:
            return api_keys
        secrets = self._signing_secrets.values(may_fetch)
        if self.config.signature_scheme == "github":
            check_github_signature(request.headers, request.body, secrets)
        else:
            check_standard_webhooks_signature(
                request.headers,
                request.body,
                secrets,
                now=self._clock(),
                tolerance=self.config.timestamp_tolerance_seconds,
            )
        return api_keys + secrets

    def _event_type(self, headers: Mapping[str, str], payload: dict[str, Any]) -> str | None:
        event_type = next(
            (headers[name] for name in self.config.event_type_headers if headers.get(name)), None
        )
        if event_type is None and self.config.event_type_field is not None:
            value = lookup(payload, self.config.event_type_field)
            event_type = value if isinstance(value, str) and value else None
        if event_type is not None and not _ATTRIBUTE_SAFE.fullmatch(event_type):
            raise RejectError(400, "invalid_event_type", "the event type has unusable characters")
        return event_type

    def _message(
        self,
        request: HttpRequest,
        payload: dict[str, Any],
        event_type: str | None,
        secrets: tuple[str, ...],
    ) -> OutgoingMessage:
        envelope = {
            "gateway": "durable.eda",
            "version": ENVELOPE_VERSION,
            "source": self.config.source,
            "event_type": event_type,
            "received_at": iso_utc(self._clock()),
            "request_id": request.request_id,
            "headers": self._forwarded_headers(request, secrets),
            "payload": payload,
        }
        try:
            # ASCII-only JSON: whatever the client sent, the body holds only characters SQS takes.
            body = json.dumps(envelope, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
        except (ValueError, RecursionError):
            raise RejectError(400, "invalid_json", "the JSON body cannot be re-encoded") from None
        attributes = {"source": self.config.source}
        if event_type is not None:
            attributes["event_type"] = event_type
        if not self.config.fifo:
            return OutgoingMessage(body, attributes)
        return OutgoingMessage(
            body,
            attributes,
            group_id=self._group_id(payload),
            deduplication_id=self._deduplication_id(request),
        )

    def _forwarded_headers(self, request: HttpRequest, secrets: tuple[str, ...]) -> dict[str, str]:
        # A sender that pastes its key into another header must not get it queued.
        forwarded: dict[str, str] = {}
        for name in self.config.forward_headers:
            value = request.headers.get(name)
            if value is None:
                continue
            if any(secret in value for secret in secrets):
                logger.warning(
                    "request %s: header %s held a secret, dropped", request.request_id, name
                )
                continue
            forwarded[name] = value
        return forwarded

    def _group_id(self, payload: dict[str, Any]) -> str:
        if self.config.group_id_field is not None:
            value = lookup(payload, self.config.group_id_field)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                return fifo_id(str(value))
        return self.config.source

    def _deduplication_id(self, request: HttpRequest) -> str:
        for name in self.config.delivery_id_headers:
            if request.headers.get(name):
                return fifo_id(request.headers[name])
        return hashlib.sha256(request.body).hexdigest()

    def _send(self, message: OutgoingMessage) -> str:
        try:
            return self._forwarder.send(message)
        except QueueFailureError as failure:
            if failure.throttled:
                raise RejectError(
                    429,
                    "queue_throttled",
                    "the queue is throttling; retry later",
                    self.config.retry_after_seconds,
                ) from None
            raise RejectError(
                503,
                "queue_unavailable",
                "the queue did not accept the message; retry later",
                self.config.retry_after_seconds,
            ) from None


def too_large(config: GatewayConfig) -> str:
    if config.large_payload_bucket:
        return f"the body exceeds the gateway's limit of {config.max_request_bytes} bytes"
    return f"the message exceeds the queue's limit of {config.max_message_bytes} bytes"


def parse_payload(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise RejectError(400, "unsupported_content_type", "the body must be application/json")
    try:
        payload = json.loads(
            body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except (ValueError, RecursionError):
        raise RejectError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise RejectError(400, "not_a_json_object", "the body must be a JSON object")
    return payload


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def fifo_id(value: str) -> str:
    """`value` itself if SQS accepts it as a FIFO id, otherwise a stable hash of it."""
    if _FIFO_ID.fullmatch(value):
        return value
    return hashlib.sha256(as_bytes(value)).hexdigest()


def iso_utc(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
