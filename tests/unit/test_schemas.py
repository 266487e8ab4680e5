"""The plugins' JSON schemas (EDA controller's forms) say what their DOCUMENTATION says."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import aws_sqs_queue
import pytest
import yaml
from jsonschema import Draft202012Validator

from tools import generate_schemas

PLUGINS = generate_schemas.plugin_files()
AWS_SECRETS = {"access_key", "secret_key", "session_token", "external_id"}


def plugin_id(plugin: Path) -> str:
    return f"{plugin.parent.name}/{plugin.stem}"


def shipped_schema(plugin: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(generate_schemas.schema_path(plugin).read_text())
    return loaded


def examples(plugin: Path) -> list[dict[str, Any]]:
    """The rulesets of the plugin's EXAMPLES."""
    tree = ast.parse(plugin.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "EXAMPLES" for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant)
            assert isinstance(node.value.value, str)
            rulesets: list[dict[str, Any]] = yaml.safe_load(node.value.value)
            return rulesets
    return []


def uses_in_examples(plugin: Path) -> list[dict[str, Any]]:
    """The arguments each example gives the plugin, as a source or as a filter."""
    name = f"durable.eda.{plugin.stem}"
    found: list[dict[str, Any]] = []
    for ruleset in examples(plugin):
        for source in ruleset.get("sources", []):
            found.extend(args or {} for key, args in source.items() if key == name)
            for event_filter in source.get("filters", []):
                found.extend(args or {} for key, args in event_filter.items() if key == name)
    return found


def test_every_event_source_and_filter_is_covered() -> None:
    kinds = {plugin.parent.name for plugin in PLUGINS}
    assert kinds == {"event_source", "event_filter"}
    assert "aws_sqs_queue" in {plugin.stem for plugin in PLUGINS}


@pytest.mark.parametrize("plugin", PLUGINS, ids=plugin_id)
def test_the_shipped_schema_matches_the_documentation(plugin: Path) -> None:
    target = generate_schemas.schema_path(plugin)
    assert target.is_file(), f"{target} is missing: run python tools/generate_schemas.py"
    expected = generate_schemas.render(generate_schemas.schema_for(plugin))
    assert target.read_text() == expected, (
        f"{target} differs from {plugin.name}'s DOCUMENTATION: run python tools/generate_schemas.py"
    )


@pytest.mark.parametrize("plugin", PLUGINS, ids=plugin_id)
def test_the_schema_is_valid_and_accepts_the_plugins_examples(plugin: Path) -> None:
    schema = shipped_schema(plugin)
    Draft202012Validator.check_schema(schema)
    uses = uses_in_examples(plugin)
    assert uses, f"{plugin.name}'s EXAMPLES never use durable.eda.{plugin.stem}"
    for args in uses:
        Draft202012Validator(schema).validate(args)


def test_the_aws_credentials_are_masked_and_nothing_else() -> None:
    (plugin,) = (p for p in PLUGINS if p.stem == "aws_sqs_queue")
    properties = shipped_schema(plugin)["properties"]
    masked = {name for name, spec in properties.items() if spec.get("format") == "password"}
    assert masked == AWS_SECRETS
    # The same options the plugin keeps out of its own repr and error messages.
    hidden = {f.name for f in dataclasses.fields(aws_sqs_queue.Config) if not f.repr}
    assert masked == hidden


def test_options_set_by_ansible_rulebook_are_not_in_the_form() -> None:
    (plugin,) = (p for p in PLUGINS if p.stem == "aws_sqs_queue")
    properties = shipped_schema(plugin)["properties"]
    assert "eda_feedback_queue" not in properties
    assert set(properties) | {"eda_feedback_queue"} == aws_sqs_queue.VALID_OPTIONS


def test_types_defaults_and_markup_follow_the_documentation() -> None:
    (plugin,) = (p for p in PLUGINS if p.stem == "aws_sqs_queue")
    properties = shipped_schema(plugin)["properties"]
    assert properties["wait_time_seconds"] == {
        "title": "Wait Time Seconds",
        "description": "Long-poll duration of each receive, 0 to 20 seconds.",
        "type": "integer",
        "default": 20,
    }
    assert properties["feedback"]["type"] == "boolean"
    assert properties["feedback_timeout"]["type"] == "number"
    assert properties["queue_url"]["title"] == "Queue URL"
    assert "I(" not in properties["queue_url"]["description"]


def copy_collection(tmp_path: Path) -> Path:
    root = tmp_path / "collection"
    source_dir = root / "extensions" / "eda" / "plugins" / "event_source"
    source_dir.mkdir(parents=True)
    (root / "extensions" / "eda" / "plugins" / "event_filter").mkdir()
    shutil.copy(generate_schemas.ROOT / "galaxy.yml", root)
    shutil.copy(
        generate_schemas.ROOT / source_dir.relative_to(root) / "aws_sqs_queue.py", source_dir
    )
    return root


def test_the_generator_reports_a_new_plugin_and_a_changed_option(tmp_path: Path) -> None:
    root = copy_collection(tmp_path)
    plugin = root / "extensions" / "eda" / "plugins" / "event_source" / "aws_sqs_queue.py"
    assert generate_schemas.stale(root) == [generate_schemas.schema_path(plugin)]
    assert generate_schemas.write_all(root) == [generate_schemas.schema_path(plugin)]
    assert generate_schemas.stale(root) == []

    plugin.write_text(plugin.read_text().replace("Messages per receive, 1 to 10.", "Per receive."))
    assert generate_schemas.stale(root) == [generate_schemas.schema_path(plugin)]

    new_filter = root / "extensions" / "eda" / "plugins" / "event_filter" / "unwrap.py"
    new_filter.write_text('DOCUMENTATION = """\nshort_description: Unwrap.\noptions: {}\n"""\n')
    assert generate_schemas.schema_path(new_filter) in generate_schemas.stale(root)


def test_a_plugin_without_documentation_is_refused(tmp_path: Path) -> None:
    root = copy_collection(tmp_path)
    bare = root / "extensions" / "eda" / "plugins" / "event_filter" / "bare.py"
    bare.write_text("def main(event):\n    return event\n")
    with pytest.raises(generate_schemas.SchemaError, match=r"bare\.py: no DOCUMENTATION"):
        generate_schemas.write_all(root)


def test_a_list_options_choices_bound_its_elements() -> None:
    (plugin,) = (p for p in PLUGINS if p.stem == "unwrap")
    validator = Draft202012Validator(shipped_schema(plugin))
    validator.validate({"envelopes": ["sns", "eventbridge"]})
    assert not validator.is_valid({"envelopes": ["sqs"]})
    assert not validator.is_valid({"envelopes": "sns"})
