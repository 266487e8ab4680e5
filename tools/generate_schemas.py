"""Write the JSON schema of every event source and event filter from its DOCUMENTATION.

EDA controller renders a plugin's options from extensions/eda/plugins/<kind>/schemas/<name>.json
and masks the ones whose format is "password". The schema is derived, never edited by hand:
after changing a plugin's DOCUMENTATION run `python tools/generate_schemas.py`
(tests/unit/test_schemas.py fails while a schema is stale or missing).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_KINDS = ("event_source", "event_filter")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# Options whose values are credentials: the controller masks them. The names are those of the
# AWS credential options and of any option that ends like a credential.
SECRET_OPTION = re.compile(r"(key|secret|token|password)$|^external_id$")
# Set by ansible-rulebook itself at run time, never by a user: not part of the form.
RULEBOOK_SET_OPTIONS = frozenset({"eda_feedback_queue"})

JSON_TYPES = {
    "str": "string",
    "path": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "list": "array",
    "dict": "object",
}
TITLE_WORDS = {"url": "URL", "id": "ID", "arn": "ARN", "aws": "AWS"}
# Ansible documentation markup, e.g. I(option), C(code), O(option=value), L(text,url).
MARKUP = re.compile(r"\b([BCIMOPRUV])\(((?:[^()]|\([^()]*\))*)\)")
LINK = re.compile(r"\bL\(([^,()]*),[^()]*\)")


class SchemaError(Exception):
    """A plugin whose DOCUMENTATION cannot be turned into a schema."""


def plugin_files(root: Path = ROOT) -> list[Path]:
    """Every event source and event filter plugin of the collection."""
    found: list[Path] = []
    for kind in PLUGIN_KINDS:
        directory = root / "extensions" / "eda" / "plugins" / kind
        found.extend(p for p in sorted(directory.glob("*.py")) if p.name != "__init__.py")
    return found


def schema_path(plugin: Path) -> Path:
    return plugin.parent / "schemas" / f"{plugin.stem}.json"


def documentation(plugin: Path) -> dict[str, Any]:
    """The plugin's DOCUMENTATION, read without importing the plugin (or its dependencies)."""
    tree = ast.parse(plugin.read_text(encoding="utf-8"), filename=str(plugin))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "DOCUMENTATION" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            loaded = yaml.safe_load(node.value.value)
            if not isinstance(loaded, dict):
                raise SchemaError(f"{plugin}: DOCUMENTATION is not a YAML mapping")
            return loaded
    raise SchemaError(f"{plugin}: no DOCUMENTATION string")


def plain_text(lines: str | list[str]) -> str:
    text = " ".join(lines) if isinstance(lines, list) else lines
    text = LINK.sub(r"\1", text)
    return " ".join(MARKUP.sub(r"\2", text).split())


def title(option: str) -> str:
    return " ".join(TITLE_WORDS.get(word, word.capitalize()) for word in option.split("_"))


def option_schema(plugin: Path, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    ansible_type = spec.get("type", "str")
    schema: dict[str, Any] = {"title": title(name), "description": plain_text(spec["description"])}
    if ansible_type != "raw":
        if ansible_type not in JSON_TYPES:
            raise SchemaError(f"{plugin}: option {name!r} has unknown type {ansible_type!r}")
        schema["type"] = JSON_TYPES[ansible_type]
    if ansible_type == "list" and "elements" in spec:
        schema["items"] = {"type": JSON_TYPES[spec["elements"]]}
    if "choices" in spec:
        # A list option's choices are those of its elements (Ansible's meaning).
        target = schema.setdefault("items", {}) if ansible_type == "list" else schema
        target["enum"] = list(spec["choices"])
    if "default" in spec:
        schema["default"] = spec["default"]
    if SECRET_OPTION.search(name):
        schema["format"] = "password"
    return schema


def schema_id(plugin: Path, root: Path) -> str:
    """Where the schema lives in the collection's repository (galaxy.yml's `repository`)."""
    galaxy = yaml.safe_load((root / "galaxy.yml").read_text(encoding="utf-8"))
    return f"{galaxy['repository']}/blob/main/{schema_path(plugin).relative_to(root).as_posix()}"


def schema_for(plugin: Path, root: Path = ROOT) -> dict[str, Any]:
    doc = documentation(plugin)
    options: dict[str, dict[str, Any]] = doc.get("options") or {}
    properties = {
        name: option_schema(plugin, name, spec)
        for name, spec in options.items()
        if name not in RULEBOOK_SET_OPTIONS
    }
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_id(plugin, root),
        "title": f"durable.eda.{plugin.stem}",
        "description": plain_text(doc["short_description"]),
        "type": "object",
        "properties": properties,
    }
    required = [name for name, spec in options.items() if spec.get("required")]
    if required:
        schema["required"] = required
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=4) + "\n"


def stale(root: Path = ROOT) -> list[Path]:
    """The schema files that are missing or differ from their plugin's DOCUMENTATION."""
    return [
        schema_path(plugin)
        for plugin in plugin_files(root)
        if not schema_path(plugin).is_file()
        or schema_path(plugin).read_text(encoding="utf-8") != render(schema_for(plugin, root))
    ]


def write_all(root: Path = ROOT) -> list[Path]:
    written = []
    for plugin in plugin_files(root):
        target = schema_path(plugin)
        text = render(schema_for(plugin, root))
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report stale schemas (exit 1 if any)"
    )
    args = parser.parse_args(argv)
    try:
        changed = stale() if args.check else write_all()
    except SchemaError as error:
        print(error, file=sys.stderr)
        return 1
    for path in changed:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
