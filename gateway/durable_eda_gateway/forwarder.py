"""Sending one envelope to SQS (a large one through S3), and turning AWS's failures into
answers the sender retries."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from durable_eda_gateway.aws_errors import is_throttling, is_transient

logger = logging.getLogger(__name__)

# The Amazon SQS Extended Client's pointer and size attribute, which the event source reads.
PAYLOAD_POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
PAYLOAD_SIZE_ATTRIBUTE = "ExtendedPayloadSize"


class QueueFailureError(Exception):
    """SQS did not confirm the message. `throttled` says whether it asked us to slow down."""

    def __init__(self, throttled: bool, reason: str) -> None:
        super().__init__(reason)
        self.throttled = throttled


class StoreFailureError(QueueFailureError):
    """S3 did not confirm the payload; nothing was queued."""


@dataclass(frozen=True)
class OutgoingMessage:
    body: str
    attributes: dict[str, str]
    group_id: str | None = None
    deduplication_id: str | None = None
    # Number attributes: the Extended Client's ExtendedPayloadSize.
    numbers: tuple[tuple[str, int], ...] = ()

    def sqs_size(self) -> int:
        """The size SQS counts against its limit: body plus attribute names, types and values."""
        attributes = sum(
            len(name.encode()) + len(b"String") + len(value.encode("utf-8", "surrogatepass"))
            for name, value in self.attributes.items()
        )
        numbers = sum(
            len(name.encode()) + len(b"Number") + len(str(value)) for name, value in self.numbers
        )
        return len(self.body.encode("utf-8")) + attributes + numbers

    def pointing_to(self, bucket: str, key: str) -> OutgoingMessage:
        """This message with its body replaced by an Extended Client pointer to bucket/key."""
        pointer = json.dumps([PAYLOAD_POINTER_CLASS, {"s3BucketName": bucket, "s3Key": key}])
        size = len(self.body.encode("utf-8"))
        return OutgoingMessage(
            pointer,
            self.attributes,
            self.group_id,
            self.deduplication_id,
            ((PAYLOAD_SIZE_ATTRIBUTE, size),),
        )


def _refusal(service: str, error: ClientError | BotoCoreError, hint: str) -> tuple[bool, str]:
    """(throttled, code) of a failed AWS call, logged: a lasting refusal as an ERROR."""
    if isinstance(error, BotoCoreError):
        logger.warning("%s could not be reached: %s", service, type(error).__name__)
        return False, type(error).__name__
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if is_transient(code, status):
        logger.warning("%s refused the message: %s (HTTP %s)", service, code, status)
    else:
        logger.error(
            "%s refused the message: %s (HTTP %s); this will not pass by itself: %s",
            service,
            code,
            status,
            hint,
        )
    return is_throttling(code, status), code


@dataclass(frozen=True)
class SqsForwarder:
    client: Any
    queue_url: str

    def send(self, message: OutgoingMessage) -> str:
        """The MessageId once SQS has confirmed; QueueFailureError otherwise."""
        attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items()
        }
        for name, number in message.numbers:
            attributes[name] = {"DataType": "Number", "StringValue": str(number)}
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": message.body,
            "MessageAttributes": attributes,
        }
        if message.group_id is not None:
            request["MessageGroupId"] = message.group_id
        if message.deduplication_id is not None:
            request["MessageDeduplicationId"] = message.deduplication_id
        try:
            reply = self.client.send_message(**request)
        except (ClientError, BotoCoreError) as error:
            throttled, code = _refusal(
                "SQS", error, "check GATEWAY_QUEUE_URL and what the gateway's role may do"
            )
            raise QueueFailureError(throttled, code) from None
        return str(reply["MessageId"])


@dataclass(frozen=True)
class S3PayloadStore:
    """Where envelopes too large for the queue go, as the SQS Extended Client stores them."""

    client: Any
    bucket: str

    def put(self, body: str, key_prefix: str) -> str:
        """The key of the stored body once S3 has confirmed; StoreFailureError otherwise."""
        key = f"{key_prefix}/{uuid.uuid4()}"
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body.encode("utf-8"),
                ContentType="application/json",
            )
        except (ClientError, BotoCoreError) as error:
            throttled, code = _refusal(
                "S3",
                error,
                "check GATEWAY_LARGE_PAYLOAD_BUCKET and that the gateway's role may "
                "s3:PutObject in it",
            )
            raise StoreFailureError(throttled, code) from None
        return key
