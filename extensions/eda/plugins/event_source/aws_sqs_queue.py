# Copyright: durable.eda contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""durable.eda.aws_sqs_queue: a durable, drop-in replacement for amazon.aws.aws_sqs_queue."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import functools
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import yaml
from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioDeferredRefreshableCredentials
from aiobotocore.session import AioSession
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

DOCUMENTATION = r"""
---
author:
  - durable.eda contributors (@durable-eda)
version_added: 0.1.0
short_description: Receive events from an AWS SQS queue, deleting each only once the engine has it
requirements:
  - python >= 3.11
  - aiobotocore
description:
  - Long-polls an AWS SQS queue (standard or FIFO) and puts one event per message on the
    ansible-rulebook queue.
  - A drop-in replacement for C(amazon.aws.aws_sqs_queue) and C(ansible.eda.aws_sqs_queue)
    with the same options and event shape, that loses nothing.
  - A message is deleted only after the engine has it, after C(put) returns or, with
    I(feedback=true), after the engine has acknowledged every event made from it. Until then
    a heartbeat keeps it invisible to other consumers, however long it waits.
  - With I(feedback=true), acknowledgements are matched to messages by the message id the
    event carries (C(meta.MessageId)), so event filters may turn one message into several
    events or none. A message that a filter turns into no event is deleted. A message
    whose event the engine could not post (it acknowledges later events but not that one)
    is released, not deleted, so SQS delivers it again and, after the queue's
    C(maxReceiveCount), moves it to the dead-letter queue.
  - Deletes are batched. On shutdown, messages not yet acknowledged are made visible again
    at once, so the next start or another consumer gets them.
  - Throttling, 5xx answers, timeouts and connection errors are retried with exponential
    back-off and jitter, without end. A missing queue, denied access or invalid credentials
    stop the source at once with a message that says what to fix.
  - "The event is C({\"body\": <JSON-decoded body, or the raw string>,
    \"meta\": {\"MessageId\": ..., \"uuid\": ..., \"event\": {\"uuid\": ...},
    \"sqs\": {...}}}). C(meta.event.uuid) is the MessageId, as amazon.aws sets it.
    C(meta.uuid) is derived from the SQS MessageId, so ansible-rulebook's persistence
    recognises a redelivered message.
    C(meta.sqs) holds C(message_id), C(receipt_count), C(sent_at), and where present
    C(message_group_id), C(sequence_number), C(deduplication_id) and C(attributes)
    (message attributes; strings and numbers as values, binary as base64)."
options:
  name:
    description:
      - Name of the queue. One of I(name) and I(queue_url) is required.
    type: str
  queue_url:
    description:
      - URL of the queue, instead of I(name). Its region is used when I(region) is not set.
    type: str
  region:
    description:
      - AWS region of the queue. Defaults to boto's configuration (AWS_REGION,
        AWS_DEFAULT_REGION, the profile).
    type: str
  endpoint_url:
    description:
      - SQS endpoint to use instead of the region's, e.g. a VPC endpoint or a local SQS server.
    type: str
  access_key:
    description:
      - AWS access key id. Without it, boto's default credential chain is used (environment,
        web identity, profile, container or instance role).
    type: str
  secret_key:
    description:
      - AWS secret access key; required with I(access_key).
    type: str
  session_token:
    description:
      - AWS session token for temporary credentials.
    type: str
  profile:
    description:
      - Named profile from the AWS config and credentials files.
    type: str
  role_arn:
    description:
      - IAM role to assume through STS with the credentials otherwise in effect. The assumed
        credentials are refreshed before they expire.
    type: str
  role_session_name:
    description:
      - Session name for I(role_arn).
    type: str
    default: durable-eda
  external_id:
    description:
      - External id for I(role_arn), when the role's trust policy requires one.
    type: str
  queue_owner_aws_account_id:
    description:
      - AWS account id that owns the queue, when it is not the caller's account.
    type: str
  wait_time_seconds:
    description:
      - Long-poll duration of each receive, 0 to 20 seconds.
    type: int
    default: 20
  delay_seconds:
    description:
      - Alias of I(wait_time_seconds), kept for compatibility with amazon.aws.aws_sqs_queue.
    type: int
  max_number_of_messages:
    description:
      - Messages per receive, 1 to 10.
    type: int
    default: 10
  visibility_timeout:
    description:
      - Seconds a received message stays invisible to other consumers, 0 to 43200. A heartbeat
        renews it while the message waits for the engine, so it only bounds how long a message
        stays hidden after the process dies, or stalls (a process silent for longer loses what
        it holds to another consumer, which is a duplicate delivery). 0 disables the heartbeat
        and lets a held message be delivered again at once.
      - The heartbeat renews a message with half of this still to run. A renewal that lands
        after it ran out (retries, a slow link, a starved process) is logged at warning level,
        since another consumer may have received the message meanwhile.
    type: int
    default: 30
  pollers:
    description:
      - Number of concurrent receive loops, 1 to 10. More than one helps only on deep queues
        or high-latency links.
    type: int
    default: 1
  feedback:
    description:
      - Delete a message only after ansible-rulebook acknowledges the event (ansible-rulebook
        1.3 or later, started with C(--persistence-id)). With persistence, that is after the
        event is stored, so nothing is lost even when the process is killed.
    type: bool
    default: false
  feedback_timeout:
    description:
      - Seconds a message may wait for the engine's acknowledgement before the source logs a
        warning with its age, repeated every I(feedback_timeout) seconds while it waits.
        Never fatal. A busy engine withholds acknowledgements while more than 10 actions
        are queued, and the message stays held, its visibility renewed, until it is
        acknowledged.
    type: float
    default: 120
  large_payloads:
    description:
      - "Fetch message bodies that producers stored in S3 with the Amazon SQS Extended Client
        format (a body of C([\"software.amazon.payloadoffloading.PayloadS3Pointer\",
        {\"s3BucketName\": ..., \"s3Key\": ...}])), so the event is the same as for an
        inline body. C(meta.sqs.large_payload) then names the bucket and key."
      - A pointer whose object cannot be read (missing, access denied) is logged as an
        error for that message, which is neither handed over nor deleted. It comes back
        after its visibility timeout and moves to the dead-letter queue after the queue's
        C(maxReceiveCount).
      - Off, a pointer reaches the rulebook as the list it is, as with amazon.aws.
      - Needs C(s3:GetObject) on the bucket (and C(kms:Decrypt) for an encrypted bucket).
    type: bool
    default: false
  delete_large_payloads:
    description:
      - With I(large_payloads), delete the S3 object once its message has been deleted
        (needs C(s3:DeleteObject)). A failed delete is logged and the object kept; a bucket
        lifecycle rule is the backstop.
    type: bool
    default: false
  s3_endpoint_url:
    description:
      - S3 endpoint for I(large_payloads) instead of the region's, e.g. a local S3 server.
    type: str
  eda_feedback_queue:
    description:
      - Set by ansible-rulebook when I(feedback) is true; never set it in a rulebook.
    type: raw
"""

