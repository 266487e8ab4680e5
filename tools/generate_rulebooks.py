"""Write the durable and controller rulebooks from rulebooks/remediate_failures.yml.

The rules are written once, in remediate_failures.yml. Its variants differ only in what this
script changes: the durable one sets `feedback: true`; the controller one also takes the AWS
credential type's role and region and runs each playbook as a job template on the failing
host. A variant's file keeps its own header (the comments above GENERATED_MARK, written by
hand); everything below the mark is generated. After editing remediate_failures.yml run
`python tools/generate_rulebooks.py` (tests/rulebooks/test_rulebooks.py fails until then).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Quoted

ROOT = Path(__file__).resolve().parent.parent
SOURCE = Path("rulebooks/remediate_failures.yml")
GENERATED_MARK = (
    "# Generated from rulebooks/remediate_failures.yml by tools/generate_rulebooks.py:"
    " edit that file, not below.\n"
)
# The job template (its variable and default name) that runs each playbook on the controller.
JOB_TEMPLATES = {
    "durable.eda.restart_service": ("restart_job_template", "durable.eda restart service"),
    "durable.eda.collect_diagnostics": (
        "diagnostics_job_template",
        "durable.eda collect diagnostics",
    ),
}
FEEDBACK_COMMENT = "Delete a message only once the engine has acknowledged (persisted) its event."
SOURCE_PLUGIN = "durable.eda.aws_sqs_queue"


class RulebookError(Exception):
    """A variant that cannot be generated."""


def yaml_handler() -> YAML:
    handler = YAML()
    handler.indent(mapping=2, sequence=4, offset=2)
    handler.width = 4096
    handler.preserve_quotes = True
    return handler


def source_options(ruleset: CommentedMap) -> CommentedMap:
    options = ruleset["sources"][0][SOURCE_PLUGIN]
    assert isinstance(options, CommentedMap)
    return options


def set_feedback(options: CommentedMap) -> None:
    options["feedback"] = True
    options.yaml_set_comment_before_after_key("feedback", before=FEEDBACK_COMMENT, indent=8)


def make_durable(ruleset: CommentedMap) -> None:
    ruleset["name"] = "Remediate failures durably"
    set_feedback(source_options(ruleset))


def job_template(playbook: CommentedMap) -> CommentedMap:
    if playbook["name"] not in JOB_TEMPLATES:
        raise RulebookError(f"no job template for playbook {playbook['name']!r}")
    variable, default = JOB_TEMPLATES[playbook["name"]]
    job = CommentedMap()
    job["name"] = Quoted(f"{{{{ {variable} | default('{default}') }}}}")
    job["organization"] = Quoted("{{ controller_organization | default('Default') }}")
    job["job_args"] = CommentedMap(
        [("limit", Quoted("{{ event.meta.hosts }}")), ("extra_vars", playbook["extra_vars"])]
    )
    return job


def as_job_templates(rule: CommentedMap) -> None:
    actions = rule["actions"] if "actions" in rule else [rule["action"]]
    for action in actions:
        if "run_playbook" in action:
            playbook = action.pop("run_playbook")
            action["run_job_template"] = job_template(playbook)


def make_controller(ruleset: CommentedMap) -> None:
    ruleset["name"] = "Remediate failures with controller job templates"
    options = source_options(ruleset)
    options["region"] = Quoted("{{ sqs_region | default(aws_region | default(none)) }}")
    # What the durable.eda AWS credential type injects as extra vars.
    for option in ("role_arn", "role_session_name", "external_id"):
        options[option] = Quoted(f"{{{{ aws_{option} | default(none) }}}}")
    set_feedback(options)
    for rule in ruleset["rules"]:
        as_job_templates(rule)


@dataclass(frozen=True)
class Variant:
    path: Path
    transform: Callable[[CommentedMap], None]


VARIANTS = (
    Variant(Path("rulebooks/remediate_failures_durable.yml"), make_durable),
    Variant(Path("extensions/eda/rulebooks/remediate_failures_controller.yml"), make_controller),
)


def rules_text(source: str) -> str:
    """The source rulebook without its header: from the first ruleset on."""
    start = source.find("\n- name:")
    if start < 0:
        raise RulebookError(f"{SOURCE}: no ruleset ('- name:') found")
    return source[start + 1 :]


def generated_body(source: str, transform: Callable[[CommentedMap], None]) -> str:
    handler = yaml_handler()
    rulesets: Any = handler.load(rules_text(source))
    for ruleset in rulesets:
        transform(ruleset)
    out = io.StringIO()
    handler.dump(rulesets, out)
    return "".join(map(top_level_flush, out.getvalue().splitlines(keepends=True)))


def top_level_flush(line: str) -> str:
    """Undo ruamel's sequence offset at the top level, where the rulebooks have none.

    ruamel indents every sequence's dash by the offset, the top-level one too; comments keep
    the column they had in the source, which is already right.
    """
    if line.startswith("  ") and not line.lstrip().startswith("#"):
        return line[2:]
    return line


def header(variant_file: Path) -> str:
    text = variant_file.read_text(encoding="utf-8")
    if GENERATED_MARK not in text:
        raise RulebookError(f"{variant_file}: its header must end with the line {GENERATED_MARK!r}")
    return text.split(GENERATED_MARK, 1)[0] + GENERATED_MARK


def expected(variant: Variant, root: Path = ROOT) -> str:
    source = (root / SOURCE).read_text(encoding="utf-8")
    return header(root / variant.path) + generated_body(source, variant.transform)


def stale(root: Path = ROOT) -> list[Path]:
    return [
        v.path for v in VARIANTS if (root / v.path).read_text(encoding="utf-8") != expected(v, root)
    ]


def write_all(root: Path = ROOT) -> list[Path]:
    written = []
    for variant in VARIANTS:
        text = expected(variant, root)
        target = root / variant.path
        if target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            written.append(variant.path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale variants")
    args = parser.parse_args(argv)
    try:
        changed = stale() if args.check else write_all()
    except RulebookError as error:
        print(error, file=sys.stderr)
        return 1
    for path in changed:
        print(f"{'stale' if args.check else 'wrote'}: {path}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
