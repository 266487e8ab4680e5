"""What `make demo` and the end-to-end tests both use to run the collection for real.

The collection built and installed from its tarball, as users get it; and the demo host: an
inventory of one host whose "services" are state files (a failure really breaks one, the
restart_service playbook really fixes it) and whose journal records every restart_service
run. The journal's line format is parsed here and nowhere else.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

VENV_BIN = Path(sys.executable).parent
# What playbooks/restart_service.yml appends to the host's journal, one line per run.
JOURNAL_LINE = re.compile(
    r"restart_service service=(?P<service>\S+) host=\S+ event=(?P<event>\S+)"
    r" outcome=(?P<outcome>.*)$"
)


def tool(name: str) -> str:
    return str(VENV_BIN / name)


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment with the venv's tools first on PATH (ansible-rulebook finds
    collections with ansible-galaxy), plus `extra`."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.update(extra or {})
    return env


def build_and_install_collection(project_root: Path, where: Path) -> Path:
    """`ansible-galaxy collection build` + `install -p`: the collection as users get it.

    Returns the collections folder (for ANSIBLE_COLLECTIONS_PATH).
    """
    tarballs, collections = where / "dist", where / "collections"
    subprocess.run(
        [tool("ansible-galaxy"), "collection", "build", "--output-path", str(tarballs), "."],
        cwd=project_root,
        env=tool_env(),
        check=True,
        capture_output=True,
    )
    (tarball,) = tarballs.glob("durable-eda-*.tar.gz")
    subprocess.run(
        [tool("ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarball)],
        env=tool_env(),
        check=True,
        capture_output=True,
    )
    return collections


class JournalEntry(NamedTuple):
    """One restart_service run as the demo host's journal records it (on its one host)."""

    service: str
    event_id: str
    outcome: str

    @property
    def skipped(self) -> bool:
        """The run found its event remediated already (the playbooks act once per event)."""
        return self.outcome.startswith("skipped")


def parse_journal(text: str) -> list[JournalEntry]:
    found = (JOURNAL_LINE.search(line) for line in text.splitlines())
    return [JournalEntry(m["service"], m["event"], m["outcome"]) for m in found if m]


@dataclass
class DemoTarget:
    """A host whose "services" are state files: a failure really breaks, a restart really fixes."""

    root: Path
    host: str = "web01"

    @property
    def services(self) -> Path:
        return self.root / "services"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yml"

    def create(self) -> DemoTarget:
        self.services.mkdir(parents=True, exist_ok=True)
        host_vars = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "durable_eda_service_state_dir": str(self.services),
        }
        inventory = {"all": {"hosts": {self.host: host_vars}}}
        self.inventory.write_text(yaml.safe_dump(inventory))
        return self

    def break_service(self, name: str) -> None:
        (self.services / f"{name}.state").write_text("down\n")

    def state(self, name: str) -> str:
        path = self.services / f"{name}.state"
        return path.read_text().strip() if path.exists() else "missing"

    def running(self, names: list[str]) -> list[str]:
        return [n for n in names if self.state(n) == "running"]

    def journal(self) -> list[JournalEntry]:
        """Every restart_service run, in order."""
        journal = self.services / "remediations.log"
        return parse_journal(journal.read_text()) if journal.exists() else []

    def remediations(self) -> list[tuple[str, str]]:
        """(service, event id) of every restart_service run that acted (the effects)."""
        return [(e.service, e.event_id) for e in self.journal() if not e.skipped]

    def skips(self) -> list[tuple[str, str]]:
        """(service, event id) of every run skipped because its event was remediated already."""
        return [(e.service, e.event_id) for e in self.journal() if e.skipped]

    def records(self) -> list[dict[str, str]]:
        """The remediation records (idempotency keys) the playbooks left on the host."""
        records = sorted((self.services / "remediated").glob("*.json"))
        return [json.loads(p.read_text()) for p in records]

    def runs_per_service(self) -> Counter[str]:
        return Counter(e.service for e in self.journal() if not e.skipped)

    def diagnostics(self, name: str) -> list[Path]:
        return sorted((self.services / "diagnostics").glob(f"{name}-*.txt"))
