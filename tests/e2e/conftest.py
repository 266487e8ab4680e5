"""Fixtures for end-to-end tests: the installed collection, a demo target, ansible-rulebook."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import DemoTarget, Rulebook, build_and_install_collection, subprocess_env
from tests.support.aws import REGION, TestQueue

RulebookFactory = Callable[..., Rulebook]


@pytest.fixture(scope="session")
def installed_collection(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("java") is None:
        pytest.fail("ansible-rulebook needs a JDK 17+ with java on PATH")
    where = tmp_path_factory.mktemp("collection")
    return build_and_install_collection(project_root, where)


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
        **variables: Any,
    ) -> Rulebook:
        """Variables go to --vars; -Xrs lets SIGTERM reach ansible-rulebook (see README)."""
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
            settings["drools_db_file_path"] = f"{tmp_path / 'h2' / 'eda'};WRITE_DELAY=0"
            settings["drools_deduplication_window_size"] = 1000
        runner = Rulebook(
            rulebook=rulebook,
            workdir=tmp_path,
            inventory=target.inventory,
            variables=settings,
            env={**subprocess_env(installed_collection), "JAVA_TOOL_OPTIONS": java_tool_options},
            persistence_id=persistence_id,
        )
        started.append(runner)
        return runner.start()

    yield start
    for runner in started:
        runner.kill()
