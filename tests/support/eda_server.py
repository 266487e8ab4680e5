"""What EDA controller (eda-server) does with credentials before ansible-rulebook sees them.

Written from eda-server's source (github.com/ansible/eda-server, August 2026):
- injector templates are rendered by aap_eda.core.utils.strings: Jinja with StrictUndefined
  in a sandboxed native environment; a lone undefined variable renders to the Undefined
  object, which eda-server's own check rejects;
- `env` injectors: missing string inputs are first set to "" (add_default_values_to_user_
  inputs), secret inputs vault-encrypted (consumers.py, get_env_vars_from_credentials);
- `extra_vars` injectors: secret inputs vault-encrypted, then merged into the activation's
  extra vars when it is created (api/serializers/activation.py);
- the vault id is EDA_SERVER; its password reaches ansible-rulebook in a VaultCollection;
- the built-in "Event-Driven Ansible Rule Engine" credential type injects the persistence
  store's settings (core/management/commands/create_initial_data.py, copied below).
"""

from __future__ import annotations

from typing import Any

import jinja2
from ansible.parsing.vault import VaultLib, VaultSecret
from jinja2.nativetypes import NativeEnvironment
from jinja2.sandbox import ImmutableSandboxedEnvironment

VAULT_ID = "EDA_SERVER"

RULE_ENGINE_INPUT_FIELDS: list[dict[str, Any]] = [
    {"id": "postgres_db_host", "type": "string"},
    {"id": "postgres_db_port", "type": "string"},
    {"id": "postgres_db_name", "type": "string"},
    {"id": "postgres_db_user", "type": "string"},
    {"id": "postgres_db_password", "type": "string", "secret": True},
    {"id": "postgres_sslmode", "type": "string", "default": "prefer"},
    {"id": "deduplication_window_size", "type": "string", "default": "5"},
]
RULE_ENGINE_EXTRA_VARS = {
    "drools_db_host": "{{ postgres_db_host }}",
    "drools_db_name": "{{ postgres_db_name }}",
    "drools_db_port": "{{ postgres_db_port }}",
    "drools_db_user": "{{ postgres_db_user }}",
    "drools_sslmode": "{{ postgres_sslmode }}",
    "drools_db_password": "{{ postgres_db_password }}",
    "drools_sslpassword": "{{ postgres_sslpassword | default(None) }}",
    "drools_primary_encryption_secret": "{{ primary_encryption_secret | default(None)}}",
    "drools_secondary_encryption_secret": "{{ secondary_encryption_secret | default(None)}}",
    "drools_expired_window_grace_period": "{{ expired_window_grace_period | default(0) }}",
    "drools_overwrite_if_rulebook_changes": "{{ overwrite_if_rulebook_changes | default(true) }}",
    "drools_deduplication_window_size": "{{ deduplication_window_size | default(5) }}",
}


class _SandboxedNative(ImmutableSandboxedEnvironment, NativeEnvironment):
    """eda-server's _NativeSandboxedEnvironment."""


_JINJA = _SandboxedNative(undefined=jinja2.StrictUndefined)


def render_templates(templates: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    """Injector templates rendered as eda-server renders them; an undefined input fails."""
    rendered: dict[str, Any] = {
        key: _JINJA.from_string(value).render(inputs) if isinstance(value, str) else value
        for key, value in templates.items()
    }
    undefined = sorted(k for k, v in rendered.items() if isinstance(v, jinja2.Undefined))
    assert not undefined, f"undefined input in {undefined}"
    return rendered


def with_string_defaults(fields: list[dict[str, Any]], inputs: dict[str, Any]) -> dict[str, Any]:
    """add_default_values_to_user_inputs: what the `env` injectors are rendered with."""
    defaults = {f["id"]: f.get("default") or "" for f in fields if f.get("type") == "string"}
    return defaults | inputs


class Vault:
    """The system vault of eda-server: encrypts secret inputs for ansible-rulebook."""

    def __init__(self, password: str) -> None:
        self.password = password
        self._lib = VaultLib([(VAULT_ID, VaultSecret(password.encode()))])

    def encrypt(self, plaintext: str) -> str:
        return str(self._lib.encrypt(plaintext, vault_id=VAULT_ID).decode())

    def encrypt_secrets(
        self, fields: list[dict[str, Any]], inputs: dict[str, Any]
    ) -> dict[str, Any]:
        secret = {f["id"] for f in fields if f.get("secret")}
        return {
            k: self.encrypt(str(v)) if k in secret and v is not None else v
            for k, v in inputs.items()
        }

    def collection_message(self) -> dict[str, Any]:
        """The VaultCollection message of the workload."""
        return {
            "type": "VaultCollection",
            "data": [{"type": "VaultPassword", "label": VAULT_ID, "password": self.password}],
        }


def inject(
    fields: list[dict[str, Any]],
    injectors: dict[str, Any],
    inputs: dict[str, Any],
    vault: Vault | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(env, extra_vars) of one credential, as eda-server hands them to ansible-rulebook."""
    env_inputs = with_string_defaults(fields, inputs)
    extra_inputs = dict(inputs)
    if vault is not None:
        env_inputs = vault.encrypt_secrets(fields, env_inputs)
        extra_inputs = vault.encrypt_secrets(fields, extra_inputs)
    env = render_templates(injectors.get("env", {}), env_inputs)
    extra_vars = render_templates(injectors.get("extra_vars", {}), extra_inputs)
    return env, extra_vars
