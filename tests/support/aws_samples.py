"""Messages as AWS services put them on an SQS queue, for the unwrap filter and the rulebooks.

The field names, nesting and value formats follow the samples in AWS's documentation (SNS
"Amazon SQS message format" of a notification, CloudWatch's alarm notification, EventBridge's
EC2 state-change event, S3's event message structure); ids and names are examples. Each
builder returns the message body as the queue holds it (a JSON string), or as a dict where a
test needs the object. The delivery helpers at the end make moto's SNS, EventBridge and S3
deliver to a test queue themselves, in their own envelopes.
"""

from __future__ import annotations

import json
from typing import Any

import boto3

from tests.support.aws import ACCESS_KEY, REGION, SECRET_KEY, TestQueue

Event = dict[str, Any]

ACCOUNT = "123456789012"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:eda-failures"
SNS_MESSAGE_ID = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
EVENTBRIDGE_ID = "7bf73129-1428-4cd3-a780-95db273d1602"


def sns_notification(
    message: Any,
    subject: str | None = "Failure on web01",
    attributes: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """An SNS notification as SQS receives it without raw delivery: `Message` is a string."""
    notification: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": SNS_MESSAGE_ID,
        "TopicArn": TOPIC_ARN,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2026-11-30T08:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": (
            "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858"
            "fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q="
        ),
        "SigningCertURL": (
            "https://sns.us-east-1.amazonaws.com/"
            "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
        ),
        "UnsubscribeURL": (
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
            f"{TOPIC_ARN}:c9135db0-26c4-47ec-8998-413945fb5a96"
        ),
    }
    if subject is not None:
        notification["Subject"] = subject
    if attributes is not None:
        notification["MessageAttributes"] = attributes
    return notification


def cloudwatch_alarm(
    name: str = "web01-cpu-high",
    state: str = "ALARM",
    dimensions: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What a CloudWatch metric alarm publishes to its SNS topic when its state changes."""
    if dimensions is None:
        dimensions = {"InstanceId": "i-0123456789abcdef0"}
    return {
        "AlarmName": name,
        "AlarmDescription": "CPU above 90% for 5 minutes",
        "AWSAccountId": ACCOUNT,
        "AlarmConfigurationUpdatedTimestamp": "2026-11-01T10:00:00.000+0000",
        "NewStateValue": state,
        "NewStateReason": (
            "Threshold Crossed: 1 out of the last 1 datapoints [97.5 (30/11/26 07:55:00)] was "
            "greater than the threshold (90.0) (minimum 1 datapoint for OK -> ALARM transition)."
        ),
        "StateChangeTime": "2026-11-30T08:00:00.123+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}",
        "OldStateValue": "OK" if state == "ALARM" else "ALARM",
        "OKActions": [],
        "AlarmActions": [TOPIC_ARN],
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": "CPUUtilization",
            "Namespace": "AWS/EC2",
            "StatisticType": "Statistic",
            "Statistic": "AVERAGE",
            "Unit": None,
            # CloudWatch writes the dimensions as a list of lower-case name/value pairs.
            "Dimensions": [{"value": value, "name": key} for key, value in dimensions.items()],
            "Period": 300,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 90.0,
            "TreatMissingData": "missing",
            "EvaluateLowSampleCountPercentile": "",
        },
    }


def eventbridge_event(
    detail: Any,
    source: str = "aws.ec2",
    detail_type: str = "EC2 Instance State-change Notification",
    resources: list[str] | None = None,
) -> dict[str, Any]:
    """An EventBridge event as a rule's SQS (or SNS) target receives it."""
    if resources is None:
        resources = [f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0123456789abcdef0"]
    return {
        "version": "0",
        "id": EVENTBRIDGE_ID,
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": "2026-11-30T08:00:00Z",
        "region": "us-east-1",
        "resources": resources,
        "detail": detail,
    }


def ec2_state_change(state: str = "stopped") -> dict[str, Any]:
    return eventbridge_event({"instance-id": "i-0123456789abcdef0", "state": state})


def s3_notification(key: str = "reports/failed+run%3A7.json", size: int = 1024) -> dict[str, Any]:
    """An S3 event notification; S3 URL-encodes the key ("failed run:7" as above)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-30T08:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": (
                        "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"
                    ),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "eda-reports",
                    "bucket": {
                        "name": "eda-reports",
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": "arn:aws:s3:::eda-reports",
                    },
                    "object": {
                        "key": key,
                        "size": size,
                        "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                        "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


def gateway_envelope(payload: Any, source: str = "github") -> dict[str, Any]:
    """The envelope gateway/durable_eda_gateway/core.py (Gateway._message) writes."""
    return {
        "gateway": "durable.eda",
        "version": 1,
        "source": source,
        "event_type": "check_run",
        "received_at": "2026-11-30T08:00:00.000Z",
        "request_id": "req-1",
        "headers": {"x-github-delivery": "delivery-1", "user-agent": "GitHub-Hookshot/1"},
        "payload": payload,
    }


def source_event(body: Any, message_id: str = "5fea7756-0ea4-451a-a703-a558b933e274") -> Event:
    """The event durable.eda.aws_sqs_queue makes of a message with this (decoded) body."""
    return {
        "body": body,
        "meta": {
            "MessageId": message_id,
            "uuid": message_id,
            "event": {"uuid": message_id},
            "sqs": {"message_id": message_id, "receipt_count": 1},
        },
    }


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def queue_arn(queue: TestQueue) -> str:
    attributes = queue.client.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def topic_to_queue(endpoint: str, queue: TestQueue, name: str, raw: bool = False) -> str:
    """An SNS topic that delivers to `queue` (raw message delivery or not); its ARN."""
    sns = aws_client("sns", endpoint)
    topic = str(sns.create_topic(Name=name)["TopicArn"])
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn(queue),
        Attributes={"RawMessageDelivery": str(raw).lower()},
    )
    return topic


def eventbridge_rule_to_queue(endpoint: str, queue: TestQueue, name: str, source: str) -> None:
    """An EventBridge rule on the default bus that sends events from `source` to `queue`."""
    events = aws_client("events", endpoint)
    events.put_rule(Name=name, EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": queue_arn(queue)}])
