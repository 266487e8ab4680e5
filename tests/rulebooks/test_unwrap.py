"""durable.eda.unwrap, loaded the way ansible-rulebook loads a filter, on AWS's own messages."""

from __future__ import annotations

import copy
import functools
import json
import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.support.aws_samples import (
    EVENTBRIDGE_ID,
    SNS_MESSAGE_ID,
    TOPIC_ARN,
    cloudwatch_alarm,
    ec2_state_change,
    eventbridge_event,
    gateway_envelope,
    s3_notification,
    sns_notification,
    source_event,
)

Filter = Callable[..., Any]
FAILURE = {"status": "failed", "service": "api", "host": "web01"}
# What the source sets; the source matches acknowledgements by MessageId.
SOURCE_META = source_event(None)["meta"]


@pytest.fixture(scope="module")
def plugin(project_root: Path) -> dict[str, Any]:
    return runpy.run_path(str(project_root / "extensions/eda/plugins/event_filter/unwrap.py"))


@pytest.fixture(scope="module")
def unwrap(plugin: dict[str, Any]) -> Filter:
    main = plugin["main"]
    assert callable(main)
    return main  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def unguarded(plugin: dict[str, Any]) -> Filter:
    """The filter without main's last resort (log and pass on whatever raised)."""
    return functools.partial(plugin["unwrap"], envelopes=plugin["ALL_ENVELOPES"])


def unwrapped(unwrap: Filter, body: Any, **options: Any) -> dict[str, Any]:
    result = unwrap(source_event(body), **options)
    assert isinstance(result, dict)
    # Whatever the envelope, the source's own meta is all there, unchanged.
    assert {k: result["meta"][k] for k in SOURCE_META} == SOURCE_META
    json.dumps(result, allow_nan=False)  # the engine must be able to serialise it
    return result


def readme_examples(project_root: Path) -> list[dict[str, Any]]:
    """The `in:`/`out:` pairs of README's section on the filter."""
    text = (project_root / "README.md").read_text(encoding="utf-8")
    section = text.split("## The event filter: `durable.eda.unwrap`", 1)[1].split("\n## ", 1)[0]
    blocks = [yaml.safe_load(b.split("```", 1)[0]) for b in section.split("```yaml\n")[1:]]
    return [b for b in blocks if isinstance(b, dict) and set(b) == {"in", "out"}]


def test_readme_shows_what_the_filter_does(unwrap: Filter, project_root: Path) -> None:
    examples = readme_examples(project_root)
    assert len(examples) == 4
    for example in examples:
        assert unwrap(example["in"]) == example["out"]


def test_direct_event_passes_unchanged(unwrap: Filter) -> None:
    event = source_event(FAILURE)
    assert unwrap(copy.deepcopy(event)) == event


def test_gateway_envelope(unwrap: Filter) -> None:
    result = unwrapped(unwrap, gateway_envelope(FAILURE))
    assert result["body"] == FAILURE
    assert result["meta"]["gateway"] == {
        "source": "github",
        "event_type": "check_run",
        "headers": {"x-github-delivery": "delivery-1", "user-agent": "GitHub-Hookshot/1"},
        "request_id": "req-1",
        "received_at": "2026-11-30T08:00:00.000Z",
        "version": 1,
    }
    assert result["meta"]["envelopes"] == ["gateway"]


def test_sns_notification_with_a_json_message(unwrap: Filter) -> None:
    attributes = {
        "team": {"Type": "String", "Value": "platform"},
        "priority": {"Type": "Number", "Value": "2"},
        "regions": {"Type": "String.Array", "Value": '["us-east-1", "eu-west-1"]'},
        "blob": {"Type": "Binary", "Value": "AAEC"},
    }
    result = unwrapped(unwrap, sns_notification(FAILURE, attributes=attributes))
    assert result["body"] == FAILURE
    assert result["meta"]["aws"] == {
        "sns": {
            "topic_arn": TOPIC_ARN,
            "message_id": SNS_MESSAGE_ID,
            "subject": "Failure on web01",
            "timestamp": "2026-11-30T08:00:00.000Z",
            "message_attributes": {
                "team": "platform",
                "priority": 2,
                "regions": ["us-east-1", "eu-west-1"],
                "blob": "AAEC",
            },
        }
    }
    assert result["meta"]["envelopes"] == ["sns"]


def test_sns_notification_with_a_text_message(unwrap: Filter) -> None:
    result = unwrapped(unwrap, sns_notification("disk full on web01", subject=None))
    assert result["body"] == "disk full on web01"
    assert "subject" not in result["meta"]["aws"]["sns"]


def test_raw_sns_delivery_is_the_payload_already(unwrap: Filter) -> None:
    """With raw delivery SQS holds the message itself; SNS's attributes are SQS's."""
    event = source_event(FAILURE)
    event["meta"]["sqs"]["attributes"] = {"team": "platform"}
    assert unwrap(copy.deepcopy(event)) == event


