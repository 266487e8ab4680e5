"""The gateway's configuration, read once from environment variables and validated.

Every variable is documented in the README ("Webhook gateway"). Secrets are never part of
a config's repr, so logging a config cannot leak them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from durable_eda_gateway.budget import CALLS_PER_REQUEST, AwsTimeouts, aws_timeouts
from durable_eda_gateway.filtering import FilterRules, parse_rules

PREFIX = "GATEWAY_"
SignatureScheme = Literal["github", "standard-webhooks"]
_SCHEMES: dict[str, SignatureScheme | None] = {
    "": None,
    "none": None,
    "github": "github",
    "standard-webhooks": "standard-webhooks",
}

DEFAULT_FORWARD_HEADERS = (
    "content-type",
    "user-agent",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "x-gitlab-event",
    "webhook-id",
    "webhook-timestamp",
)
# Credentials, or values computed from them: never forwarded, whatever the configuration says.
NEVER_FORWARDED = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "x-hub-signature",
        "x-hub-signature-256",
        "webhook-signature",
        "x-gitlab-token",
        "x-amz-security-token",
    }
)
_SOURCE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_SECRET_SEPARATORS = re.compile(r"[,\n]")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the variable (never its value)."""


@dataclass(frozen=True)
class SecretSpec:
    """Where one list of secrets comes from: a literal value, Secrets Manager or SSM."""

    variable: str
    literal: str | None = field(default=None, repr=False)
    secret_id: str | None = None
    ssm_parameter: str | None = None


@dataclass(frozen=True)
class GatewayConfig:
    queue_url: str
    source: str = "webhook"
    region: str | None = None
    aws_endpoint_url: str | None = None
    api_key_header: str = "x-api-key"
    api_keys: SecretSpec | None = None
    signature_scheme: SignatureScheme | None = None
    signing_secrets: SecretSpec | None = None
    timestamp_tolerance_seconds: int = 300
    forward_headers: tuple[str, ...] = DEFAULT_FORWARD_HEADERS
    event_type_headers: tuple[str, ...] = ("x-github-event", "x-gitlab-event")
    event_type_field: tuple[str, ...] | None = None
    group_id_field: tuple[str, ...] | None = None
    delivery_id_headers: tuple[str, ...] = ("x-github-delivery", "webhook-id")
    max_message_bytes: int = 262_144
    # An envelope over max_message_bytes goes to this bucket, and a pointer to the queue.
    large_payload_bucket: str | None = None
    max_request_bytes: int = 10_485_760
    retry_after_seconds: int = 5
    sqs_max_attempts: int = 3
    secrets_ttl_seconds: int = 300
    # The time one request may take; on Lambda, the function timeout.
    timeout_seconds: int = 15
    rules: FilterRules = field(default_factory=FilterRules)

    @property
    def fifo(self) -> bool:
        return self.queue_url.endswith(".fifo")

    @property
    def aws_timeouts(self) -> AwsTimeouts:
        return aws_timeouts(self.timeout_seconds, self.sqs_max_attempts, self.calls_per_request)

    @property
    def calls_per_request(self) -> int:
        """AWS calls one request may make: secrets, PutObject (with a bucket), SendMessage."""
        return CALLS_PER_REQUEST + 1 if self.large_payload_bucket else CALLS_PER_REQUEST

    @property
    def max_body_bytes(self) -> int:
        """The largest request body taken: without a bucket, what the queue takes."""
        return self.max_request_bytes if self.large_payload_bucket else self.max_message_bytes

    def __post_init__(self) -> None:
        if not self.queue_url:
            raise ConfigError(f"{PREFIX}QUEUE_URL is required")
        if not _SOURCE_NAME.fullmatch(self.source):
            raise ConfigError(f"{PREFIX}SOURCE must match {_SOURCE_NAME.pattern}")
        if self.api_keys is None and self.signature_scheme is None:
            raise ConfigError(
                f"no authentication configured: set {PREFIX}API_KEYS (or its _SECRET_ID / "
                f"_SSM_PARAMETER form) and/or {PREFIX}SIGNATURE_SCHEME"
            )
        if (self.signature_scheme is None) != (self.signing_secrets is None):
            raise ConfigError(f"{PREFIX}SIGNATURE_SCHEME and {PREFIX}SIGNING_SECRETS go together")
        _check_header_names(self)
        _check_large_payloads(self)
        try:
            aws_timeouts(self.timeout_seconds, self.sqs_max_attempts, self.calls_per_request)
        except ValueError as error:
            raise ConfigError(
                f"{error}: raise {PREFIX}TIMEOUT_SECONDS or lower {PREFIX}SQS_MAX_ATTEMPTS"
            ) from None


def _check_header_names(config: GatewayConfig) -> None:
    names = (
        config.api_key_header,
        *config.forward_headers,
        *config.event_type_headers,
        *config.delivery_id_headers,
    )
    for name in names:
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigError(f"not a lower-case HTTP header name: {name!r}")
    refused = {config.api_key_header, *NEVER_FORWARDED} & set(config.forward_headers)
    if refused:
        raise ConfigError(f"{PREFIX}FORWARD_HEADERS must not name credentials: {sorted(refused)}")