EXAMPLES = r"""
- name: Remediate failures reported through SQS
  hosts: all
  sources:
    - durable.eda.aws_sqs_queue:
        name: eda-events
        region: us-east-1
  rules:
    - name: Print every event
      condition: event.body is defined
      action:
        print_event:

- name: Durable mode, a message is deleted once the engine has persisted its event
  hosts: all
  sources:
    - durable.eda.aws_sqs_queue:
        queue_url: https://sqs.eu-west-1.amazonaws.com/123456789012/eda-events.fifo
        role_arn: arn:aws:iam::123456789012:role/eda-consumer
        feedback: true
  rules:
    - name: Restart a failed service
      condition: event.body.status == "failed"
      action:
        run_playbook:
          name: playbooks/restart_service.yml
"""

# The plugin is loaded with runpy, where __name__ is "<run_path>"; a fixed name lets users
# configure this logger.
LOG = logging.getLogger("durable.eda.aws_sqs_queue")

SQS_BATCH_LIMIT = 10
BATCH_LINGER_SECONDS = 0.1
FIFO_HELD_WAIT_SECONDS = 1
SHUTDOWN_GRACE_SECONDS = 5.0
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 20.0

VALID_OPTIONS = frozenset(yaml.safe_load(DOCUMENTATION)["options"])
# ansible-rulebook passes the options through Jinja and from -E environment variables, so
# numbers and booleans may arrive as strings.
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})

T = TypeVar("T")


class ConfigError(ValueError):
    """A rulebook option is missing, unknown or out of range."""


class FatalSQSError(RuntimeError):
    """An SQS error that retrying cannot fix: a missing queue, denied access, bad credentials."""


@dataclass(frozen=True)
class Config:
    """The plugin's options, validated once before anything connects."""

    name: str | None = None
    queue_url: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    role_arn: str | None = None
    role_session_name: str = "durable-eda"
    external_id: str | None = field(default=None, repr=False)
    queue_owner_aws_account_id: str | None = None
    wait_time_seconds: int = 20
    max_number_of_messages: int = 10
    visibility_timeout: int = 30
    pollers: int = 1
    feedback: bool = False
    feedback_timeout: float = 120.0
    large_payloads: bool = False
    delete_large_payloads: bool = False
    s3_endpoint_url: str | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> Config:
        unknown = sorted(set(args) - VALID_OPTIONS)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for durable.eda.aws_sqs_queue; "
                f"valid options are: {', '.join(sorted(VALID_OPTIONS - {'eda_feedback_queue'}))}"
            )
        config = cls(
            name=_text(args, "name"),
            queue_url=_text(args, "queue_url"),
            region=_text(args, "region") or _region_of(_text(args, "queue_url")),
            endpoint_url=_text(args, "endpoint_url"),
            access_key=_text(args, "access_key"),
            secret_key=_text(args, "secret_key"),
            session_token=_text(args, "session_token"),
            profile=_text(args, "profile"),
            role_arn=_text(args, "role_arn"),
            role_session_name=_text(args, "role_session_name") or "durable-eda",
            external_id=_text(args, "external_id"),
            queue_owner_aws_account_id=_text(args, "queue_owner_aws_account_id"),
            wait_time_seconds=_wait_time(args),
            max_number_of_messages=_integer(args, "max_number_of_messages", 10, 1, 10),
            visibility_timeout=_integer(args, "visibility_timeout", 30, 0, 43200),
            pollers=_integer(args, "pollers", 1, 1, 10),
            feedback=_boolean(args, "feedback"),
            feedback_timeout=_positive_number(args, "feedback_timeout", 120.0),
            large_payloads=_boolean(args, "large_payloads"),
            delete_large_payloads=_boolean(args, "delete_large_payloads"),
            s3_endpoint_url=_text(args, "s3_endpoint_url"),
        )
        config._check_combinations(args)
        return config

    def _check_combinations(self, args: Mapping[str, Any]) -> None:
        if (self.name is None) == (self.queue_url is None):
            raise ConfigError("set exactly one of the options 'name' and 'queue_url'")
        if (self.access_key is None) != (self.secret_key is None):
            raise ConfigError("'access_key' and 'secret_key' must be set together")
        if self.session_token and not self.access_key:
            raise ConfigError("'session_token' needs 'access_key' and 'secret_key'")
        if self.profile and self.access_key:
            raise ConfigError("set either 'profile' or 'access_key'/'secret_key', not both")
        if (self.external_id or _text(args, "role_session_name")) and not self.role_arn:
            raise ConfigError("'external_id' and 'role_session_name' need 'role_arn'")
        if (self.delete_large_payloads or self.s3_endpoint_url) and not self.large_payloads:
            raise ConfigError("'delete_large_payloads' and 's3_endpoint_url' need 'large_payloads'")
        if self.feedback and args.get("eda_feedback_queue") is None:
            raise ConfigError(
                "'feedback: true' needs ansible-rulebook 1.3.0 or later, which passes the "
                "feedback queue; upgrade ansible-rulebook, or remove 'feedback'"
            )

    @property
    def queue_label(self) -> str:
        return self.queue_url or str(self.name)

    def secrets(self) -> tuple[str, ...]:
        values = (self.secret_key, self.session_token, self.access_key, self.external_id)
        return tuple(value for value in values if value)


