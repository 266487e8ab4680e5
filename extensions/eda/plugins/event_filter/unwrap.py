# Copyright: durable.eda contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""durable.eda.unwrap: one event shape for SNS, EventBridge, S3, CloudWatch alarms and the gateway.

Failure signals on AWS reach a queue wrapped in their carrier's envelope. This filter takes
the envelope off, so that a rule written against the payload (`event.body`) fires however
the payload travelled, and keeps the envelope's facts under `event.meta`. Envelopes inside
envelopes (an SNS notification carrying an EventBridge event, a gateway webhook carrying an
SNS notification) are taken off one after the other.

It never raises: a filter that raises stops the rulebook, so one odd message would stop
every remediation. Anything it does not recognise, or cannot handle, passes unchanged.
Every key of `event.meta` the source set (`uuid`, `MessageId`, `sqs`, `event`) is kept: the
source matches acknowledgements to messages by `meta.MessageId`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote_plus

DOCUMENTATION = r"""
---
author:
  - durable.eda contributors (@durable-eda)
version_added: 0.1.0
short_description: Take AWS and gateway envelopes off an event, keeping their facts in meta.
description:
  - 'Recognises the envelopes an event arrives in on AWS and returns one shape, the payload
    as C(event.body) and the envelope''s facts under C(event.meta), so that one rule fires
    for a direct event, a durable.eda gateway webhook, an SNS notification and an
    EventBridge event alike.'
  - 'C(gateway), the durable.eda gateway''s envelope
    C({"gateway": "durable.eda", "payload": ...}). The body becomes C(payload); the
    envelope''s C(source), C(event_type), C(headers), C(request_id), C(received_at) and
    C(version) go to C(meta.gateway).'
  - 'C(sns), an SNS notification delivered without raw message delivery
    (C({"Type": "Notification", "TopicArn": ..., "Message": "<string>"})). The body becomes
    C(Message), JSON-decoded when it is JSON. C(meta.aws.sns) holds C(topic_arn),
    C(message_id), C(subject), C(timestamp) and C(message_attributes) (name to value;
    numbers as numbers, string arrays as lists). With raw message delivery the body already
    is the message and SNS''s attributes arrive as C(meta.sqs.attributes).'
  - 'C(eventbridge), an EventBridge event (C(source), C(detail-type), C(detail)). The body
    becomes C(detail); C(meta.aws.eventbridge) holds C(source), C(detail_type),
    C(resources), C(id), C(account), C(region) and C(time).'
  - 'C(s3), an S3 event notification (C({"Records": [{"eventSource": "aws:s3", ...}]})).
    The body becomes the first record''s C(event_name), C(bucket), C(key) (URL-decoded),
    C(size), C(etag), C(version_id), C(region) and C(time); C(meta.aws.s3.records) holds
    every record as S3 sent it (S3 sends one per notification).'
  - 'C(cloudwatch_alarm), a CloudWatch alarm''s state change as the alarm publishes it to SNS
    (C(AlarmName), C(NewStateValue), C(Trigger)). It is a payload, not an envelope: the
    body stays the alarm, and C(meta.aws.cloudwatch_alarm) holds C(name), C(state),
    C(previous_state), C(reason), C(arn), C(account), C(region), C(namespace),
    C(metric_name) and C(dimensions) as a mapping of dimension name to value, so a host
    can be read from it with a dotted path
    (C(meta.aws.cloudwatch_alarm.dimensions.InstanceId)).'
  - 'C(meta.envelopes) lists the envelopes taken off, outermost first. An envelope met
    twice keeps the outer one''s facts. C(meta.uuid), C(meta.MessageId) and every other
    key of C(meta) are kept.'
  - 'Unknown shapes, and a body that is not what its envelope promises, pass unchanged. The
    filter never raises.'
options:
  envelopes:
    description:
      - The envelopes to recognise; the others pass unchanged.
    type: list
    elements: str
    choices: [gateway, sns, eventbridge, s3, cloudwatch_alarm]
    default: [gateway, sns, eventbridge, s3, cloudwatch_alarm]
"""

EXAMPLES = r"""
- name: Restart a failed service however its failure event travelled
  hosts: all
  sources:
    - durable.eda.aws_sqs_queue:
        name: eda-events
      filters:
        - durable.eda.unwrap:
        - durable.eda.insert_failing_host:
            host_paths: [body.host, meta.aws.cloudwatch_alarm.dimensions.host]
  rules:
    - name: Restart a failed service
      condition: event.body.status == "failed" and event.meta.hosts is defined
      action:
        run_playbook:
          name: durable.eda.restart_service
    - name: Collect diagnostics for an alarm
      condition: event.body.NewStateValue == "ALARM" and event.meta.hosts is defined
      action:
        run_playbook:
          name: durable.eda.collect_diagnostics

- name: Only SNS and EventBridge envelopes
  hosts: all
  sources:
    - durable.eda.aws_sqs_queue:
        name: eda-events
      filters:
        - durable.eda.unwrap:
            envelopes: [sns, eventbridge]
  rules:
    - name: An EC2 instance stopped
      condition: >-
        event.meta.aws.eventbridge.detail_type == "EC2 Instance State-change Notification"
        and event.body.state == "stopped"
      action:
        debug:
"""

