from __future__ import annotations

from typing import Any

import pytest
from durable_eda_gateway.filtering import FilterRules, RulesError, parse_rules

FAILURES_OR_CRITICAL = {
    "any": [
        {"field": "status", "in": ["failed", "error"]},
        {"field": "alert.severity", "equals": "critical"},
    ]
}


def forwarded(rules: dict[str, Any], payload: dict[str, Any], event_type: str | None = None) -> Any:
    return parse_rules(rules).apply(payload, event_type)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"status": "failed"}, True),
        ({"status": "error"}, True),
        ({"status": "ok"}, False),
        ({"alert": {"severity": "critical"}}, True),
        ({"alert": {"severity": "warning"}}, False),
        ({"alert": "critical"}, False),
        ({}, False),
    ],
)
def test_forward_if_selects_payloads(payload: dict[str, Any], expected: bool) -> None:
    result = forwarded({"forward_if": FAILURES_OR_CRITICAL}, payload)
    assert (result is not None) is expected


def test_without_rules_everything_is_forwarded_unchanged() -> None:
    payload = {"a": {"b": [1, 2]}, "c": None}
    assert FilterRules().apply(payload, None) == payload


def test_all_not_and_exists_combine() -> None:
    rules = {
        "forward_if": {
            "all": [
                {"field": "host", "exists": True},
                {"not": {"field": "muted", "equals": True}},
            ]
        }
    }
    assert forwarded(rules, {"host": "web1"}) is not None
    assert forwarded(rules, {"host": "web1", "muted": True}) is None
    assert forwarded(rules, {"host": None}) is None
    assert forwarded(rules, {"host": "web1", "muted": 1}) is not None


def test_true_does_not_match_one() -> None:
    assert forwarded({"forward_if": {"field": "x", "equals": True}}, {"x": 1}) is None
    assert forwarded({"forward_if": {"field": "x", "in": [1]}}, {"x": True}) is None
    assert forwarded({"forward_if": {"field": "x", "in": [1]}}, {"x": 1.0}) is not None


def test_event_type_can_be_matched() -> None:
    rules = {"forward_if": {"field": "@event_type", "in": ["workflow_run"]}}
    assert forwarded(rules, {}, "workflow_run") is not None
    assert forwarded(rules, {}, "push") is None
    assert forwarded(rules, {}, None) is None


def test_keep_then_drop_shape_the_payload() -> None:
    rules = {
        "keep": ["status", "alert.name", "alert.meta", "missing.key"],
        "drop": ["alert.meta.token"],
    }
    payload: dict[str, Any] = {
        "status": "failed",
        "noise": "x" * 10,
        "alert": {"name": "disk", "extra": 1, "meta": {"token": "t", "id": 7}},
    }
    assert forwarded(rules, payload) == {
        "status": "failed",
        "alert": {"name": "disk", "meta": {"id": 7}},
    }
    assert payload["alert"]["meta"] == {"token": "t", "id": 7}


def test_drop_of_absent_paths_is_harmless() -> None:
    assert forwarded({"drop": ["a.b.c", "z"]}, {"a": {"b": 1}}) == {"a": {"b": 1}}


@pytest.mark.parametrize(
    "rules",
    [
        [],
        {"forward": {}},
        {"forward_if": {"field": "a"}},
        {"forward_if": {"field": "a", "equals": 1, "in": [1]}},
        {"forward_if": {"field": "a", "in": "x"}},
        {"forward_if": {"field": "a", "exists": "yes"}},
        {"forward_if": {"field": "", "equals": 1}},
        {"forward_if": {"field": "a..b", "equals": 1}},
        {"forward_if": {"any": []}},
        {"forward_if": {"all": [{"field": "a", "equals": 1}], "any": []}},
        {"forward_if": {"maybe": []}},
        {"forward_if": "status == failed"},
        {"keep": "status"},
        {"drop": [1]},
    ],
)
def test_invalid_rules_are_refused_with_a_reason(rules: Any) -> None:
    with pytest.raises(RulesError):
        parse_rules(rules)
