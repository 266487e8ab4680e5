"""The remediation playbooks run alone: check mode, idempotence, clear failures."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.support import DemoTarget, subprocess_env, tool

pytestmark = pytest.mark.e2e


def run_playbook(
    collection: Path, target: DemoTarget, name: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    playbook = collection / "ansible_collections/durable/eda/playbooks" / f"{name}.yml"
    command = [tool("ansible-playbook"), "-i", str(target.inventory), str(playbook), *extra]
    return subprocess.run(
        command,
        env=subprocess_env(collection),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_mode_changes_nothing(installed_collection: Path, target: DemoTarget) -> None:
    target.break_service("api")
    for name in ("restart_service", "collect_diagnostics"):
        result = run_playbook(
            installed_collection, target, name, "--check", "-e", "remediation_service=api"
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert target.state("api") == "down"
    assert target.remediations() == []
    assert target.diagnostics("api") == []


def test_restart_is_idempotent(installed_collection: Path, target: DemoTarget) -> None:
    target.break_service("api")
    outcomes = []
    for _ in range(2):
        result = run_playbook(
            installed_collection, target, "restart_service", "-e", "remediation_service=api"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outcomes.append(result.stdout)
    assert target.state("api") == "running"
    assert "api on web01: restarted" in outcomes[0]
    # The second run only appends to the journal: the service is left alone.
    assert "api on web01: already running" in outcomes[1]
    assert "changed=1" in outcomes[1]


@pytest.mark.parametrize("service", [None, "nginx; rm -rf /", "../etc/passwd", "--force"])
def test_bad_service_name_fails_clearly(
    installed_collection: Path, target: DemoTarget, service: str | None
) -> None:
    extra = [] if service is None else ["-e", f"remediation_service={service}"]
    result = run_playbook(installed_collection, target, "restart_service", *extra)
    assert result.returncode != 0
    assert "remediation_service must name the service to restart" in result.stdout
    assert list(target.services.iterdir()) == []


def test_unreachable_notify_url_does_not_fail_the_remediation(
    installed_collection: Path, target: DemoTarget
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    target.break_service("api")
    result = run_playbook(
        installed_collection,
        target,
        "restart_service",
        "-e",
        "remediation_service=api",
        "-e",
        f"notify_url=http://127.0.0.1:{closed_port}/hook",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert target.state("api") == "running"
    assert "Could not post the outcome to the notification URL" in result.stdout