logger = logging.getLogger(__name__)

ALL_ENVELOPES = ("gateway", "sns", "eventbridge", "s3", "cloudwatch_alarm")
# Envelopes nest a few deep at most (gateway > SNS > EventBridge); more is a loop or an attack.
MAX_DEPTH = 8

Facts = dict[str, Any]
# An unwrapper returns the inner body and the envelope's facts, or None if it does not apply.
Unwrapper = Callable[[Any], tuple[Any, Facts] | None]


def _present(mapping: dict[str, Any], names: dict[str, str]) -> Facts:
    """The values of `names` (envelope key -> fact name) that the envelope has."""
    return {fact: mapping[key] for key, fact in names.items() if key in mapping}


def _decode_json(text: str) -> Any:
    """`text` JSON-decoded, or `text` itself when it is not JSON (as the source decodes a body)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return text


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON: the engine could not serialise them again.
    raise ValueError(name)


def unwrap_gateway(body: Any) -> tuple[Any, Facts] | None:
    if not (isinstance(body, dict) and body.get("gateway") == "durable.eda" and "payload" in body):
        return None
    names = {
        "source": "source",
        "event_type": "event_type",
        "headers": "headers",
        "request_id": "request_id",
        "received_at": "received_at",
        "version": "version",
    }
    return body["payload"], _present(body, names)


def _sns_attribute(attribute: Any) -> Any:
    if not isinstance(attribute, dict):
        return attribute
    kind, value = attribute.get("Type"), attribute.get("Value")
    if isinstance(value, str) and kind in ("Number", "String.Array"):
        decoded = _decode_json(value)
        if isinstance(decoded, int | float | list) and not isinstance(decoded, bool):
            return decoded
    return value


def unwrap_sns(body: Any) -> tuple[Any, Facts] | None:
    if not (
        isinstance(body, dict)
        and body.get("Type") == "Notification"
        and isinstance(body.get("TopicArn"), str)
        and isinstance(body.get("Message"), str)
    ):
        return None
    names = {
        "TopicArn": "topic_arn",
        "MessageId": "message_id",
        "Subject": "subject",
        "Timestamp": "timestamp",
    }
    facts = _present(body, names)
    attributes = body.get("MessageAttributes")
    if isinstance(attributes, dict):
        facts["message_attributes"] = {k: _sns_attribute(v) for k, v in attributes.items()}
    return _decode_json(body["Message"]), facts


def unwrap_eventbridge(body: Any) -> tuple[Any, Facts] | None:
    if not (
        isinstance(body, dict)
        and isinstance(body.get("source"), str)
        and isinstance(body.get("detail-type"), str)
        and "detail" in body
    ):
        return None
    names = {
        "source": "source",
        "detail-type": "detail_type",
        "resources": "resources",
        "id": "id",
        "account": "account",
        "region": "region",
        "time": "time",
    }
    return body["detail"], _present(body, names)


def _is_s3_record(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and record.get("eventSource") == "aws:s3"
        and isinstance(record.get("s3"), dict)
    )


def _s3_summary(record: dict[str, Any]) -> Facts:
    s3 = record["s3"]
    bucket = s3.get("bucket") if isinstance(s3.get("bucket"), dict) else {}
    item = s3.get("object") if isinstance(s3.get("object"), dict) else {}
    summary = _present(record, {"eventName": "event_name"})
    summary.update(_present(bucket, {"name": "bucket"}))
    if isinstance(item.get("key"), str):
        # S3 URL-encodes the key in notifications ("a b.txt" arrives as "a+b.txt").
        summary["key"] = unquote_plus(item["key"])
    summary.update(_present(item, {"size": "size", "eTag": "etag", "versionId": "version_id"}))
    summary.update(_present(record, {"awsRegion": "region", "eventTime": "time"}))
    return summary


def unwrap_s3(body: Any) -> tuple[Any, Facts] | None:
    if not isinstance(body, dict) or set(body) != {"Records"}:
        return None
    records = body["Records"]
    if not (isinstance(records, list) and records and all(map(_is_s3_record, records))):
        return None
    return _s3_summary(records[0]), {"records": records}


def _dimensions(trigger: Any) -> dict[str, Any]:
    listed = trigger.get("Dimensions") if isinstance(trigger, dict) else None
    if not isinstance(listed, list):
        return {}
    return {
        d["name"]: d["value"]
        for d in listed
        if isinstance(d, dict) and isinstance(d.get("name"), str) and "value" in d
    }


def read_cloudwatch_alarm(body: Any) -> Facts | None:
    """The facts of a CloudWatch alarm's notification; it is a payload, so the body stays."""
    if not (
        isinstance(body, dict)
        and isinstance(body.get("AlarmName"), str)
        and isinstance(body.get("NewStateValue"), str)
    ):
        return None
    names = {
        "AlarmName": "name",
        "NewStateValue": "state",
        "OldStateValue": "previous_state",
        "NewStateReason": "reason",
        "AlarmArn": "arn",
        "AWSAccountId": "account",
        "Region": "region",
        "StateChangeTime": "time",
    }
    facts = _present(body, names)
    trigger = body.get("Trigger")
    if isinstance(trigger, dict):
        facts.update(_present(trigger, {"Namespace": "namespace", "MetricName": "metric_name"}))
    facts["dimensions"] = _dimensions(trigger)
    return facts


