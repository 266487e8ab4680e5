"""The AWS credential type: what EDA controller accepts, and what reaches the SQS source.

EDA controller renders a credential type's injectors as tests/support/eda_server.py does:
missing string inputs are "" for `env` but undefined for `extra_vars`, so those templates
must name their own default. ansible-rulebook then sets the `env` values as environment
variables and the `extra_vars` as rulebook variables. These tests hand the rendered
injectors to the real consumers: botocore's environment credential provider, and the
controller rulebook's source options as ansible-rulebook renders them, into the plugin's
own option parsing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from ansible_rulebook.util import substitute_variables
from aws_sqs_queue import Config
from botocore.credentials import EnvProvider

from tests.support.eda_server import inject, render_templates

TYPE_DIR = Path("extensions/eda/plugins/event_source/credential_types/aws-sqs")
CONTROLLER_RULEBOOK = Path("extensions/eda/rulebooks/remediate_failures_controller.yml")
# eda-server's rules for a custom credential type (aap_eda.core.utils.credentials).
INJECTOR_SECTIONS = {"env", "extra_vars", "file"}
RESERVED_EXTRA_VARS = {"ansible", "eda"}
FULL_INPUTS = {
    "access_key": "AKIAEXAMPLEACCESSKEY",
    "secret_key": "example-secret-key",
    "session_token": "example-session-token",
    "role_arn": "arn:aws:iam::123456789012:role/eda-consumer",
    "role_session_name": "eda-activation",
    "external_id": "example-external-id",
    "region": "eu-west-1",
}


def _load(project_root: Path, name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((project_root / TYPE_DIR / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def _inject(project_root: Path, inputs: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """(environment, extra vars) as EDA controller injects them for these inputs."""
    fields = _load(project_root, "input.yml")["fields"]
    env, extra_vars = inject(fields, _load(project_root, "injectors.yml"), inputs)
    return {k: str(v) for k, v in env.items()}, extra_vars


def _source_config(project_root: Path, extra_vars: dict[str, Any]) -> Config:
    """The controller rulebook's source options, rendered by ansible-rulebook, parsed."""
    rulebook = yaml.safe_load((project_root / CONTROLLER_RULEBOOK).read_text())
    options = rulebook[0]["sources"][0]["durable.eda.aws_sqs_queue"]
    variables = {"sqs_queue_name": "eda-events", **extra_vars}
    rendered = substitute_variables(options, variables)
    assert isinstance(rendered, dict)
    return Config.from_args({**rendered, "eda_feedback_queue": object()})


def test_the_type_passes_eda_servers_checks(project_root: Path) -> None:
    inputs = _load(project_root, "input.yml")
    injectors = _load(project_root, "injectors.yml")
    ids = [field["id"] for field in inputs["fields"]]
    assert len(ids) == len(set(ids))
    for field in inputs["fields"]:
        assert re.fullmatch(r"\w+", field["id"])
        assert not field["id"].upper().startswith("EDA_")
        assert isinstance(field["label"], str)
        assert field.get("type", "string") == "string"
    assert set(injectors) <= INJECTOR_SECTIONS
    keys = [key for section in injectors.values() for key in section]
    assert len(keys) == len(set(keys))
    assert not set(injectors.get("extra_vars", {})) & RESERVED_EXTRA_VARS
    # eda-server validates each template against a context of empty strings.
    render_templates(injectors["env"] | injectors["extra_vars"], dict.fromkeys(ids, ""))


def test_secrets_are_marked_secret(project_root: Path) -> None:
    secret = {f["id"] for f in _load(project_root, "input.yml")["fields"] if f.get("secret")}
    assert secret == {"secret_key", "session_token", "external_id"}


def test_keys_reach_botocores_environment_chain(project_root: Path) -> None:
    env, _ = _inject(project_root, FULL_INPUTS)
    credentials = EnvProvider(environ=env).load()
    assert credentials is not None
    assert credentials.access_key == FULL_INPUTS["access_key"]
    assert credentials.secret_key == FULL_INPUTS["secret_key"]
    assert credentials.token == FULL_INPUTS["session_token"]


def test_role_and_region_reach_the_sources_options(project_root: Path) -> None:
    _, extra_vars = _inject(project_root, FULL_INPUTS)
    config = _source_config(project_root, extra_vars)
    assert config.role_arn == FULL_INPUTS["role_arn"]
    assert config.role_session_name == FULL_INPUTS["role_session_name"]
    assert config.external_id == FULL_INPUTS["external_id"]
    assert config.region == FULL_INPUTS["region"]
    assert config.feedback is True


def test_the_activations_own_region_wins(project_root: Path) -> None:
    _, extra_vars = _inject(project_root, FULL_INPUTS)
    config = _source_config(project_root, {**extra_vars, "sqs_region": "us-west-2"})
    assert config.region == "us-west-2"


def test_empty_fields_leave_the_sources_defaults(project_root: Path) -> None:
    """A credential with only a role: the keys come from the host's own chain, not ""."""
    env, extra_vars = _inject(project_root, {"role_arn": FULL_INPUTS["role_arn"]})
    assert EnvProvider(environ=env).load() is None
    config = _source_config(project_root, extra_vars)
    assert (config.region, config.external_id) == (None, None)
    assert (config.role_arn, config.role_session_name) == (FULL_INPUTS["role_arn"], "durable-eda")


def test_a_credential_without_role_passes_no_role_options(project_root: Path) -> None:
    _, extra_vars = _inject(project_root, {"access_key": "AKIA", "secret_key": "s"})
    assert _source_config(project_root, extra_vars).role_arn is None
