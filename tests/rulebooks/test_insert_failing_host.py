"""durable.eda.insert_failing_host, loaded the way ansible-rulebook loads a filter."""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Filter = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def insert_failing_host(project_root: Path) -> Filter:
    path = project_root / "extensions/eda/plugins/event_filter/insert_failing_host.py"
    main = runpy.run_path(str(path))["main"]
    assert callable(main)
    return main  # type: ignore[no-any-return]


def test_direct_event_names_the_host(insert_failing_host: Filter) -> None:
    event = {"body": {"status": "failed", "host": "web01"}, "meta": {"uuid": "u"}}
    assert insert_failing_host(event)["meta"] == {"uuid": "u", "hosts": "web01"}


def test_gateway_envelope_names_the_host_in_its_payload(insert_failing_host: Filter) -> None:
    event = {"body": {"gateway": "durable.eda", "payload": {"host": "db-2.example.org"}}}
    assert insert_failing_host(event)["meta"]["hosts"] == "db-2.example.org"


def test_custom_paths_are_tried_in_order(insert_failing_host: Filter) -> None:
    event = {"body": {"target": {"node": "n1"}, "host": "ignored"}}
    result = insert_failing_host(event, host_paths=["body.missing", "body.target.node"])
    assert result["meta"]["hosts"] == "n1"


NOT_ONE_PLAIN_HOST = (5, None, "", "all", "ALL", "ungrouped", "web*", "a,b", "!db", "a:b", "~w")


@pytest.mark.parametrize("host", [*NOT_ONE_PLAIN_HOST, ["web01"], {"x": 1}])
def test_anything_but_one_plain_host_name_is_refused(
    insert_failing_host: Filter, host: object
) -> None:
    event = {"body": {"status": "failed", "host": host}, "meta": {"uuid": "u"}}
    assert insert_failing_host(event)["meta"] == {"uuid": "u"}


@pytest.mark.parametrize("body", ["plain text", 42, None, ["web01"], {"payload": "text"}])
def test_bodies_without_a_host_pass_unchanged(insert_failing_host: Filter, body: object) -> None:
    event = {"body": body, "meta": {"uuid": "u"}}
    assert insert_failing_host(event) == {"body": body, "meta": {"uuid": "u"}}
