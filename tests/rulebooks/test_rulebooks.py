"""The rulebooks in rulebooks/: valid for ansible-rulebook, and the variants stay in step."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_rulebook.validators import Validate

RULEBOOKS = ("remediate_failures", "remediate_failures_durable", "remediate_failures_controller")


def _load(project_root: Path, name: str) -> list[dict[str, Any]]:
    loaded = yaml.safe_load((project_root / "rulebooks" / f"{name}.yml").read_text())
    assert isinstance(loaded, list)
    return loaded


@pytest.mark.parametrize("name", RULEBOOKS)
def test_rulebook_passes_ansible_rulebooks_schema(project_root: Path, name: str) -> None:
    """The check ansible-rulebook itself runs on start: its schema/ruleset_schema.json."""
    Validate.rulebook(_load(project_root, name))


def test_every_rulebook_in_the_folder_is_checked(project_root: Path) -> None:
    assert sorted(p.stem for p in (project_root / "rulebooks").glob("*.y*ml")) == sorted(RULEBOOKS)


def test_durable_variant_differs_only_by_feedback(project_root: Path) -> None:
    plain = _load(project_root, "remediate_failures")[0]
    durable = _load(project_root, "remediate_failures_durable")[0]
    source = durable["sources"][0]["durable.eda.aws_sqs_queue"]
    assert source.pop("feedback") is True
    assert durable["sources"] == plain["sources"]
    assert durable["rules"] == plain["rules"]


def test_controller_variant_runs_the_same_rules_as_job_templates(project_root: Path) -> None:
    plain = _load(project_root, "remediate_failures")[0]
    controller = _load(project_root, "remediate_failures_controller")[0]
    assert controller["sources"] == plain["sources"]
    for plain_rule, controller_rule in zip(plain["rules"], controller["rules"], strict=True):
        assert _without_actions(plain_rule) == _without_actions(controller_rule)
        plain_actions = _actions(plain_rule)
        controller_actions = _actions(controller_rule)
        assert len(plain_actions) == len(controller_actions)
        for playbook_action, job_action in zip(plain_actions, controller_actions, strict=True):
            if "run_playbook" not in playbook_action:
                assert playbook_action == job_action
                continue
            job = job_action["run_job_template"]
            assert job["job_args"]["extra_vars"] == playbook_action["run_playbook"]["extra_vars"]
            assert job["job_args"]["limit"] == "{{ event.meta.hosts }}"


def test_rules_acting_on_a_host_require_a_failing_host(project_root: Path) -> None:
    """Without meta.hosts an action would run on every host of the inventory."""
    for name in RULEBOOKS:
        for rule in _load(project_root, name)[0]["rules"]:
            if any("debug" not in action for action in _actions(rule)):
                assert "event.meta.hosts is defined" in rule["condition"], (name, rule["name"])


def test_catch_all_rule_comes_last(project_root: Path) -> None:
    for name in RULEBOOKS:
        rules = _load(project_root, name)[0]["rules"]
        assert [r["condition"] for r in rules].index("event.meta is defined") == len(rules) - 1


def _actions(rule: dict[str, Any]) -> list[dict[str, Any]]:
    actions = rule.get("actions") or [rule["action"]]
    assert isinstance(actions, list)
    return actions


def _without_actions(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if k not in ("action", "actions")}


@pytest.mark.parametrize(
    "plugin",
    ["event_source/aws_sqs_queue.py", "event_filter/insert_failing_host.py"],
)
def test_plugin_examples_are_valid_rulebooks(project_root: Path, plugin: str) -> None:
    path = project_root / "extensions" / "eda" / "plugins" / plugin
    module = runpy.run_path(str(path))
    assert yaml.safe_load(module["DOCUMENTATION"])["options"]
    Validate.rulebook(yaml.safe_load(module["EXAMPLES"]))