UNWRAPPERS: dict[str, Unwrapper] = {
    "gateway": unwrap_gateway,
    "sns": unwrap_sns,
    "eventbridge": unwrap_eventbridge,
    "s3": unwrap_s3,
}
# Where each envelope's facts go in meta.
META_PATHS = {
    "gateway": ("gateway",),
    "sns": ("aws", "sns"),
    "eventbridge": ("aws", "eventbridge"),
    "s3": ("aws", "s3"),
    "cloudwatch_alarm": ("aws", "cloudwatch_alarm"),
}


def peel_one(body: Any, envelopes: Sequence[str]) -> tuple[str, Any, Facts] | None:
    """The outermost envelope's name, what it wraps and its facts; None if there is none."""
    for name, unwrapper in UNWRAPPERS.items():
        if name in envelopes and (unwrapped := unwrapper(body)) is not None:
            return name, unwrapped[0], unwrapped[1]
    return None


def peel(body: Any, envelopes: Sequence[str]) -> tuple[Any, list[tuple[str, Facts]]]:
    """The innermost body and, outermost first, each envelope taken off with its facts."""
    found: list[tuple[str, Facts]] = []
    while len(found) < MAX_DEPTH and (layer := peel_one(body, envelopes)) is not None:
        name, body, facts = layer
        found.append((name, facts))
    if "cloudwatch_alarm" in envelopes:
        alarm = read_cloudwatch_alarm(body)
        if alarm is not None:
            found.append(("cloudwatch_alarm", alarm))
    return body, found


def with_facts(meta: dict[str, Any], found: list[tuple[str, Facts]]) -> dict[str, Any] | None:
    """A copy of `meta` with the facts added, or None if meta has no room for them."""
    meta = dict(meta)
    for name, facts in found:
        *parents, leaf = META_PATHS[name]
        node = meta
        for key in parents:
            child = node.get(key, {})
            if not isinstance(child, dict):
                return None
            node[key] = child = dict(child)
            node = child
        node.setdefault(leaf, facts)
    previous = meta.get("envelopes", [])
    if not isinstance(previous, list):
        return None
    meta["envelopes"] = [*previous, *(entry[0] for entry in found if entry[0] in UNWRAPPERS)]
    return meta


def unwrap(event: Any, envelopes: Sequence[str]) -> Any:
    if not isinstance(event, dict) or "body" not in event:
        return event
    meta = event.get("meta", {})
    if not isinstance(meta, dict):
        return event
    body, found = peel(event["body"], envelopes)
    if not found:
        return event
    new_meta = with_facts(meta, found)
    if new_meta is None:
        logger.warning("Event %.80r left wrapped: its meta has no room for the facts", meta)
        return event
    return {**event, "body": body, "meta": new_meta}


def main(event: Any, envelopes: Sequence[str] = ALL_ENVELOPES) -> Any:
    if isinstance(envelopes, str) or not isinstance(envelopes, Sequence):
        logger.warning("envelopes must be a list of names, not %.80r: none unwrapped", envelopes)
        return event
    unknown = [name for name in envelopes if name not in META_PATHS]
    if unknown:
        logger.warning("Unknown envelopes ignored: %s", unknown)
    try:
        return unwrap(event, envelopes)
    except Exception:  # pylint: disable=broad-exception-caught
        # A filter that raises stops the rulebook; the event goes on as it came.
        logger.exception("Event left unwrapped after an unexpected error")
        return event