def test_eventbridge_event(unwrap: Filter) -> None:
    result = unwrapped(unwrap, ec2_state_change("stopped"))
    assert result["body"] == {"instance-id": "i-0123456789abcdef0", "state": "stopped"}
    assert result["meta"]["aws"] == {
        "eventbridge": {
            "source": "aws.ec2",
            "detail_type": "EC2 Instance State-change Notification",
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"],
            "id": EVENTBRIDGE_ID,
            "account": "123456789012",
            "region": "us-east-1",
            "time": "2026-11-30T08:00:00Z",
        }
    }


def test_s3_notification(unwrap: Filter) -> None:
    notification = s3_notification()
    result = unwrapped(unwrap, notification)
    assert result["body"] == {
        "event_name": "ObjectCreated:Put",
        "bucket": "eda-reports",
        "key": "reports/failed run:7.json",
        "size": 1024,
        "etag": "d41d8cd98f00b204e9800998ecf8427e",
        "version_id": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
        "region": "us-east-1",
        "time": "2026-11-30T08:00:00.000Z",
    }
    assert result["meta"]["aws"] == {"s3": {"records": notification["Records"]}}


def test_cloudwatch_alarm_through_sns(unwrap: Filter) -> None:
    alarm = cloudwatch_alarm(dimensions={"InstanceId": "i-0123456789abcdef0", "host": "web01"})
    result = unwrapped(unwrap, sns_notification(alarm, subject='ALARM: "web01-cpu-high"'))
    assert result["body"] == alarm
    assert result["meta"]["aws"]["sns"]["subject"] == 'ALARM: "web01-cpu-high"'
    assert result["meta"]["aws"]["cloudwatch_alarm"] == {
        "name": "web01-cpu-high",
        "state": "ALARM",
        "previous_state": "OK",
        "reason": alarm["NewStateReason"],
        "arn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:web01-cpu-high",
        "account": "123456789012",
        "region": "US East (N. Virginia)",
        "time": "2026-11-30T08:00:00.123+0000",
        "namespace": "AWS/EC2",
        "metric_name": "CPUUtilization",
        "dimensions": {"InstanceId": "i-0123456789abcdef0", "host": "web01"},
    }
    # The alarm is the payload, not an envelope.
    assert result["meta"]["envelopes"] == ["sns"]


def test_cloudwatch_alarm_by_raw_delivery(unwrap: Filter) -> None:
    result = unwrapped(unwrap, cloudwatch_alarm(dimensions={"host": "web01"}))
    assert result["meta"]["aws"]["cloudwatch_alarm"]["dimensions"] == {"host": "web01"}
    assert result["meta"]["envelopes"] == []


def test_sns_wrapping_eventbridge_is_unwrapped_all_the_way(unwrap: Filter) -> None:
    detail = {"status": "failed", "service": "api", "host": "web01"}
    inner = eventbridge_event(detail, source="com.example.monitor", detail_type="Failure")
    result = unwrapped(unwrap, sns_notification(inner))
    assert result["body"] == detail
    assert set(result["meta"]["aws"]) == {"sns", "eventbridge"}
    assert result["meta"]["aws"]["eventbridge"]["source"] == "com.example.monitor"
    assert result["meta"]["envelopes"] == ["sns", "eventbridge"]


def test_gateway_carrying_an_sns_notification(unwrap: Filter) -> None:
    """An SNS HTTPS subscription pointed at the gateway."""
    result = unwrapped(unwrap, gateway_envelope(sns_notification(FAILURE), source="sns"))
    assert result["body"] == FAILURE
    assert result["meta"]["gateway"]["source"] == "sns"
    assert result["meta"]["aws"]["sns"]["topic_arn"] == TOPIC_ARN
    assert result["meta"]["envelopes"] == ["gateway", "sns"]


def test_an_envelope_met_twice_keeps_the_outer_facts(unwrap: Filter) -> None:
    inner = gateway_envelope(FAILURE, source="inner")
    result = unwrapped(unwrap, gateway_envelope(inner, source="outer"))
    assert result["body"] == FAILURE
    assert result["meta"]["gateway"]["source"] == "outer"
    assert result["meta"]["envelopes"] == ["gateway", "gateway"]


def test_only_the_chosen_envelopes_are_taken_off(unwrap: Filter) -> None:
    body = sns_notification(ec2_state_change())
    result = unwrapped(unwrap, body, envelopes=["eventbridge"])
    assert result["body"] == body
    result = unwrapped(unwrap, body, envelopes=["sns"])
    assert result["body"] == ec2_state_change()


def test_a_bad_envelopes_option_leaves_the_event_alone(unwrap: Filter) -> None:
    event = source_event(gateway_envelope(FAILURE))
    assert unwrap(copy.deepcopy(event), envelopes="gateway") == event
    assert unwrap(copy.deepcopy(event), envelopes=["sqs"]) == event


def test_the_input_event_is_not_changed(unwrap: Filter) -> None:
    event = source_event(sns_notification(FAILURE))
    kept = copy.deepcopy(event)
    unwrap(event)
    assert event == kept


