"""durable.eda.unwrap on what AWS services deliver to SQS (moto's server) and the source reads.

SNS, EventBridge and S3 here are moto's, over HTTP: they write their own envelopes into the
queue; the source (durable.eda.aws_sqs_queue) reads them and hands them through
ansible-rulebook's FilteredQueue to the filter, exactly as in a rulebook.
"""

from __future__ import annotations

import functools
import json
import runpy
from pathlib import Path
from typing import Any

import pytest

from tests.integration.gateway.test_gateway_to_source import post
from tests.integration.source_harness import running_source, source_args
from tests.support.aws import TestQueue
from tests.support.aws_samples import (
    aws_client,
    cloudwatch_alarm,
    eventbridge_rule_to_queue,
    queue_arn,
    topic_to_queue,
)
from tests.unit.gateway.support import API_KEY, config_for, serving

FAILURE = {"status": "failed", "service": "api", "host": "web01"}
SOURCE_META_KEYS = {"MessageId", "uuid", "event", "sqs"}


@pytest.fixture(scope="module")
def unwrap(project_root: Path) -> Any:
    path = project_root / "extensions/eda/plugins/event_filter/unwrap.py"
    return runpy.run_path(str(path))["main"]


async def unwrapped_event(queue: TestQueue, endpoint: str, unwrap: Any) -> dict[str, Any]:
    async with running_source(source_args(queue, endpoint), filters=[unwrap]) as engine:
        event = await engine.take()
    # The source's own meta is all there: it matches acknowledgements by meta.MessageId.
    assert set(event["meta"]) >= SOURCE_META_KEYS
    assert event["meta"]["MessageId"] == event["meta"]["sqs"]["message_id"]
    return event


@pytest.mark.asyncio
@pytest.mark.parametrize("raw", [False, True], ids=["notification", "raw"])
async def test_cloudwatch_alarm_through_sns(
    queue: TestQueue, moto_endpoint: str, unwrap: Any, raw: bool
) -> None:
    topic = topic_to_queue(moto_endpoint, queue, f"alarms-{queue.name}", raw=raw)
    sns = aws_client("sns", moto_endpoint)
    alarm = cloudwatch_alarm(dimensions={"InstanceId": "i-0123456789abcdef0", "host": "web01"})
    sns.publish(
        TopicArn=topic,
        Subject='ALARM: "web01-cpu-high"',
        Message=json.dumps(alarm),
        MessageAttributes={"team": {"DataType": "String", "StringValue": "platform"}},
    )

    event = await unwrapped_event(queue, moto_endpoint, unwrap)

    assert event["body"] == alarm
    aws = event["meta"]["aws"]
    assert aws["cloudwatch_alarm"]["dimensions"] == {
        "InstanceId": "i-0123456789abcdef0",
        "host": "web01",
    }
    if raw:
        assert "sns" not in aws
        assert event["meta"]["sqs"]["attributes"] == {"team": "platform"}
    else:
        assert aws["sns"]["topic_arn"] == topic
        assert aws["sns"]["subject"] == 'ALARM: "web01-cpu-high"'
        assert aws["sns"]["message_attributes"] == {"team": "platform"}
        assert event["meta"]["envelopes"] == ["sns"]


@pytest.mark.asyncio
async def test_eventbridge_rule_targeting_the_queue(
    queue: TestQueue, moto_endpoint: str, unwrap: Any
) -> None:
    eventbridge_rule_to_queue(moto_endpoint, queue, f"failures-{queue.name}", "com.example.monitor")
    aws_client("events", moto_endpoint).put_events(
        Entries=[
            {
                "Source": "com.example.monitor",
                "DetailType": "Service failure",
                "Detail": json.dumps(FAILURE),
                "Resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"],
            }
        ]
    )

    event = await unwrapped_event(queue, moto_endpoint, unwrap)

    assert event["body"] == FAILURE
    facts = event["meta"]["aws"]["eventbridge"]
    assert facts["source"] == "com.example.monitor"
    assert facts["detail_type"] == "Service failure"
    assert facts["resources"] == ["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"]


@pytest.mark.asyncio
async def test_s3_notification_to_the_queue(
    queue: TestQueue, moto_endpoint: str, unwrap: Any
) -> None:
    s3 = aws_client("s3", moto_endpoint)
    bucket = f"reports-{queue.name}".lower()[:63]
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"QueueArn": queue_arn(queue), "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    # S3 first sends a test event; the filter leaves it as it is.
    async with running_source(source_args(queue, moto_endpoint), filters=[unwrap]) as engine:
        s3.put_object(Bucket=bucket, Key="reports/failed run.json", Body=b"{}")
        event = await engine.take()
        while event["body"].get("Event") == "s3:TestEvent":
            assert "aws" not in event["meta"]
            event = await engine.take()

    assert event["body"]["bucket"] == bucket
    assert event["body"]["key"] == "reports/failed run.json"
    assert event["body"]["event_name"] == "ObjectCreated:Put"
    assert event["body"]["size"] == 2
    (record,) = event["meta"]["aws"]["s3"]["records"]
    assert record["eventSource"] == "aws:s3"


@pytest.mark.asyncio
async def test_a_webhook_through_the_gateway(
    queue: TestQueue, moto_endpoint: str, unwrap: Any
) -> None:
    headers = {
        "content-type": "application/json",
        "x-api-key": API_KEY,
        "x-github-event": "check_run",
        "x-github-delivery": "delivery-1",
    }
    with serving(config_for(queue.url, moto_endpoint)) as server:
        assert post(server.url, FAILURE, headers) == 202

    event = await unwrapped_event(queue, moto_endpoint, unwrap)

    assert event["body"] == FAILURE
    gateway = event["meta"]["gateway"]
    assert gateway["source"] == "github"
    assert gateway["event_type"] == "check_run"
    assert "x-api-key" not in gateway["headers"]
    assert event["meta"]["envelopes"] == ["gateway"]


@pytest.mark.asyncio
async def test_only_the_chosen_envelopes(queue: TestQueue, moto_endpoint: str, unwrap: Any) -> None:
    topic = topic_to_queue(moto_endpoint, queue, f"only-{queue.name}")
    aws_client("sns", moto_endpoint).publish(TopicArn=topic, Message=json.dumps(FAILURE))

    only_gateway = functools.partial(unwrap, envelopes=["gateway"])
    event = await unwrapped_event(queue, moto_endpoint, only_gateway)

    assert event["body"]["Type"] == "Notification"
    assert json.loads(event["body"]["Message"]) == FAILURE
