"""Running the collection for real: an installed tarball, ansible-rulebook, a demo target."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import yaml

from tests.support.aws import ACCESS_KEY, REGION, SECRET_KEY, wait_until

VENV_BIN = Path(sys.executable).parent
# Long enough for a JVM start, short enough that a hung run fails the test quickly.
EXIT_TIMEOUT = 30.0
_JOURNAL_LINE = re.compile(r"restart_service service=(\S+) host=(\S+) event=(\S+) outcome=(.*)$")


def tool(name: str) -> str:
    return str(VENV_BIN / name)


def subprocess_env(collections_path: Path) -> dict[str, str]:
    """The venv's tools first on PATH: ansible-rulebook finds collections with ansible-galaxy.

    AWS_* settings come from the test's environment, which isolated_aws_env has emptied of
    the developer's (config files included) and pointed at moto's fake credentials.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        ANSIBLE_NOCOLOR="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def build_and_install_collection(project_root: Path, where: Path) -> Path:
    """`ansible-galaxy collection build` + `install -p`: the collection as users get it."""
    tarballs, collections = where / "dist", where / "collections"
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [tool("ansible-galaxy"), "collection", "build", "--output-path", str(tarballs), "."],
        cwd=project_root,
        env=env,
        check=True,
        capture_output=True,
    )
    (tarball,) = tarballs.glob("durable-eda-*.tar.gz")
    subprocess.run(
        [tool("ansible-galaxy"), "collection", "install", "-p", str(collections), str(tarball)],
        env=env,
        check=True,
        capture_output=True,
    )
    return collections


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

    def journal(self) -> list[tuple[str, str, str]]:
        """(service, event id, outcome) of every restart_service run, in order."""
        journal = self.services / "remediations.log"
        if not journal.exists():
            return []
        found = (_JOURNAL_LINE.search(line) for line in journal.read_text().splitlines())
        return [(m.group(1), m.group(3), m.group(4)) for m in found if m]

    def remediations(self) -> list[tuple[str, str]]:
        """(service, event id) of every restart_service run that acted (the effects)."""
        return [(s, e) for s, e, outcome in self.journal() if not outcome.startswith("skipped")]

    def skips(self) -> list[tuple[str, str]]:
        """(service, event id) of every run skipped because its event was remediated already."""
        return [(s, e) for s, e, outcome in self.journal() if outcome.startswith("skipped")]

    def records(self) -> list[dict[str, str]]:
        """The remediation records (idempotency keys) the playbooks left on the host."""
        return [json.loads(p.read_text()) for p in sorted((self.services / "remediated").glob("*"))]

    def runs_per_service(self) -> Counter[str]:
        return Counter(service for service, _ in self.remediations())

    def diagnostics(self, name: str) -> list[Path]:
        return sorted((self.services / "diagnostics").glob(f"{name}-*.txt"))


@dataclass
class Rulebook:
    """One ansible-rulebook process, its output in a log file; always stopped by the test."""

    rulebook: str
    workdir: Path
    inventory: Path
    variables: dict[str, Any]
    env: dict[str, str]
    persistence_id: str | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def _next_log_path(self) -> Path:
        """ansible-rulebook-N.log, N counting every start in this work folder."""
        started_before = len(list(self.workdir.glob("ansible-rulebook-*.log")))
        return self.workdir / f"ansible-rulebook-{started_before + 1}.log"

    def start(self) -> Rulebook:
        assert self.process is None, "already running"
        vars_file = self.workdir / "vars.yml"
        vars_file.write_text(yaml.safe_dump(self.variables))
        command = [
            tool("ansible-rulebook"),
            "--rulebook",
            self.rulebook,
            "-i",
            str(self.inventory),
            "--vars",
            str(vars_file),
            # INFO: the source's own account of what it received, deleted and released.
            "-v",
        ]
        if self.persistence_id:
            command += ["--persistence-id", self.persistence_id]
        self._log = self._next_log_path().open("wb")
        # Its own process group: kill() takes its ansible-playbook children with it, as a
        # crash of the machine would.
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Send `sig` to ansible-rulebook, wait for its exit; returns the exit code."""
        if self.process is None:
            return 0
        process = self.process
        try:
            if process.poll() is None:
                process.send_signal(sig)
            return process.wait(EXIT_TIMEOUT)
        finally:
            self.kill()

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None, "not running"
        self.process.send_signal(sig)

    def exit_code(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds for the exit; None if it is still running."""
        assert self.process is not None, "not running"
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int:
        """SIGKILL to the whole process group; safe to call when already stopped."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait(EXIT_TIMEOUT)
        if self._log is not None:
            self._log.close()
        return code

    def assert_running(self) -> bool:
        """For wait_until conditions: fail at once, with the log, if the process died."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"ansible-rulebook exited early:\n{self.log_tail()}")
        return True

    def log_tail(self, lines: int = 60) -> str:
        text = "\n".join(
            path.read_text(errors="replace")
            for path in sorted(
                self.workdir.glob("ansible-rulebook-*.log"),
                key=lambda p: int(p.stem.rpartition("-")[2]),
            )
        )
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, condition: Any, timeout: float, what: str) -> Any:
        """wait_until that also fails fast when ansible-rulebook dies, and shows its log."""
        try:
            return wait_until(lambda: self.assert_running() and condition(), timeout, 0.2, what)
        except AssertionError as failure:
            log = self.log_tail()
            raise AssertionError(f"{failure}\n--- ansible-rulebook log ---\n{log}") from None


class NotifyReceiver:
    """A loopback HTTP endpoint that records the JSON the playbooks POST to notify_url."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.posts.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                """Silent: the test reads the posts, not an access log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/notify"

    def __enter__(self) -> NotifyReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
