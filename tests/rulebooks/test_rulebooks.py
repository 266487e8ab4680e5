"""The collection's rulebooks: valid for ansible-rulebook, and the variants stay in step.

EDA controller imports the rulebooks of extensions/eda/rulebooks/ when that folder exists
(eda-server's project import), so only rulebooks an activation can run live there; the
others stay in rulebooks/. ansible-rulebook finds a collection's rulebook in either.
"""

from __future__ import annotations

import runpy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_rulebook.validators import Validate

from tests.support.aws_samples import cloudwatch_alarm, sns_notification, source_event
from tools import generate_rulebooks

RULEBOOKS = ("remediate_failures", "remediate_failures_durable", "remediate_failures_controller")
# ansible-rulebook's collection lookup order; eda-server imports the first folder that exists.
FOLDERS = ("extensions/eda/rulebooks", "rulebooks")
# What an activation can run: no inventory, no ansible-playbook in a decision environment.
INVENTORY_ACTIONS = {"run_playbook", "run_module"}


def _path(project_root: Path, name: str) -> Path:
    found = [project_root / f / f"{name}.yml" for f in FOLDERS]
    existing = [path for path in found if path.exists()]
    assert len(existing) == 1, existing
    return existing[0]


def _load(project_root: Path, name: str) -> list[dict[str, Any]]:
    loaded = yaml.safe_load(_path(project_root, name).read_text())
    assert isinstance(loaded, list)
    return loaded


@pytest.mark.parametrize("name", RULEBOOKS)
def test_rulebook_passes_ansible_rulebooks_schema(project_root: Path, name: str) -> None:
    """The check ansible-rulebook itself runs on start: its schema/ruleset_schema.json."""
    Validate.rulebook(_load(project_root, name))


def test_every_rulebook_in_the_folders_is_checked(project_root: Path) -> None:
    found = [p.stem for folder in FOLDERS for p in (project_root / folder).glob("*.y*ml")]
    assert sorted(found) == sorted(RULEBOOKS)


def test_controller_imports_only_rulebooks_an_activation_can_run(project_root: Path) -> None:
    imported = next(project_root / f for f in FOLDERS if (project_root / f).exists())
    names = sorted(p.stem for p in imported.glob("*.y*ml"))
    assert names == ["remediate_failures_controller"]
    for name in names:
        for rule in _load(project_root, name)[0]["rules"]:
            used = {kind for action in _actions(rule) for kind in action}
            assert not used & INVENTORY_ACTIONS, (name, rule["name"])


def test_rulebooks_left_out_of_the_controller_use_run_playbook(project_root: Path) -> None:
    """Why they stay in rulebooks/: an activation would fail on their first action."""
    for name in ("remediate_failures", "remediate_failures_durable"):
        assert _path(project_root, name).parent == project_root / "rulebooks"
        used = {k for r in _load(project_root, name)[0]["rules"] for a in _actions(r) for k in a}
        assert "run_playbook" in used


def test_the_variants_are_generated_from_the_plain_rulebook() -> None:
    """Its rules are written once; run python tools/generate_rulebooks.py after editing it."""
    assert generate_rulebooks.stale() == []
    assert {v.path.stem for v in generate_rulebooks.VARIANTS} | {"remediate_failures"} == set(
        RULEBOOKS
    )


def test_the_generator_reports_a_changed_rule_and_keeps_the_variants_headers(
    project_root: Path, tmp_path: Path
) -> None:
    for path in [generate_rulebooks.SOURCE, *(v.path for v in generate_rulebooks.VARIANTS)]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((project_root / path).read_text())
    source = tmp_path / generate_rulebooks.SOURCE
    source.write_text(source.read_text().replace("once_within: 5 minutes", "once_within: 1 hour"))
    changed = [v.path for v in generate_rulebooks.VARIANTS]
    assert generate_rulebooks.stale(tmp_path) == changed
    assert generate_rulebooks.write_all(tmp_path) == changed
    assert generate_rulebooks.stale(tmp_path) == []
    for path in changed:
        text = (tmp_path / path).read_text()
        assert "once_within: 1 hour" in text
        assert "once_within: 5 minutes" not in text
        header = (project_root / path).read_text().split(generate_rulebooks.GENERATED_MARK)[0]
        assert text.startswith(header + generate_rulebooks.GENERATED_MARK)