@pytest.mark.parametrize(
    "body",
    [
        {"Type": "Notification", "TopicArn": TOPIC_ARN, "Message": 5},
        {"Type": "SubscriptionConfirmation", "TopicArn": TOPIC_ARN, "Message": "{}"},
        {"source": "aws.ec2", "detail-type": "x"},
        {"source": "github", "detail": {"status": "failed"}},
        {"Records": []},
        {"Records": [{"eventSource": "aws:sqs", "body": "x"}]},
        {"Records": [{"eventSource": "aws:s3", "s3": {}}], "other": 1},
        {"gateway": "someone-else", "payload": {}},
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "eda-reports"},
        "plain text",
        None,
        [1, 2],
    ],
)
def test_look_alikes_pass_unchanged(unwrap: Filter, body: Any) -> None:
    event = source_event(body)
    assert unwrap(copy.deepcopy(event)) == event


def test_a_message_that_is_not_json_stays_text(unwrap: Filter) -> None:
    for text in ("NaN", "[1,", "{" * 100_000):
        assert unwrapped(unwrap, sns_notification(text))["body"] == text


def test_meta_without_room_for_the_facts_leaves_the_event_alone(unwrap: Filter) -> None:
    event = source_event(sns_notification(FAILURE))
    event["meta"]["aws"] = "not a mapping"
    assert unwrap(copy.deepcopy(event)) == event


# Property tests: any JSON, plain or in any envelope, never makes the filter raise.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
ENVELOPE_KEYS = st.sampled_from(
    [
        *("Type", "Message", "TopicArn", "MessageAttributes", "gateway", "payload"),
        *("detail", "detail-type", "source", "Records", "AlarmName", "NewStateValue", "Trigger"),
    ]
)
# Bodies that look like envelopes: real ones, and dictionaries with their keys and odd values.
ENVELOPE_LIKE = st.recursive(
    JSON,
    lambda inner: st.one_of(
        inner.map(sns_notification),
        inner.map(gateway_envelope),
        inner.map(eventbridge_event),
        inner.map(lambda b: sns_notification(json.dumps(b))),
        st.dictionaries(ENVELOPE_KEYS, inner | st.just("Notification") | st.just("durable.eda")),
        # An envelope's markers with anything where its content goes.
        JSON.map(lambda m: {**sns_notification(""), "Message": m}),
        JSON.map(lambda m: {**sns_notification(""), "MessageAttributes": m}),
        JSON.map(lambda m: {**sns_notification(""), "MessageAttributes": {"a": m}}),
        JSON.map(lambda r: {"Records": [r]}),
        JSON.map(lambda r: {"Records": [{"eventSource": "aws:s3", "s3": r}]}),
        JSON.map(lambda o: {"Records": [{"eventSource": "aws:s3", "s3": {"object": o}}]}),
        JSON.map(lambda t: {"AlarmName": "a", "NewStateValue": "ALARM", "Trigger": t}),
        JSON.map(
            lambda d: {"AlarmName": "a", "NewStateValue": "ALARM", "Trigger": {"Dimensions": d}}
        ),
        JSON.map(lambda d: {**cloudwatch_alarm(), "Trigger": {"Dimensions": [d]}}),
    ),
    max_leaves=10,
)
EVENTS = st.one_of(
    ENVELOPE_LIKE.map(source_event),
    st.fixed_dictionaries({"body": ENVELOPE_LIKE, "meta": JSON}),
    JSON,
)


@settings(max_examples=300, deadline=None)
@given(event=EVENTS)
def test_never_raises_and_keeps_the_source_meta(unguarded: Filter, event: Any) -> None:
    """Without relying on main's last resort: no input reaches it."""
    kept = copy.deepcopy(event)
    result = unguarded(event)
    assert event == kept
    json.dumps(result)
    if isinstance(kept, dict) and isinstance(kept.get("meta"), dict):
        assert_meta_kept(kept["meta"], result["meta"])


def assert_meta_kept(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Every key is kept with its value; the filter only adds, also inside meta.aws."""
    for key, value in before.items():
        if key == "envelopes" and isinstance(value, list):
            assert after[key][: len(value)] == value
        elif key == "aws" and isinstance(value, dict):
            assert {k: after[key][k] for k in value} == value
        else:
            assert after[key] == value


# Each envelope needs one of these keys; any other key of theirs may appear on its own.
MARKERS = {"Type", "detail-type", "gateway", "Records", "AlarmName"}
UNMARKED_KEYS = st.text() | ENVELOPE_KEYS.filter(lambda key: key not in MARKERS)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(UNMARKED_KEYS, JSON | st.just("aws.ec2")) | JSON)
def test_unknown_shapes_pass_unchanged(unwrap: Filter, body: Any) -> None:
    """Bodies without an envelope's marker are returned as they came."""
    assume(not (isinstance(body, dict) and MARKERS & set(body)))
    event = source_event(body)
    assert unwrap(copy.deepcopy(event)) == event
