"""Shared helpers for tests that talk to moto's SQS server over real HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

REGION = "us-east-1"
# moto accepts any credentials; these are recognisable so tests can check they never leak.
ACCESS_KEY = "AKIATESTDURABLE00001"
SECRET_KEY = "s3cr3t-durable-eda-secret-key-never-logged"
SESSION_TOKEN = "durable-eda-session-token-never-logged"


def _client(service: str, endpoint: str, **options: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        **options,
    )


def sqs_client(endpoint: str) -> Any:
    return _client("sqs", endpoint)


def s3_client(endpoint: str) -> Any:
    """Path-style addressing: moto serves S3 on the same loopback endpoint as SQS."""
    return _client("s3", endpoint, config=BotoConfig(s3={"addressing_style": "path"}))


@dataclass(frozen=True)
class TestQueue:
    __test__ = False

    name: str
    url: str
    client: Any

    def send(self, body: str, **kwargs: Any) -> str:
        reply = self.client.send_message(QueueUrl=self.url, MessageBody=body, **kwargs)
        return str(reply["MessageId"])

    def send_many(self, bodies: list[str]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ]
            reply = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
            assert not reply.get("Failed"), reply
            ids.extend(
                e["MessageId"] for e in sorted(reply["Successful"], key=lambda e: int(e["Id"]))
            )
        return ids

    def counts(self) -> tuple[int, int]:
        """(visible, in flight) as SQS reports them."""
        attrs = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )

    def drain(self, visibility_timeout: int = 30) -> list[dict[str, Any]]:
        """Receive (and leave in flight) every message visible now."""
        seen: list[dict[str, Any]] = []
        while True:
            reply = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=visibility_timeout,
                AttributeNames=["All"],
            )
            batch = reply.get("Messages", [])
            if not batch:
                return seen
            seen.extend(batch)


def create_queue(endpoint: str, fifo: bool = False, **attributes: str) -> TestQueue:
    client = sqs_client(endpoint)
    name = f"test-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")
    if fifo:
        attributes.setdefault("FifoQueue", "true")
    url = client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return TestQueue(name=name, url=url, client=client)


def create_queue_with_dead_letters(
    endpoint: str, max_receive_count: int
) -> tuple[TestQueue, TestQueue]:
    """A queue whose messages move to a dead-letter queue after `max_receive_count` receives."""
    dead_letters = create_queue(endpoint)
    arn = dead_letters.client.get_queue_attributes(
        QueueUrl=dead_letters.url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive_count)}
    return create_queue(endpoint, RedrivePolicy=json.dumps(redrive)), dead_letters


def wait_until(
    condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(interval)