def test_the_generator_refuses_a_playbook_without_a_job_template(
    project_root: Path, tmp_path: Path
) -> None:
    plain = (project_root / generate_rulebooks.SOURCE).read_text()
    unknown = plain.replace("name: durable.eda.restart_service", "name: my.own.playbook")
    controller = generate_rulebooks.VARIANTS[1]
    with pytest.raises(generate_rulebooks.RulebookError, match=r"my\.own\.playbook"):
        generate_rulebooks.generated_body(unknown, controller.transform)


def test_durable_variant_differs_only_by_feedback(project_root: Path) -> None:
    plain = _load(project_root, "remediate_failures")[0]
    durable = _load(project_root, "remediate_failures_durable")[0]
    source = durable["sources"][0]["durable.eda.aws_sqs_queue"]
    assert source.pop("feedback") is True
    assert durable["sources"] == plain["sources"]
    assert durable["rules"] == plain["rules"]


def test_controller_variant_is_durable_and_takes_the_credential_types_options(
    project_root: Path,
) -> None:
    """Same source as the plain variant, plus feedback and what the AWS credential injects."""
    plain = _load(project_root, "remediate_failures")[0]["sources"][0]
    controller = _load(project_root, "remediate_failures_controller")[0]["sources"][0]
    options = controller["durable.eda.aws_sqs_queue"]
    assert options.pop("feedback") is True
    assert options.pop("region") == "{{ sqs_region | default(aws_region | default(none)) }}"
    assert plain["durable.eda.aws_sqs_queue"].pop("region") == "{{ sqs_region | default(none) }}"
    for option in ("role_arn", "role_session_name", "external_id"):
        assert options.pop(option) == f"{{{{ aws_{option} | default(none) }}}}"
    assert controller == plain


def test_controller_variant_runs_the_same_rules_as_job_templates(project_root: Path) -> None:
    plain = _load(project_root, "remediate_failures")[0]
    controller = _load(project_root, "remediate_failures_controller")[0]
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


def _filter_chain(project_root: Path, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The rulebook's event filters, run in order as ansible-rulebook runs them."""
    steps = []
    for entry in _load(project_root, name)[0]["sources"][0]["filters"]:
        ((fqcn, args),) = entry.items()
        plugin = project_root / "extensions/eda/plugins/event_filter" / f"{fqcn.split('.')[-1]}.py"
        steps.append((runpy.run_path(str(plugin))["main"], args or {}))

    def run(event: dict[str, Any]) -> dict[str, Any]:
        for main, args in steps:
            event = main(event, **args)
        return event

    return run


@pytest.mark.parametrize(
    ("dimensions", "host"),
    [
        ({"InstanceId": "i-0123456789abcdef0", "service": "nginx"}, "i-0123456789abcdef0"),
        ({"InstanceId": "i-0123456789abcdef0", "host": "web01"}, "web01"),
    ],
)
@pytest.mark.parametrize("name", RULEBOOKS)
def test_a_cloudwatch_alarms_dimensions_name_the_host(
    project_root: Path, name: str, dimensions: dict[str, str], host: str
) -> None:
    """The host dimension (the CloudWatch agent's) first, else the instance id."""
    notification = sns_notification(cloudwatch_alarm(dimensions=dimensions))
    event = _filter_chain(project_root, name)(source_event(notification))
    assert event["meta"]["hosts"] == host
    assert event["body"]["NewStateValue"] == "ALARM"


@pytest.mark.parametrize("name", RULEBOOKS)
def test_an_alarm_without_a_host_dimension_acts_nowhere(project_root: Path, name: str) -> None:
    alarm = cloudwatch_alarm(dimensions={"AutoScalingGroupName": "web"})
    event = _filter_chain(project_root, name)(source_event(sns_notification(alarm)))
    assert "hosts" not in event["meta"]


def _actions(rule: dict[str, Any]) -> list[dict[str, Any]]:
    actions = rule.get("actions") or [rule["action"]]
    assert isinstance(actions, list)
    return actions


def _without_actions(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if k not in ("action", "actions")}


@pytest.mark.parametrize(
    "plugin",
    [
        "event_source/aws_sqs_queue.py",
        "event_filter/insert_failing_host.py",
        "event_filter/unwrap.py",
    ],
)
def test_plugin_examples_are_valid_rulebooks(project_root: Path, plugin: str) -> None:
    path = project_root / "extensions" / "eda" / "plugins" / plugin
    module = runpy.run_path(str(path))
    assert yaml.safe_load(module["DOCUMENTATION"])["options"]
    Validate.rulebook(yaml.safe_load(module["EXAMPLES"]))