def _check_large_payloads(config: GatewayConfig) -> None:
    bucket = config.large_payload_bucket
    if bucket is not None and not _BUCKET_NAME.fullmatch(bucket):
        raise ConfigError(
            f"{PREFIX}LARGE_PAYLOAD_BUCKET must be an S3 bucket name (3-63 characters: "
            "lower-case letters, digits, dots and hyphens)"
        )
    if config.max_request_bytes < config.max_message_bytes:
        raise ConfigError(f"{PREFIX}MAX_REQUEST_BYTES must not be below {PREFIX}MAX_MESSAGE_BYTES")


def split_secrets(raw: str) -> tuple[str, ...]:
    """One stored value may hold several secrets (rotation), separated by commas or newlines."""
    return tuple(part.strip() for part in _SECRET_SEPARATORS.split(raw) if part.strip())


def load_config(env: Mapping[str, str]) -> GatewayConfig:
    """Build the configuration from `env` (normally os.environ)."""
    reader = _Reader(env)
    scheme = reader.text("SIGNATURE_SCHEME", "").lower()
    if scheme not in _SCHEMES:
        raise ConfigError(f"{PREFIX}SIGNATURE_SCHEME must be github, standard-webhooks or none")
    return GatewayConfig(
        queue_url=reader.text("QUEUE_URL", ""),
        source=reader.text("SOURCE", "webhook"),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        aws_endpoint_url=reader.text("AWS_ENDPOINT_URL", "") or None,
        api_key_header=reader.text("API_KEY_HEADER", "x-api-key").lower(),
        api_keys=reader.secret("API_KEYS"),
        signature_scheme=_SCHEMES[scheme],
        signing_secrets=reader.secret("SIGNING_SECRETS"),
        timestamp_tolerance_seconds=reader.integer("TIMESTAMP_TOLERANCE_SECONDS", 300, 1, 3600),
        forward_headers=reader.names("FORWARD_HEADERS", DEFAULT_FORWARD_HEADERS),
        event_type_headers=reader.names("EVENT_TYPE_HEADERS", ("x-github-event", "x-gitlab-event")),
        event_type_field=reader.path("EVENT_TYPE_FIELD"),
        group_id_field=reader.path("GROUP_ID_FIELD"),
        delivery_id_headers=reader.names(
            "DELIVERY_ID_HEADERS", ("x-github-delivery", "webhook-id")
        ),
        max_message_bytes=reader.integer("MAX_MESSAGE_BYTES", 262_144, 1024, 1_048_576),
        large_payload_bucket=reader.text("LARGE_PAYLOAD_BUCKET", "") or None,
        max_request_bytes=reader.integer("MAX_REQUEST_BYTES", 10_485_760, 1024, 104_857_600),
        retry_after_seconds=reader.integer("RETRY_AFTER_SECONDS", 5, 1, 3600),
        sqs_max_attempts=reader.integer("SQS_MAX_ATTEMPTS", 3, 1, 10),
        secrets_ttl_seconds=reader.integer("SECRETS_TTL_SECONDS", 300, 0, 86_400),
        timeout_seconds=reader.integer("TIMEOUT_SECONDS", 15, 3, 900),
        rules=reader.rules(),
    )


@dataclass(frozen=True)
class _Reader:
    env: Mapping[str, str]

    def text(self, name: str, default: str) -> str:
        return self.env.get(PREFIX + name, default).strip()

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{PREFIX}{name} must be an integer") from None
        if not low <= value <= high:
            raise ConfigError(f"{PREFIX}{name} must be between {low} and {high}")
        return value

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if PREFIX + name not in self.env:
            return default
        return tuple(
            part.strip().lower() for part in self.env[PREFIX + name].split(",") if part.strip()
        )

    def path(self, name: str) -> tuple[str, ...] | None:
        raw = self.text(name, "")
        if not raw:
            return None
        parts = tuple(raw.split("."))
        if any(not part for part in parts):
            raise ConfigError(f"{PREFIX}{name} must be a dotted field path")
        return parts

    def secret(self, name: str) -> SecretSpec | None:
        variable = PREFIX + name
        literal = self.env.get(variable) or None
        secret_id = self.text(name + "_SECRET_ID", "") or None
        ssm_parameter = self.text(name + "_SSM_PARAMETER", "") or None
        if sum(x is not None for x in (literal, secret_id, ssm_parameter)) > 1:
            raise ConfigError(
                f"set only one of {variable}, {variable}_SECRET_ID, {variable}_SSM_PARAMETER"
            )
        if literal is None and secret_id is None and ssm_parameter is None:
            return None
        if literal is not None and not split_secrets(literal):
            raise ConfigError(f"{variable} holds no secret")
        return SecretSpec(variable, literal, secret_id, ssm_parameter)

    def rules(self) -> FilterRules:
        inline = self.text("FILTER_RULES", "")
        path = self.text("FILTER_RULES_FILE", "")
        if inline and path:
            raise ConfigError(f"set only one of {PREFIX}FILTER_RULES and {PREFIX}FILTER_RULES_FILE")
        if path:
            try:
                inline = Path(path).read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigError(
                    f"{PREFIX}FILTER_RULES_FILE cannot be read: {error.strerror}"
                ) from None
        if not inline:
            return FilterRules()
        try:
            return parse_rules(json.loads(inline))
        except ValueError as error:
            raise ConfigError(f"filter rules: {error}") from None
