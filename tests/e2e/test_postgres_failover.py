"""Durable mode on PostgreSQL: node A is killed, node B takes over, nothing is lost.

The production store of ansible-rulebook's persistence is PostgreSQL (H2 is a file on one
host). Two "nodes" here are two working folders that share nothing on disk: each has its
own vars file, inventory copy and logs; they share only the SQS queue, the managed host and
the database, as two decision-environment containers of one activation would.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import RulebookFactory
from tests.e2e.support import DemoTarget, handled_timeout
from tests.support.aws import TestQueue, wait_until
from tests.support.postgres import Database

# Above the suite's 300 s: two ansible-rulebook starts and 7 playbook runs on busy cores.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
PERSISTENCE_ID = "e2e-postgres-failover"


def failures(services: list[str]) -> list[str]:
    return [json.dumps({"status": "failed", "service": s, "host": "web01"}) for s in services]


def test_sigkill_on_node_a_and_node_b_resumes_from_postgres_losing_nothing(
    queue: TestQueue,
    target: DemoTarget,
    start_rulebook: RulebookFactory,
    postgres_database: Database,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    before = [f"pg-{n:02d}" for n in range(5)]
    while_down = [f"pg-{n:02d}" for n in range(5, 7)]
    everything = before + while_down
    for service in everything:
        target.break_service(service)
    queue.send_many(failures(before))
    durable = {
        "rulebook": "durable.eda.remediate_failures_durable",
        "persistence_id": PERSISTENCE_ID,
        # What node A held at the kill comes back to node B after this.
        "sqs_visibility_timeout": 6,
        **postgres_database.drools_variables,
    }

    node_a = start_rulebook(queue, workdir=tmp_path / "node-a", **durable)
    node_a.wait_for(lambda: len(target.remediations()) >= 2, handled_timeout(2), "2 handled on A")
    assert node_a.kill() == -signal.SIGKILL
    handled_by_a = set(target.runs_per_service())
    assert "database=postgres" in node_a.log_tail(400)
    assert postgres_database.tables(), "the rules engine kept nothing in PostgreSQL"
    queue.send_many(failures(while_down))

    node_b = start_rulebook(queue, workdir=tmp_path / "node-b", **durable)
    node_b.wait_for(
        lambda: set(target.runs_per_service()) == set(everything),
        handled_timeout(len(everything)),
        "all handled",
    )
    wait_until(lambda: queue.counts() == (0, 0), 30, what="the queue to be empty")
    assert target.running(everything) == everything
    # Node B found in PostgreSQL the events A had taken (and SQS had deleted) but not acted on.
    recovered = re.search(r"Found (\d+) pending matching events", node_b.log_tail(2000))
    assert recovered, "node B did not recover A's session"
    assert int(recovered.group(1)) >= 1
    assert set(before) - handled_by_a
    assert not list(tmp_path.rglob("*.mv.db")), "an H2 file was written: not the Postgres store"
    runs = target.runs_per_service()
    record_property("duplicate_remediations", sum(count - 1 for count in runs.values()))
