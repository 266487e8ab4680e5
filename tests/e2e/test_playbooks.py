"""The remediation playbooks run alone: check mode, idempotence, event ids acted on once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.support import DemoTarget, subprocess_env, tool
from tests.support.aws import wait_until

pytestmark = pytest.mark.e2e


def playbook_command(collection: Path, inventory: Path, name: str, *extra: str) -> list[str]:
    playbook = collection / "ansible_collections/durable/eda/playbooks" / f"{name}.yml"
    return [tool("ansible-playbook"), "-i", str(inventory), str(playbook), *extra]


def run_playbook(
    collection: Path, target: DemoTarget, name: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        playbook_command(collection, target.inventory, name, *extra),
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


def remediate(
    collection: Path, target: DemoTarget, event_id: str, name: str = "restart_service"
) -> subprocess.CompletedProcess[str]:
    result = run_playbook(
        collection,
        target,
        name,
        "-e",
        "remediation_service=api",
        "-e",
        f"remediation_event_id={event_id}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_an_event_remediated_once_is_skipped_when_it_comes_again(
    installed_collection: Path, target: DemoTarget
) -> None:
    target.break_service("api")
    remediate(installed_collection, target, "event-1")
    # Broken again: a second run for event-1 that acted would bring it back.
    target.break_service("api")
    second = remediate(installed_collection, target, "event-1")

    assert "api on web01: skipped, event event-1 was remediated already" in second.stdout
    assert target.state("api") == "down"
    assert target.remediations() == [("api", "event-1")]
    assert target.skips() == [("api", "event-1")]
    assert [(r["event_id"], r["outcome"]) for r in target.records()] == [("event-1", "restarted")]

    # Another event for the same service is a new remediation.
    remediate(installed_collection, target, "event-2")
    assert target.state("api") == "running"
    assert target.remediations() == [("api", "event-1"), ("api", "event-2")]


def test_diagnostics_for_one_event_are_collected_once(
    installed_collection: Path, target: DemoTarget
) -> None:
    target.break_service("api")
    remediate(installed_collection, target, "event-1", "collect_diagnostics")
    second = remediate(installed_collection, target, "event-1", "collect_diagnostics")

    assert "skipped, event event-1 has its report already" in second.stdout
    assert len(target.diagnostics("api")) == 1
    # The restart for the same event has its own record: diagnostics do not skip it.
    remediate(installed_collection, target, "event-1")
    assert target.state("api") == "running"
    assert sorted(r["playbook"] for r in target.records()) == [
        "collect_diagnostics",
        "restart_service",
    ]


def inventory_with_interpreter(target: DemoTarget, tmp_path: Path, name: str, script: str) -> Path:
    """The target's inventory with a shell script in front of its Python interpreter.

    The script runs before each task's module, so it can stop a run at an exact point.
    """
    interpreter = tmp_path / name
    interpreter.write_text(f"#!/bin/sh\n{script}exec '{sys.executable}' \"$@\"\n")
    interpreter.chmod(0o755)
    inventory = yaml.safe_load(target.inventory.read_text())
    inventory["all"]["hosts"][target.host]["ansible_python_interpreter"] = str(interpreter)
    path = tmp_path / f"{name}-inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


def start_remediation(
    collection: Path, inventory: Path, event_id: str, stdout: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        playbook_command(
            collection,
            inventory,
            "restart_service",
            *("-e", "remediation_service=api", "-e", f"remediation_event_id={event_id}"),
        ),
        env=subprocess_env(collection),
        stdout=stdout,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def hang_once_running(target: DemoTarget, reached: Path, until: str) -> str:
    """Shell: once the service runs, say so and wait for `until` (a shell condition)."""
    return (
        f"if grep -qx running '{target.services / 'api.state'}' 2>/dev/null; then\n"
        f"  touch '{reached}'\n"
        f"  while ! {until}; do sleep 0.05; done\n"
        "fi\n"
    )


def test_a_run_cut_short_after_acting_records_nothing_and_acts_again(
    installed_collection: Path, target: DemoTarget, tmp_path: Path
) -> None:
    """A crash between the restart and its record: the event's next run is not skipped.

    The run hangs once the service is running, and ansible-playbook is killed (SIGKILL to its
    process group) at that exact point, holding the event's claim.
    """
    reached = tmp_path / "crash-point-reached"
    crashing = inventory_with_interpreter(
        target, tmp_path, "python-until-running", hang_once_running(target, reached, "false")
    )
    target.break_service("api")

    run = start_remediation(
        installed_collection,
        crashing,
        "event-1",
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(reached.exists, 60, 0.05, "the run to reach the crash point")
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(30)
    assert (target.state("api"), target.records(), target.journal()) == ("running", [], [])

    again = remediate(installed_collection, target, "event-1")
    assert "api on web01: already running" in again.stdout
    assert target.remediations() == [("api", "event-1")]
    assert [r["event_id"] for r in target.records()] == ["event-1"]


def test_a_run_started_while_another_holds_the_event_waits_and_skips(
    installed_collection: Path, target: DemoTarget, tmp_path: Path
) -> None:
    """Two runs for one event at once (two activations holding the same message): one acts.

    The first run stops after acting, before its record, until the second run has started
    its claim. The second must wait for the first's record and skip, not act too.
    """
    reached, claiming = tmp_path / "first-acted", tmp_path / "second-claiming"
    first_inventory = inventory_with_interpreter(
        target,
        tmp_path,
        "python-first",
        hang_once_running(target, reached, f"test -e '{claiming}'"),
    )
    second_inventory = inventory_with_interpreter(
        target,
        tmp_path,
        "python-second",
        f"case \"$1\" in *remediation_claim*) touch '{claiming}' ;; esac\n",
    )
    target.break_service("api")

    first = start_remediation(
        installed_collection, first_inventory, "event-1", stdout=subprocess.PIPE
    )
    wait_until(reached.exists, 60, 0.05, "the first run to act")
    second = start_remediation(
        installed_collection, second_inventory, "event-1", stdout=subprocess.PIPE
    )
    outputs = [run.communicate(timeout=120)[0] for run in (first, second)]

    assert [run.returncode for run in (first, second)] == [0, 0], outputs
    assert "api on web01: restarted" in outputs[0]
    assert "api on web01: skipped, event event-1 was remediated already" in outputs[1]
    assert target.remediations() == [("api", "event-1")]
    assert target.skips() == [("api", "event-1")]
