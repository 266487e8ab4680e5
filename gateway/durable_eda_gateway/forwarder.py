"""Sending one envelope to SQS, and turning SQS's failures into answers the sender retries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from durable_eda_gateway.aws_errors import is_throttling, is_transient

logger = logging.getLogger(__name__)


class QueueFailureError(Exception):
    """SQS did not confirm the message. `throttled` says whether it asked us to slow down."""

    def __init__(self, throttled: bool, reason: str) -> None:
        super().__init__(reason)
        self.throttled = throttled


@dataclass(frozen=True)
class OutgoingMessage:
    body: str
    attributes: dict[str, str]
    group_id: str | None = None
    deduplication_id: str | None = None

    def sqs_size(self) -> int:
        """The size SQS counts against its limit: body plus attribute names, types and values."""
        attributes = sum(
            len(name.encode()) + len(b"String") + len(value.encode("utf-8", "surrogatepass"))
            for name, value in self.attributes.items()
        )
        return len(self.body.encode("utf-8")) + attributes


@dataclass(frozen=True)
class SqsForwarder:
    client: Any
    queue_url: str

    def send(self, message: OutgoingMessage) -> str:
        """The MessageId once SQS has confirmed; QueueFailureError otherwise."""
        request: dict[str, Any] = {
            "QueueUrl": self.queue_url,
            "MessageBody": message.body,
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in message.attributes.items()
            },
        }
        if message.group_id is not None:
            request["MessageGroupId"] = message.group_id
        if message.deduplication_id is not None:
            request["MessageDeduplicationId"] = message.deduplication_id
        try:
            reply = self.client.send_message(**request)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if is_transient(code, status):
                logger.warning("SQS refused the message: %s (HTTP %s)", code, status)
            else:
                logger.error(
                    "SQS refused the message: %s (HTTP %s); this will not pass by itself: "
                    "check GATEWAY_QUEUE_URL and what the gateway's role may do",
                    code,
                    status,
                )
            raise QueueFailureError(is_throttling(code, status), code) from None
        except BotoCoreError as error:
            logger.warning("SQS could not be reached: %s", type(error).__name__)
            raise QueueFailureError(False, type(error).__name__) from None
        return str(reply["MessageId"])
