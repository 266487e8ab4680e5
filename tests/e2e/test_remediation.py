"""A failure event on SQS runs the remediation on the failing host; nothing else does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.conftest import RulebookFactory
from tests.e2e.support import DemoTarget, NotifyReceiver, handled_timeout
from tests.support.aws import TestQueue, wait_until

# Above the suite's 300 s: a few playbook runs on busy cores (see handled_timeout).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def failure(service: str, host: str = "web01", status: str = "failed") -> str:
    return json.dumps({"status": status, "service": service, "host": host})


def gateway_envelope(payload: dict[str, Any]) -> str:
    return json.dumps(
        {
            "gateway": "durable.eda",
            "version": 1,
            "source": "github",
            "event_type": "check_run",
            "received_at": "2026-11-30T08:00:00Z",
            "request_id": "req-1",
            "headers": {},
            "payload": payload,
        }
    )


def test_failure_event_restarts_the_service_and_notifies(
    queue: TestQueue, target: DemoTarget, start_rulebook: RulebookFactory
) -> None:
    target.break_service("api")
    with NotifyReceiver() as receiver:
        rulebook = start_rulebook(queue, notify_url=receiver.url)
        queue.send(failure("api"))

        rulebook.wait_for(lambda: receiver.posts, handled_timeout(1), "the outcome to be posted")

    assert target.state("api") == "running"
    (post,) = receiver.posts
    assert post["service"] == "api"
    assert post["host"] == "web01"
    assert post["outcome"] == "restarted"
    assert target.remediations() == [("api", post["event_id"])]
    assert post["event_id"]


def test_non_failure_event_runs_nothing(
    queue: TestQueue, target: DemoTarget, start_rulebook: RulebookFactory
) -> None:
    for service in ("ok-status", "not-json", "unknown-host", "pattern-host", "sentinel"):
        target.break_service(service)
    rulebook = start_rulebook(queue)
    queue.send(failure("ok-status", status="ok"))
    queue.send("the build of ok-status is done")
    queue.send(failure("unknown-host", host=7))  # type: ignore[arg-type]
    queue.send(failure("pattern-host", host="all"))
    # The rules run one event at a time: once the queue is empty and a later failure has
    # been remediated, any action for the earlier events would have run before it.
    rulebook.wait_for(lambda: queue.counts() == (0, 0), handled_timeout(1), "the events taken")
    queue.send(failure("sentinel"))
    rulebook.wait_for(lambda: target.remediations(), handled_timeout(1), "the sentinel remediated")

    assert [service for service, _ in target.remediations()] == ["sentinel"]
    assert target.running(["ok-status", "not-json", "unknown-host", "pattern-host"]) == []
    assert "not a failure this rulebook knows" in rulebook.log_tail(200)


def test_storm_of_one_failure_runs_one_remediation(
    queue: TestQueue, target: DemoTarget, start_rulebook: RulebookFactory
) -> None:
    target.break_service("db")
    target.break_service("sentinel")
    queue.send_many([failure("db")] * 15)
    rulebook = start_rulebook(queue)
    rulebook.wait_for(lambda: queue.counts() == (0, 0), handled_timeout(1), "the storm taken")
    queue.send(failure("sentinel"))
    rulebook.wait_for(
        lambda: "sentinel" in target.runs_per_service(), handled_timeout(2), "the sentinel"
    )

    assert target.runs_per_service() == {"db": 1, "sentinel": 1}
    assert target.state("db") == "running"


def test_events_sent_while_down_are_all_handled_after_start(
    queue: TestQueue, target: DemoTarget, start_rulebook: RulebookFactory
) -> None:
    services = ["web", "cache", "search", "billing"]
    for service in services:
        target.break_service(service)
    queue.send(failure("web"))
    queue.send(json.dumps({"severity": "critical", "service": "cache", "host": "web01"}))
    queue.send(gateway_envelope({"status": "error", "service": "search", "host": "web01"}))
    queue.send(gateway_envelope({"severity": "major", "service": "billing", "host": "web01"}))

    rulebook = start_rulebook(queue)
    rulebook.wait_for(
        lambda: len(target.runs_per_service()) == len(services),
        # The alerts collect diagnostics first: two runs each.
        handled_timeout(2 * len(services)),
        "all handled",
    )
    wait_until(lambda: queue.counts() == (0, 0), 30, what="the queue to be empty")

    assert target.runs_per_service() == dict.fromkeys(services, 1)
    assert target.running(services) == services
    # Alerts collect diagnostics before the restart: the report shows the service down.
    for service in ("cache", "billing"):
        (report,) = target.diagnostics(service)
        assert "== state ==\ndown" in report.read_text()
    assert target.diagnostics("web") == []
