"""The AWS credential type: what EDA controller accepts, and what reaches the SQS source.

EDA controller (eda-server) renders a credential type's injectors with Jinja's
StrictUndefined in a sandboxed native environment (aap_eda.core.utils.strings). For `env`
it first fills every missing string input with "" (add_default_values_to_user_inputs); for
`extra_vars` it does not, so those templates must name their own default. ansible-rulebook
then sets the `env` values as environment variables and the `extra_vars` as rulebook
variables. These tests render the type the same way and hand the result to the real
consumers: botocore's environment credential provider and the controller rulebook's
source options as ansible-rulebook renders them, into the plugin's own option parsing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import yaml
from ansible_rulebook.util import substitute_variables
from aws_sqs_queue import Config
from botocore.credentials import EnvProvider
from jinja2.nativetypes import NativeEnvironment
from jinja2.sandbox import ImmutableSandboxedEnvironment

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


class _SandboxedNative(ImmutableSandboxedEnvironment, NativeEnvironment):
    """eda-server's _NativeSandboxedEnvironment."""


_EDA_SERVER_JINJA = _SandboxedNative(undefined=jinja2.StrictUndefined)


def _load(project_root: Path, name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((project_root / TYPE_DIR / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def _render(templates: dict[str, str], inputs: dict[str, Any]) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        k: _EDA_SERVER_JINJA.from_string(v).render(inputs) for k, v in templates.items()
    }
    # A lone undefined variable renders to the Undefined object itself, not an error: eda-server
    # checks for it (_check_jinja_string); its YAML dump of extra vars would fail on it.
    undefined = sorted(k for k, v in rendered.items() if isinstance(v, jinja2.Undefined))
    assert not undefined, f"undefined input in {undefined}"
    return rendered


def _inject(project_root: Path, inputs: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """(environment, extra vars) as EDA controller injects them for these inputs."""
    fields = _load(project_root, "input.yml")["fields"]
    injectors = _load(project_root, "injectors.yml")
    env_inputs = {f["id"]: f.get("default") or "" for f in fields} | inputs
    env = {k: str(v) for k, v in _render(injectors["env"], env_inputs).items()}
    return env, _render(injectors["extra_vars"], inputs)


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
    _render(injectors["env"] | injectors["extra_vars"], dict.fromkeys(ids, ""))


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