def _given(args: Mapping[str, Any], option: str) -> bool:
    """A rulebook renders an option it does not set as null, e.g. `{{ x | default(none) }}`."""
    return args.get(option) not in (None, "")


def _text(args: Mapping[str, Any], option: str) -> str | None:
    if not _given(args, option):
        return None
    value = args[option]
    if not isinstance(value, str):
        raise ConfigError(f"option '{option}' must be a string, got {type(value).__name__}")
    return value


def _integer(args: Mapping[str, Any], option: str, default: int, low: int, high: int) -> int:
    value = args[option] if _given(args, option) else default
    if isinstance(value, bool):
        raise ConfigError(f"option '{option}' must be an integer from {low} to {high}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"option '{option}' must be an integer from {low} to {high}, got {value!r}"
        ) from None
    if not low <= number <= high:
        raise ConfigError(f"option '{option}' must be from {low} to {high}, got {number}")
    return number


def _wait_time(args: Mapping[str, Any]) -> int:
    if _given(args, "delay_seconds") and _given(args, "wait_time_seconds"):
        raise ConfigError("'delay_seconds' is an alias of 'wait_time_seconds': set only one")
    option = "delay_seconds" if _given(args, "delay_seconds") else "wait_time_seconds"
    return _integer(args, option, 20, 0, 20)


def _boolean(args: Mapping[str, Any], option: str) -> bool:
    value = args[option] if _given(args, option) else False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ConfigError(f"option '{option}' must be true or false, got {value!r}")


def _positive_number(args: Mapping[str, Any], option: str, default: float) -> float:
    value = args[option] if _given(args, option) else default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option '{option}' must be a number of seconds, got {value!r}") from None
    if number <= 0 or isinstance(value, bool):
        raise ConfigError(f"option '{option}' must be a positive number of seconds, got {value!r}")
    return number


def _region_of(queue_url: str | None) -> str | None:
    """The region in a standard SQS URL such as https://sqs.eu-west-1.amazonaws.com/1/q."""
    if not queue_url:
        return None
    host = queue_url.split("://", 1)[-1].split("/", 1)[0]
    parts = host.split(".")
    if len(parts) >= 4 and parts[0] == "sqs" and parts[2] == "amazonaws":
        return parts[1]
    return None


# ---------------------------------------------------------------------------------------
# Errors: what is worth retrying, and what to tell the user otherwise.

_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMS.ThrottlingException",
        "KmsThrottled",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)
_QUEUE_MISSING_CODES = frozenset(
    {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NonExistentQueue"}
)
_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "KMS.AccessDeniedException", "KmsAccessDenied"}
)
_BAD_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeyId",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)
_NETWORK_ERRORS = (
    HTTPClientError,
    EndpointConnectionError,
    ConnectionClosedError,
    ReadTimeoutError,
    ConnectTimeoutError,
    TimeoutError,
    ConnectionError,
)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(exc) in _TRANSIENT_CODES or status >= 500 or status == 429
    return isinstance(exc, _NETWORK_ERRORS)


def describe_fatal(exc: BaseException, config: Config) -> str:
    """One message that says what went wrong and what to change."""
    where = f"SQS queue '{config.queue_label}' (region {config.region or 'from AWS config'})"
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            f"no usable AWS credentials for {where}: set access_key/secret_key, profile, "
            "role_arn, or the AWS_* environment variables"
        )
    if isinstance(exc, ProfileNotFound):
        return f"AWS profile '{config.profile}' not found: check the 'profile' option"
    if isinstance(exc, NoRegionError):
        return f"no AWS region for {where}: set the 'region' option or AWS_DEFAULT_REGION"
    if not isinstance(exc, ClientError):
        return f"{where}: {type(exc).__name__}: {exc}"
    code = error_code(exc)
    detail = exc.response.get("Error", {}).get("Message", "") or str(exc)
    if code in _QUEUE_MISSING_CODES:
        return (
            f"{where} does not exist ({code}): create it, or correct name/queue_url, region, "
            "queue_owner_aws_account_id or endpoint_url"
        )
    if code in _DENIED_CODES:
        return (
            f"access denied to {where} ({code}: {detail}): grant sqs:ReceiveMessage, "
            "sqs:DeleteMessage, sqs:ChangeMessageVisibility, sqs:GetQueueUrl and "
            "sqs:GetQueueAttributes (and kms:Decrypt for an encrypted queue, sts:AssumeRole "
            "for role_arn)"
        )
    if code in _BAD_CREDENTIAL_CODES:
        return (
            f"AWS rejected the credentials used for {where} ({code}: {detail}): check "
            "access_key/secret_key/session_token, profile or role_arn"
        )
    return f"{where}: {code or type(exc).__name__}: {detail}"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "********")
    return text


@dataclass
class Backoff:
    """Exponential back-off with jitter, so many consumers do not retry in step."""

    attempt: int = 0

    def next_delay(self) -> float:
        # The exponent stops growing long before the cap: 2.0**1024 overflows, and an SQS
        # outage of a few hours is that many retries.
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** min(self.attempt, 64))
        self.attempt += 1
        return ceiling / 2 + random.uniform(0, ceiling / 2)


