from __future__ import annotations

import json
from pathlib import Path

import pytest
from durable_eda_gateway.config import ConfigError, load_config

from tests.unit.gateway.support import API_KEY, GITHUB_SECRET, gateway_env

QUEUE = "http://127.0.0.1:1/123456789012/q"


def config_from(**overrides: str) -> object:
    return load_config(gateway_env(QUEUE, "http://127.0.0.1:1", **overrides))


def test_defaults_are_secure_and_complete() -> None:
    config = load_config({"GATEWAY_QUEUE_URL": QUEUE, "GATEWAY_API_KEYS": API_KEY})
    assert config.source == "webhook"
    assert config.api_key_header == "x-api-key"
    assert config.max_message_bytes == 262_144
    assert config.large_payload_bucket is None
    # Without a bucket nothing larger than the queue takes is read.
    assert config.max_body_bytes == 262_144
    assert not config.fifo
    assert "authorization" not in config.forward_headers


def test_a_config_never_shows_its_secrets() -> None:
    config = config_from(GATEWAY_SIGNATURE_SCHEME="github", GATEWAY_SIGNING_SECRETS=GITHUB_SECRET)
    assert API_KEY not in repr(config)
    assert GITHUB_SECRET not in repr(config)


@pytest.mark.parametrize(
    ("overrides", "mentions"),
    [
        ({"GATEWAY_QUEUE_URL": ""}, "QUEUE_URL"),
        ({"GATEWAY_API_KEYS": ""}, "no authentication"),
        ({"GATEWAY_API_KEYS": " , "}, "GATEWAY_API_KEYS holds no secret"),
        ({"GATEWAY_API_KEYS_SECRET_ID": "s"}, "only one of"),
        ({"GATEWAY_SIGNATURE_SCHEME": "github"}, "go together"),
        ({"GATEWAY_SIGNING_SECRETS": "x"}, "go together"),
        ({"GATEWAY_SIGNATURE_SCHEME": "md5", "GATEWAY_SIGNING_SECRETS": "x"}, "SCHEME"),
        ({"GATEWAY_FORWARD_HEADERS": "content-type,Authorization"}, "authorization"),
        ({"GATEWAY_FORWARD_HEADERS": "x-api-key"}, "x-api-key"),
        ({"GATEWAY_API_KEY_HEADER": "x-token", "GATEWAY_FORWARD_HEADERS": "x-token"}, "x-token"),
        ({"GATEWAY_FORWARD_HEADERS": "bad header"}, "header name"),
        ({"GATEWAY_SOURCE": "has space"}, "SOURCE"),
        ({"GATEWAY_MAX_MESSAGE_BYTES": "big"}, "integer"),
        ({"GATEWAY_MAX_MESSAGE_BYTES": "2000000"}, "between"),
        ({"GATEWAY_TIMEOUT_SECONDS": "2"}, "between"),
        ({"GATEWAY_TIMEOUT_SECONDS": "5", "GATEWAY_SQS_MAX_ATTEMPTS": "4"}, "TIMEOUT_SECONDS"),
        ({"GATEWAY_GROUP_ID_FIELD": "a..b"}, "GROUP_ID_FIELD"),
        ({"GATEWAY_FILTER_RULES": "{"}, "filter rules"),
        ({"GATEWAY_FILTER_RULES": '{"keep": "x"}'}, "keep"),
        ({"GATEWAY_FILTER_RULES_FILE": "/nonexistent/rules.json"}, "cannot be read"),
        ({"GATEWAY_LARGE_PAYLOAD_BUCKET": "Not_A_Bucket"}, "LARGE_PAYLOAD_BUCKET"),
        ({"GATEWAY_LARGE_PAYLOAD_BUCKET": "s3://payloads"}, "LARGE_PAYLOAD_BUCKET"),
        ({"GATEWAY_MAX_REQUEST_BYTES": "200000"}, "MAX_REQUEST_BYTES must not be below"),
        ({"GATEWAY_MAX_REQUEST_BYTES": "200000000"}, "between"),
        # Three calls (secrets, PutObject, SendMessage) do not fit where two did.
        (
            {
                "GATEWAY_TIMEOUT_SECONDS": "6",
                "GATEWAY_SQS_MAX_ATTEMPTS": "2",
                "GATEWAY_LARGE_PAYLOAD_BUCKET": "payloads",
            },
            "TIMEOUT_SECONDS",
        ),
    ],
)
def test_unusable_settings_are_refused_by_name(overrides: dict[str, str], mentions: str) -> None:
    with pytest.raises(ConfigError, match=mentions):
        config_from(**overrides)


def test_a_refusal_never_shows_a_secret_value() -> None:
    with pytest.raises(ConfigError) as caught:
        config_from(GATEWAY_API_KEYS_SSM_PARAMETER="/p")
    assert API_KEY not in str(caught.value)


def test_rules_come_from_a_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"forward_if": {"field": "status", "equals": "failed"}}))
    config = load_config(
        gateway_env(QUEUE, "http://127.0.0.1:1", GATEWAY_FILTER_RULES_FILE=str(rules))
    )
    assert config.rules.apply({"status": "ok"}, None) is None
    assert config.rules.apply({"status": "failed"}, None) == {"status": "failed"}


def test_header_lists_are_lower_cased_and_fifo_follows_the_queue_name() -> None:
    config = load_config(
        gateway_env(
            QUEUE + ".fifo",
            "http://127.0.0.1:1",
            GATEWAY_FORWARD_HEADERS="Content-Type, X-Custom ,",
            GATEWAY_EVENT_TYPE_FIELD="event.kind",
        )
    )
    assert config.forward_headers == ("content-type", "x-custom")
    assert config.event_type_field == ("event", "kind")
    assert config.fifo


def test_a_bucket_raises_the_body_limit_to_the_request_maximum() -> None:
    config = load_config(
        {
            "GATEWAY_QUEUE_URL": QUEUE,
            "GATEWAY_API_KEYS": API_KEY,
            "GATEWAY_LARGE_PAYLOAD_BUCKET": "durable-eda-payloads",
        }
    )
    assert config.large_payload_bucket == "durable-eda-payloads"
    assert config.max_body_bytes == 10 * 1024 * 1024
    assert config.calls_per_request == 3
    assert config_from(GATEWAY_TIMEOUT_SECONDS="6", GATEWAY_SQS_MAX_ATTEMPTS="2")
