"""Option validation and event building: no network involved."""

from __future__ import annotations

import asyncio
from typing import Any

import aws_sqs_queue
import pytest
import yaml
from aws_sqs_queue import VALID_OPTIONS, Config, ConfigError, build_event, stable_uuid

BASE = {"name": "eda-events"}


def config(**options: Any) -> Config:
    return Config.from_args({**BASE, **options})


def test_defaults_are_fast_and_durable() -> None:
    built = config()
    assert (built.wait_time_seconds, built.max_number_of_messages) == (20, 10)
    assert (built.visibility_timeout, built.pollers, built.feedback) == (30, 1, False)


def test_a_typo_names_the_valid_options() -> None:
    with pytest.raises(ConfigError, match=r"unknown option.*max_number_of_mesages") as failure:
        config(max_number_of_mesages=5)
    assert "max_number_of_messages" in str(failure.value)
    assert "eda_feedback_queue" not in str(failure.value)


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("max_number_of_messages", 0, "from 1 to 10"),
        ("max_number_of_messages", 11, "from 1 to 10"),
        ("wait_time_seconds", 21, "from 0 to 20"),
        ("delay_seconds", -1, "from 0 to 20"),
        ("visibility_timeout", 43201, "from 0 to 43200"),
        ("pollers", 0, "from 1 to 10"),
        ("max_number_of_messages", "ten", "integer from 1 to 10"),
        ("max_number_of_messages", True, "integer from 1 to 10"),
        ("feedback_timeout", 0, "positive number"),
        ("feedback", "maybe", "true or false"),
        ("region", 5, "must be a string"),
    ],
)
def test_bad_values_state_what_is_allowed(option: str, value: Any, allowed: str) -> None:
    with pytest.raises(ConfigError, match=f"'{option}'.*{allowed}"):
        config(**{option: value})


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"name": None}, "exactly one of the options 'name' and 'queue_url'"),
        ({"queue_url": "https://sqs.us-east-1.amazonaws.com/1/q"}, "exactly one"),
        ({"access_key": "AKIA"}, "set together"),
        ({"session_token": "t"}, "needs 'access_key'"),
        ({"profile": "p", "access_key": "a", "secret_key": "s"}, "either 'profile'"),
        ({"external_id": "x"}, "need 'role_arn'"),
        ({"wait_time_seconds": 5, "delay_seconds": 5}, "alias"),
        ({"feedback": True}, "ansible-rulebook 1.3.0"),
        ({"delete_large_payloads": True}, "need 'large_payloads'"),
        ({"s3_endpoint_url": "http://127.0.0.1:9000"}, "need 'large_payloads'"),
    ],
)
def test_inconsistent_options_are_refused(options: dict[str, Any], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        config(**options)


def test_feedback_with_the_queue_ansible_rulebook_passes() -> None:
    assert config(feedback=True, eda_feedback_queue=asyncio.Queue()).feedback


def test_values_rendered_as_strings_are_accepted() -> None:
    built = config(max_number_of_messages="5", feedback_timeout="2.5", delay_seconds="3")
    assert (built.max_number_of_messages, built.feedback_timeout, built.wait_time_seconds) == (
        5,
        2.5,
        3,
    )
    assert config(feedback="yes", eda_feedback_queue=asyncio.Queue()).feedback


def test_options_rendered_as_null_take_their_defaults() -> None:
    unset = dict.fromkeys(VALID_OPTIONS - {"name", "eda_feedback_queue"})
    assert config(**unset) == config()


def test_region_comes_from_the_queue_url() -> None:
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/eda"
    assert Config.from_args({"queue_url": url}).region == "eu-west-1"
    assert Config.from_args({"queue_url": url, "region": "us-east-2"}).region == "us-east-2"


def test_secrets_stay_out_of_the_config_repr() -> None:
    built = config(access_key="AKIAVISIBLE", secret_key="hidden-secret", session_token="tok")
    assert "hidden-secret" not in repr(built)
    assert "tok" not in repr(built).replace("token", "")


def test_documentation_lists_exactly_the_options_the_code_reads() -> None:
    documented = yaml.safe_load(aws_sqs_queue.DOCUMENTATION)["options"]
    fields = set(Config.__dataclass_fields__)
    assert set(documented) == fields | {"delay_seconds", "eda_feedback_queue"}
    for name, spec in documented.items():
        assert spec["description"], name
        assert spec["type"] in {"str", "int", "bool", "float", "raw"}, name
        if name in fields and "default" in spec:
            assert getattr(Config(), name) == spec["default"], name


def test_examples_are_valid_yaml_rulebooks() -> None:
    for ruleset in yaml.safe_load(aws_sqs_queue.EXAMPLES):
        (source,) = ruleset["sources"]
        options = source["durable.eda.aws_sqs_queue"]
        if options.get("feedback"):
            options["eda_feedback_queue"] = asyncio.Queue()
        Config.from_args(options)


def test_event_identity_is_stable_for_any_message_id() -> None:
    assert stable_uuid("6d52c697-484b-412a-9673-ad25aea727f1") == (
        "6d52c697-484b-412a-9673-ad25aea727f1"
    )
    assert stable_uuid("not-a-uuid") == stable_uuid("not-a-uuid")
    event = build_event({"MessageId": "not-a-uuid", "Body": "{}"})
    assert event["meta"]["uuid"] == stable_uuid("not-a-uuid")
    assert event["meta"]["MessageId"] == "not-a-uuid"
