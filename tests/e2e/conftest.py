"""Fixtures for end-to-end tests: the installed collection, a demo target, ansible-rulebook."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import DemoTarget, Rulebook, build_and_install_collection, subprocess_env
from tests.support.aws import REGION, TestQueue
from tests.support.postgres import Database, PostgresServer, running_postgres

RulebookFactory = Callable[..., Rulebook]


@pytest.fixture(scope="session")
def installed_collection(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("java") is None:
        pytest.fail("ansible-rulebook needs a JDK 17+ with java on PATH")
    where = tmp_path_factory.mktemp("collection")
    return build_and_install_collection(project_root, where)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server per session, on 127.0.0.1, its data in a temporary folder."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Database:
    """A fresh database (and owner) per test: no persisted session leaks between tests."""
    return postgres_server.create_database(f"eda_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def target(tmp_path: Path) -> DemoTarget:
    return DemoTarget(tmp_path / "target").create()


@pytest.fixture
def start_rulebook(
    installed_collection: Path,
    target: DemoTarget,
    moto_endpoint: str,
    tmp_path: Path,
) -> Iterator[RulebookFactory]:
    """Start ansible-rulebook on a queue; every process started is stopped at teardown."""
    started: list[Rulebook] = []

    def start(
        queue: TestQueue,
        rulebook: str = "durable.eda.remediate_failures",
        persistence_id: str | None = None,
        java_tool_options: str = "-Xrs",
        workdir: Path | None = None,
        **variables: Any,
    ) -> Rulebook:
        """Variables go to --vars; -Xrs lets SIGTERM reach ansible-rulebook (see README).

        With a persistence id the store is H2 in the work folder, unless the variables name
        a PostgreSQL database (drools_db_host). Another `workdir` is another node: its own
        folder, vars file, inventory copy and logs.
        """
        node = workdir or tmp_path
        node.mkdir(parents=True, exist_ok=True)
        inventory = target.inventory
        if workdir is not None:
            inventory = Path(shutil.copy(target.inventory, node / "inventory.yml"))
        settings: dict[str, Any] = {
            "sqs_queue_name": queue.name,
            "sqs_region": REGION,
            "sqs_endpoint_url": moto_endpoint,
            # Short long polls: moto hands messages to a dead client's open poll (see
            # runtime-contract), and a stop must not wait on a 20 s poll.
            "sqs_wait_time_seconds": 1,
            **variables,
        }
        if persistence_id:
            if "drools_db_host" not in settings:
                settings["drools_db_file_path"] = f"{node / 'h2' / 'eda'};WRITE_DELAY=0"
            settings.setdefault("drools_deduplication_window_size", 1000)
        runner = Rulebook(
            rulebook=rulebook,
            workdir=node,
            inventory=inventory,
            variables=settings,
            env={**subprocess_env(installed_collection), "JAVA_TOOL_OPTIONS": java_tool_options},
            persistence_id=persistence_id,
        )
        started.append(runner)
        return runner.start()

    yield start
    for runner in started:
        runner.kill()