async def with_retry(
    operation: str,
    call: Callable[[], Awaitable[T]],
    config: Config,
    explain: Callable[[BaseException], str] | None = None,
) -> T:
    """Run one AWS call, retrying transient failures without end; raise the rest, explained
    (by `explain`, or as an error about the queue)."""
    backoff = Backoff()
    while True:
        try:
            return await call()
        except (ClientError, BotoCoreError, OSError, TimeoutError) as exc:
            if not is_transient(exc):
                reason = explain(exc) if explain else describe_fatal(exc, config)
                raise FatalSQSError(redact(reason, config.secrets())) from None
            delay = backoff.next_delay()
            LOG.warning(
                "SQS %s failed (%s); retrying in %.1f s",
                operation,
                redact(_cause(exc), config.secrets()),
                delay,
            )
            await asyncio.sleep(delay)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        return (
            f"HTTP {status} {error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
        )
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------
# Events


def decode_body(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        LOG.debug("message body is not JSON; passing it on as a string")
        return body


def stable_uuid(message_id: str) -> str:
    """SQS message ids are UUIDs already; anything else is mapped to one deterministically."""
    try:
        return str(uuid.UUID(message_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"aws-sqs:{message_id}"))


def _attribute_value(attribute: Mapping[str, Any]) -> Any:
    data_type = str(attribute.get("DataType", "String"))
    if data_type.startswith("Binary"):
        return base64.b64encode(attribute.get("BinaryValue", b"")).decode("ascii")
    text = str(attribute.get("StringValue", ""))
    if data_type.startswith("Number"):
        with contextlib.suppress(ValueError):
            return int(text)
        with contextlib.suppress(ValueError):
            return float(text)
    return text


def sqs_meta(message: Mapping[str, Any]) -> dict[str, Any]:
    system = message.get("Attributes", {})
    meta: dict[str, Any] = {"message_id": message["MessageId"]}
    if "ApproximateReceiveCount" in system:
        meta["receipt_count"] = int(system["ApproximateReceiveCount"])
    if "SentTimestamp" in system:
        sent = datetime.fromtimestamp(int(system["SentTimestamp"]) / 1000, tz=UTC)
        meta["sent_at"] = sent.isoformat(timespec="milliseconds")
    for key, name in (
        ("MessageGroupId", "message_group_id"),
        ("SequenceNumber", "sequence_number"),
        ("MessageDeduplicationId", "deduplication_id"),
    ):
        if key in system:
            meta[name] = system[key]
    attributes = message.get("MessageAttributes")
    if attributes:
        meta["attributes"] = {k: _attribute_value(v) for k, v in attributes.items()}
    pointer = message.get("LargePayload")
    if isinstance(pointer, PayloadPointer):
        meta["large_payload"] = {"bucket": pointer.bucket, "key": pointer.key}
    return meta


PAYLOAD_POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404"})


@dataclass(frozen=True)
class PayloadPointer:
    """Where the Amazon SQS Extended Client put a message's body."""

    bucket: str
    key: str

    @classmethod
    def of(cls, body: str) -> PayloadPointer | None:
        if PAYLOAD_POINTER_CLASS not in body:
            return None
        try:
            decoded = json.loads(body)
        except ValueError:
            return None
        if not (isinstance(decoded, list) and len(decoded) == 2):
            return None
        kind, where = decoded
        if kind != PAYLOAD_POINTER_CLASS or not isinstance(where, dict):
            return None
        bucket, key = where.get("s3BucketName"), where.get("s3Key")
        if isinstance(bucket, str) and isinstance(key, str) and bucket and key:
            return cls(bucket, key)
        return None

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def describe_error(self, exc: BaseException) -> str:
        if not isinstance(exc, ClientError):
            return f"{self}: {type(exc).__name__}: {exc}"
        code = error_code(exc)
        if code in _MISSING_OBJECT_CODES:
            return f"{self} does not exist ({code})"
        if code in _DENIED_CODES or code == "403":
            return f"access denied to {self} ({code}): grant s3:GetObject (and kms:Decrypt)"
        return f"{self}: {code}: {exc.response.get('Error', {}).get('Message', '')}"


def build_event(message: Mapping[str, Any]) -> dict[str, Any]:
    message_id = str(message["MessageId"])
    return {
        "body": decode_body(str(message.get("Body", ""))),
        "meta": {
            "MessageId": message_id,
            "uuid": stable_uuid(message_id),
            # Where amazon.aws's plugin puts the id: rulebooks written for it read it there.
            "event": {"uuid": message_id},
            "sqs": sqs_meta(message),
        },
    }


def message_id_of(event: Any) -> str | None:
    """The SQS message an event came from; an acknowledgement carries the event."""
    meta = event.get("meta") if isinstance(event, dict) else None
    if not isinstance(meta, dict):
        return None
    message_id = meta.get("MessageId")
    if message_id is None and isinstance(meta.get("sqs"), dict):
        message_id = meta["sqs"].get("message_id")
    return None if message_id is None else str(message_id)


# ---------------------------------------------------------------------------------------
# Leases: the messages this process holds, received but not yet deleted.


@dataclass
class Lease:
    receipt_handle: str
    visible_at: float
    acknowledged: bool = False
    payload: PayloadPointer | None = None


@dataclass
class Leases:
    visibility_timeout: int
    held: dict[str, Lease] = field(default_factory=dict)

    def take(self, message: Mapping[str, Any]) -> bool:
        """Hold a received message; False if it is held already (a duplicate delivery)."""
        message_id = str(message["MessageId"])
        lease = self.held.get(message_id)
        handle = str(message["ReceiptHandle"])
        if lease is not None:
            lease.receipt_handle = handle  # SQS wants the newest handle
            return False
        self.held[message_id] = Lease(handle, time.monotonic() + self.visibility_timeout)
        return True

    def acknowledge(self, message_id: str) -> None:
        if message_id in self.held:
            self.held[message_id].acknowledged = True

    def handles(self, message_ids: list[str]) -> list[tuple[str, str]]:
        return [(m, self.held[m].receipt_handle) for m in message_ids if m in self.held]

    def due_for_renewal(self) -> list[str]:
        # Renewed with half its visibility timeout still to run, at the latest: a renewal
        # held up by retries, a slow link or a starved process has that long to land.
        horizon = time.monotonic() + self.visibility_timeout * 2 / 3
        return [m for m, lease in self.held.items() if lease.visible_at <= horizon]

    def renewed(self, message_id: str, requested_at: float) -> float:
        """Hidden again from `requested_at` (SQS took the renewal after it was asked for).

        Returns for how long the visibility may have run out before the renewal landed:
        0 if it landed in time, else another consumer may have received the message.
        """
        lease = self.held.get(message_id)
        if lease is None:
            return 0.0
        lapsed = max(0.0, time.monotonic() - lease.visible_at)
        lease.visible_at = requested_at + self.visibility_timeout
        return lapsed

    def unacknowledged(self) -> list[str]:
        return [m for m, lease in self.held.items() if not lease.acknowledged]

    def acknowledged(self) -> list[str]:
        return [m for m, lease in self.held.items() if lease.acknowledged]

    def drop(self, message_id: str) -> None:
        self.held.pop(message_id, None)


def chunks(items: list[T], size: int = SQS_BATCH_LIMIT) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------------------
# Deliveries: which messages the engine has finished with (feedback mode).


class Verdict(enum.Enum):
    DONE = "done"  # every event it made was acknowledged (or it made none): delete it
    SKIPPED = "skipped"  # the engine went past an event of it unacknowledged: release it


@dataclass
class Delivery:
    handed_at: float
    events: int | None = None  # unknown until every event made from it reached the engine
    acknowledged: int = 0

    @property
    def complete(self) -> bool:
        return self.events is not None and self.acknowledged >= self.events


@dataclass
class Deliveries:
    """Messages handed to the engine whose events it has not all acknowledged yet.

    ansible-rulebook takes a ruleset's events one at a time and acknowledges each, in that
    order, with the event itself: an acknowledgement is matched to its message by the
    message id the event carries, never by counting. An acknowledgement for a later message
    proves the engine is done with every earlier one, so an earlier message still short of
    acknowledgements had an event the engine could not post.
    """

    awaiting: dict[str, Delivery] = field(default_factory=dict)

    def handing(self, message_id: str) -> None:
        # A message redelivered after its lease was lost goes to the end, where the engine
        # will take its event.
        self.awaiting.pop(message_id, None)
        self.awaiting[message_id] = Delivery(handed_at=time.monotonic())

    def handed(self, message_id: str, events: int) -> list[tuple[str, Verdict]]:
        """Record how many events reached the engine; a message that made none is done."""
        delivery = self.awaiting[message_id]
        delivery.events = events
        if not delivery.complete:
            return []
        # Earlier messages may still be in the engine: this one proves nothing about them.
        del self.awaiting[message_id]
        return [(message_id, Verdict.DONE)]

    def acknowledge(self, acknowledgement: Any) -> list[tuple[str, Verdict]]:
        message_id = message_id_of(acknowledgement)
        if message_id is None and self.awaiting:
            # A filter removed the id; the engine's order still tells whose event it was.
            message_id = next(iter(self.awaiting))
        if message_id not in self.awaiting:
            LOG.warning("acknowledgement for SQS message %s, which is not awaiting one", message_id)
            return []
        self.awaiting[message_id].acknowledged += 1
        return self._conclude_through(message_id)

    def _conclude_through(self, message_id: str) -> list[tuple[str, Verdict]]:
        verdicts = []
        for earlier, delivery in list(self.awaiting.items()):
            if earlier == message_id:
                if delivery.complete:
                    del self.awaiting[earlier]
                    verdicts.append((earlier, Verdict.DONE))
                return verdicts
            del self.awaiting[earlier]
            verdicts.append((earlier, Verdict.DONE if delivery.complete else Verdict.SKIPPED))
        return verdicts

    def waiting_longer_than(self, seconds: float) -> list[tuple[str, float]]:
        now = time.monotonic()
        ages = ((m, now - delivery.handed_at) for m, delivery in self.awaiting.items())
        return [(m, age) for m, age in ages if age >= seconds]


class _CountingQueue:
    """The engine's queue, counting the events that reach it."""

    def __init__(self, engine_queue: Any) -> None:
        self.engine_queue = engine_queue
        self.count = 0

    async def put(self, event: Any) -> None:
        await self.engine_queue.put(event)
        if event:  # the engine skips an empty event and sends no acknowledgement for it
            self.count += 1


class EngineInlet:
    """Hands an event to ansible-rulebook and tells how many events reached the engine.

    Event filters run inside the queue's put and may turn one event into several, or none.
    ansible-rulebook's FilteredQueue keeps its filters and the engine's queue as attributes:
    the same filters, run over a counting view of the same queue, say how many
    acknowledgements a message will get. Any other queue takes one event per put.
    """

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.counter: _CountingQueue | None = None
        filters, engine_queue = getattr(queue, "filters", None), getattr(queue, "queue", None)
        if isinstance(filters, list) and engine_queue is not None:
            counter = _CountingQueue(engine_queue)
            try:
                self.queue = type(queue)(filters, counter)
            except TypeError:
                LOG.warning("unknown ansible-rulebook queue; assuming one event per message")
            else:
                self.counter = counter

    async def put(self, event: dict[str, Any]) -> int:
        if self.counter is None:
            await self.queue.put(event)
            return 1
        before = self.counter.count
        await self.queue.put(event)
        return self.counter.count - before


# ---------------------------------------------------------------------------------------
# Batch calls on held messages


@dataclass(frozen=True)
class BatchAction:
    """A batch call on held messages, and what its success means for their leases."""

    verb: str
    operation: str
    method: str
    ends_lease: bool
    visibility_timeout: int | None = None

    def entry(self, index: int, receipt_handle: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": str(index), "ReceiptHandle": receipt_handle}
        if self.visibility_timeout is not None:
            entry["VisibilityTimeout"] = self.visibility_timeout
        return entry


# The engine has the message: it is gone for good.
DELETE = BatchAction("delete", "DeleteMessageBatch", "delete_message_batch", ends_lease=True)
# The engine does not have it: visible again at once, for this or another consumer.
RELEASE = BatchAction(
    "release",
    "ChangeMessageVisibilityBatch",
    "change_message_visibility_batch",
    ends_lease=True,
    visibility_timeout=0,
)


def renewal(visibility_timeout: int) -> BatchAction:
    """Still waiting for the engine: hidden for another visibility timeout."""
    return BatchAction(
        "renew",
        "ChangeMessageVisibilityBatch",
        "change_message_visibility_batch",
        ends_lease=False,
        visibility_timeout=visibility_timeout,
    )


# ---------------------------------------------------------------------------------------
# The source


class SQSSource:
    """Receive loops, a dispatcher, batched deletes and releases, and a visibility heartbeat."""

    def __init__(self, client: Any, queue_url: str, config: Config, s3: Any = None) -> None:
        self.client = client
        self.s3 = s3
        self.queue_url = queue_url
        self.config = config
        self.fifo = queue_url.endswith(".fifo")
        self.leases = Leases(config.visibility_timeout)
        self.deliveries = Deliveries()
        self.renew = renewal(config.visibility_timeout)
        self.ready: asyncio.Queue[dict[str, Any]] = asyncio.Queue(config.max_number_of_messages)
        self.to_delete: asyncio.Queue[str] = asyncio.Queue()
        self.to_release: asyncio.Queue[str] = asyncio.Queue()

    async def run(self, queue: Any, feedback: asyncio.Queue[Any] | None) -> None:
        jobs = [self.poll() for _poller in range(self.config.pollers)]
        jobs += [
            self.dispatch(EngineInlet(queue), awaits_acknowledgement=feedback is not None),
            self.send_batches(DELETE, self.to_delete),
            self.send_batches(RELEASE, self.to_release),
        ]
        if feedback is not None:
            jobs += [self.collect_acknowledgements(feedback), self.report_overdue()]
        if self.config.visibility_timeout > 0:
            jobs.append(self.heartbeat())
        tasks = [asyncio.create_task(job) for job in jobs]
        try:
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.settle()

    # Receiving -----------------------------------------------------------------------

    async def poll(self) -> None:
        while True:
            for message in self.hold(await self.receive()):
                inlined = await self.inline_payload(message) if self.s3 is not None else message
                if inlined is not None:
                    await self.ready.put(inlined)

    def hold(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Lease a whole batch as it arrives; the messages not held already.

        The batch then waits while the engine is busy, for minutes with a slow engine: only
        a held message is renewed, and one that is not comes back to other consumers.
        """
        fresh = []
        for message in messages:
            if self.leases.take(message):
                fresh.append(message)
            else:
                LOG.debug("message %s delivered twice while held; kept once", message["MessageId"])
        return fresh

    async def inline_payload(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """The message with its S3-stored body fetched; None if that body cannot be read."""
        pointer = PayloadPointer.of(str(message.get("Body", "")))
        if pointer is None:
            return message
        message_id = str(message["MessageId"])
        try:
            body = await with_retry(
                "GetObject",
                functools.partial(self._read_object, pointer),
                self.config,
                explain=pointer.describe_error,
            )
        except FatalSQSError as exc:
            LOG.error(
                "SQS message %s: its body in %s cannot be read (%s); the message is not "
                "deleted: it comes back after its visibility timeout, and goes to the "
                "dead-letter queue after the queue's maxReceiveCount",
                message_id,
                pointer,
                exc,
            )
            # Not released: its visibility timeout paces the retries.
            self.leases.drop(message_id)
            return None
        self.leases.held[message_id].payload = pointer
        return {**message, "Body": body, "LargePayload": pointer}

    async def _read_object(self, pointer: PayloadPointer) -> str:
        reply = await self.s3.get_object(Bucket=pointer.bucket, Key=pointer.key)
        async with reply["Body"] as stream:
            data: bytes = await stream.read()
        # SQS bodies are text; a byte that is not UTF-8 must not stop the source.
        return data.decode("utf-8", errors="replace")

    async def receive(self) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MaxNumberOfMessages": self.config.max_number_of_messages,
            "WaitTimeSeconds": self.wait_time(),
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
            "VisibilityTimeout": self.config.visibility_timeout,
        }
        if self.fifo:
            # A retried receive with the same attempt id returns the same messages, so a
            # lost response cannot leave a FIFO group blocked or reordered.
            request["ReceiveRequestAttemptId"] = uuid.uuid4().hex
        reply = await with_retry(
            "ReceiveMessage", lambda: self.client.receive_message(**request), self.config
        )
        messages: list[dict[str, Any]] = reply.get("Messages", [])
        return messages

    def wait_time(self) -> int:
        """The long poll, shortened while this process holds FIFO messages.

        moto's FIFO long poll notes the busy message groups when it starts and does not see
        them free up, so a poll begun while we hold a group's messages sleeps its whole
        wait. Real SQS answers as soon as a group frees up; a short poll costs it only the
        requests made while this process holds messages and the queue has none for it.
        """
        if self.fifo and self.leases.held:
            return min(self.config.wait_time_seconds, FIFO_HELD_WAIT_SECONDS)
        return self.config.wait_time_seconds

    # Handing events to the engine ----------------------------------------------------

    async def dispatch(self, inlet: EngineInlet, awaits_acknowledgement: bool) -> None:
        """Hand over one message at a time; the engine's queue of one is the back-pressure."""
        while True:
            message = await self.ready.get()
            message_id = str(message["MessageId"])
            if awaits_acknowledgement:
                self.deliveries.handing(message_id)
            events = await inlet.put(build_event(message))
            if awaits_acknowledgement:
                self.conclude(self.deliveries.handed(message_id, events))
            else:
                self.conclude([(message_id, Verdict.DONE)])

    async def collect_acknowledgements(self, feedback: asyncio.Queue[Any]) -> None:
        # Taken at once, whatever happens next: the engine waits on a queue of one.
        while True:
            self.conclude(self.deliveries.acknowledge(await feedback.get()))

    def conclude(self, verdicts: list[tuple[str, Verdict]]) -> None:
        for message_id, verdict in verdicts:
            if verdict is Verdict.DONE:
                self.leases.acknowledge(message_id)
                self.to_delete.put_nowait(message_id)
            else:
                LOG.warning(
                    "the engine acknowledged later events but not every event of SQS message "
                    "%s (posting it failed); released for redelivery, and to the dead-letter "
                    "queue after the queue's maxReceiveCount",
                    message_id,
                )
                self.to_release.put_nowait(message_id)

    async def report_overdue(self) -> None:
        interval = self.config.feedback_timeout
        while True:
            await asyncio.sleep(interval)
            for message_id, age in self.deliveries.waiting_longer_than(interval):
                LOG.warning(
                    "SQS message %s has waited %.0f s for the engine's acknowledgement "
                    "(the engine holds acknowledgements while more than 10 actions are queued); "
                    "it stays held and is deleted once acknowledged",
                    message_id,
                    age,
                )

    # Deleting and releasing ----------------------------------------------------------

    async def send_batches(self, action: BatchAction, pending: asyncio.Queue[str]) -> None:
        while True:
            batch = [await pending.get()]
            await self.linger(pending, batch)
            await self.apply(action, batch)

    async def linger(self, pending: asyncio.Queue[str], batch: list[str]) -> None:
        """Gather up to a full batch, but never hold a batch back while idle."""
        deadline = time.monotonic() + BATCH_LINGER_SECONDS
        while len(batch) < SQS_BATCH_LIMIT:
            if pending.empty() and self.ready.empty():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    batch.append(await pending.get())
            except TimeoutError:
                return

    async def apply(self, action: BatchAction, message_ids: list[str]) -> None:
        """Apply `action` to up to 10 held messages; what SQS failed on its side is retried."""
        backoff = Backoff()
        while True:
            held = self.leases.handles(message_ids)
            if not held:
                return
            requested_at = time.monotonic()
            reply = await with_retry(
                action.operation, functools.partial(self._call, action, held), self.config
            )
            deleted_payloads = self._payloads_of(action, held)
            ids = [message_id for message_id, _handle in held]
            failed = self._settle_batch(action, ids, reply, requested_at)
            await self.delete_payloads([p for m, p in deleted_payloads if m not in failed])
            if not failed:
                return
            delay = backoff.next_delay()
            LOG.warning(
                "SQS %s failed for %d of %d messages (%s); retrying them in %.1f s",
                action.operation,
                len(failed),
                len(held),
                ", ".join(sorted(set(failed.values()))),
                delay,
            )
            await asyncio.sleep(delay)
            message_ids = list(failed)

    def _payloads_of(
        self, action: BatchAction, held: list[tuple[str, str]]
    ) -> list[tuple[str, PayloadPointer]]:
        if action is not DELETE or not self.config.delete_large_payloads:
            return []
        leases = ((m, self.leases.held[m].payload) for m, _handle in held)
        return [(m, payload) for m, payload in leases if payload is not None]

    async def delete_payloads(self, pointers: list[PayloadPointer]) -> None:
        for pointer in pointers:
            try:
                await with_retry(
                    "DeleteObject",
                    functools.partial(
                        self.s3.delete_object, Bucket=pointer.bucket, Key=pointer.key
                    ),
                    self.config,
                    explain=pointer.describe_error,
                )
            except FatalSQSError as exc:
                LOG.warning("could not delete the large payload %s (%s); kept", pointer, exc)

    def _call(self, action: BatchAction, held: list[tuple[str, str]]) -> Awaitable[Any]:
        entries = [action.entry(index, handle) for index, (_message_id, handle) in enumerate(held)]
        call: Callable[..., Awaitable[Any]] = getattr(self.client, action.method)
        return call(QueueUrl=self.queue_url, Entries=entries)

    def _settle_batch(
        self, action: BatchAction, ids: list[str], reply: Mapping[str, Any], requested_at: float
    ) -> dict[str, str]:
        """Update leases from a batch reply; return the ids SQS failed on its side, with codes."""
        failures = {int(f["Id"]): f for f in reply.get("Failed") or []}
        retry: dict[str, str] = {}
        lapsed: list[float] = []
        for index, message_id in enumerate(ids):
            failure = failures.get(index)
            if failure is None:
                if action.ends_lease:
                    self.leases.drop(message_id)
                else:
                    lapsed.append(self.leases.renewed(message_id, requested_at))
            elif not failure.get("SenderFault"):
                retry[message_id] = str(failure.get("Code", "unknown"))
            else:
                self._refused(action, message_id, str(failure.get("Code")))
        self._warn_of_lapsed_leases([seconds for seconds in lapsed if seconds > 0])
        return retry

    def _warn_of_lapsed_leases(self, lapsed: list[float]) -> None:
        # SQS accepts a late renewal unless another consumer has received the message since,
        # so a lease that ran out is otherwise silent.
        if lapsed:
            LOG.warning(
                "renewed %d held messages up to %.1f s after their visibility timeout ran "
                "out; another consumer may have received them meanwhile (a duplicate "
                "delivery). Renewals take longer than visibility_timeout=%d allows: raise it, "
                "or give this process more CPU or a faster link to SQS",
                len(lapsed),
                max(lapsed),
                self.config.visibility_timeout,
            )

    def _refused(self, action: BatchAction, message_id: str, code: str) -> None:
        lease = self.leases.held.get(message_id)
        if lease is None:
            return
        if not action.ends_lease and lease.acknowledged:
            # A renewal racing the message's own delete: the delete decides its fate.
            LOG.debug(
                "renewal of message %s refused (%s) while it is being deleted", message_id, code
            )
            return
        LOG.warning(
            "SQS refused to %s message %s (%s); it may be delivered again",
            action.verb,
            message_id,
            code,
        )
        self.leases.drop(message_id)

    # Keeping held messages invisible -------------------------------------------------

    async def heartbeat(self) -> None:
        interval = max(0.5, self.config.visibility_timeout / 6)
        while True:
            await asyncio.sleep(interval)
            for batch in chunks(self.leases.due_for_renewal()):
                await self.apply(self.renew, batch)

    # Stopping ------------------------------------------------------------------------

    async def settle(self) -> None:
        """Delete what the engine has, release what it has not, in a bounded time."""
        acknowledged = self.leases.acknowledged()
        unacknowledged = self.leases.unacknowledged()
        if not (acknowledged or unacknowledged):
            return
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
                for batch in chunks(acknowledged):
                    await self.apply(DELETE, batch)
                for batch in chunks(unacknowledged):
                    await self.apply(RELEASE, batch)
        except (TimeoutError, FatalSQSError) as exc:
            LOG.warning(
                "could not settle %d held messages on stop (%s); they return to the queue "
                "when their visibility timeout expires",
                len(self.leases.held),
                str(exc) or type(exc).__name__,
            )
        else:
            LOG.info(
                "stopped: deleted %d acknowledged and released %d unacknowledged messages",
                len(acknowledged),
                len(unacknowledged),
            )


# ---------------------------------------------------------------------------------------
# Connecting


def create_session(config: Config) -> AioSession:
    session = AioSession(profile=config.profile)
    if config.access_key and config.secret_key:
        session.set_credentials(config.access_key, config.secret_key, config.session_token)
    if config.role_arn:
        assumed = AioSession()
        # botocore has no public setter for refreshable credentials; this is how its own
        # assume-role provider installs them.
        assumed._credentials = assumed_role_credentials(session, config)  # type: ignore[attr-defined]
        return assumed
    return session


def assumed_role_credentials(
    source: AioSession, config: Config
) -> AioDeferredRefreshableCredentials:
    async def refresh() -> dict[str, str]:
        request: dict[str, Any] = {
            "RoleArn": config.role_arn,
            "RoleSessionName": config.role_session_name,
        }
        if config.external_id:
            request["ExternalId"] = config.external_id
        async with source.create_client("sts", region_name=config.region) as sts:
            reply = await sts.assume_role(**request)
        credentials = reply["Credentials"]
        LOG.info("assumed role %s until %s", config.role_arn, credentials["Expiration"])
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    return AioDeferredRefreshableCredentials(refresh_using=refresh, method="assume-role")


def client_options(config: Config, service: str) -> dict[str, Any]:
    """How the SQS client, or the S3 client that fetches large payloads, connects."""
    sqs = service == "sqs"
    settings: dict[str, Any] = {
        # Retries are ours: logged, unbounded, with jitter.
        "retries": {"total_max_attempts": 1},
        "connect_timeout": 10,
        "read_timeout": config.wait_time_seconds + 20 if sqs else 60,
        "max_pool_connections": config.pollers + (4 if sqs else 1),
    }
    if not sqs:
        # Path-style addressing works with every endpoint, local S3 servers included.
        settings["s3"] = {"addressing_style": "path"}
    return {
        "region_name": config.region,
        "endpoint_url": config.endpoint_url if sqs else config.s3_endpoint_url,
        "config": AioConfig(**settings),
    }


async def resolve_queue_url(client: Any, config: Config) -> str:
    """The queue's URL, checked to exist before the first receive."""
    if config.queue_url:
        url = config.queue_url
        await with_retry(
            "GetQueueAttributes",
            lambda: client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]),
            config,
        )
        return url
    request = {"QueueName": config.name}
    if config.queue_owner_aws_account_id:
        request["QueueOwnerAWSAccountId"] = config.queue_owner_aws_account_id
    reply = await with_retry("GetQueueUrl", lambda: client.get_queue_url(**request), config)
    return str(reply["QueueUrl"])


def quiet_wire_logs() -> None:
    """botocore at DEBUG logs request headers, which carry keys and tokens; ansible-rulebook
    -vv turns DEBUG on everywhere."""
    for name in ("botocore", "aiobotocore"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


async def main(queue: Any, args: dict[str, Any]) -> None:
    """Receive events from SQS until cancelled; raise only what a restart cannot fix."""
    config = Config.from_args(args)
    feedback = args.get("eda_feedback_queue") if config.feedback else None
    quiet_wire_logs()
    if config.visibility_timeout == 0:
        LOG.warning("visibility_timeout 0: held messages can be delivered again at once")
    try:
        session = create_session(config)
        async with contextlib.AsyncExitStack() as clients:
            client = await clients.enter_async_context(
                session.create_client("sqs", **client_options(config, "sqs"))
            )
            s3 = None
            if config.large_payloads:
                s3 = await clients.enter_async_context(
                    session.create_client("s3", **client_options(config, "s3"))
                )
            queue_url = await resolve_queue_url(client, config)
            LOG.info(
                "receiving from %s (feedback %s, visibility timeout %d s)",
                queue_url,
                "on" if feedback is not None else "off",
                config.visibility_timeout,
            )
            await SQSSource(client, queue_url, config, s3).run(queue, feedback)
    except (NoCredentialsError, PartialCredentialsError, ProfileNotFound, NoRegionError) as exc:
        raise FatalSQSError(describe_fatal(exc, config)) from None
