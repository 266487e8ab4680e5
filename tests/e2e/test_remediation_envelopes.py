"""Each remediation rule is written once and fires however its failure reached the queue.

moto's SNS (raw delivery and not) and EventBridge deliver to the queue in their own envelopes,
next to a direct event and a webhook in the gateway's envelope; ansible-rulebook runs the
collection's rulebook (durable.eda.unwrap, then the rules) and the playbooks really restart
the demo target's services.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import RulebookFactory
from tests.e2e.support import DemoTarget
from tests.support.aws import TestQueue, wait_until
from tests.support.aws_samples import (
    aws_client,
    cloudwatch_alarm,
    eventbridge_rule_to_queue,
    gateway_envelope,
    topic_to_queue,
)

pytestmark = pytest.mark.e2e

# A playbook run takes a few seconds, far more on a loaded 2-core machine; eight run here.
HANDLED_TIMEOUT = 300.0


def failure(service: str, status: str = "failed") -> dict[str, str]:
    return {"status": status, "service": service, "host": "web01"}


def test_one_rule_fires_for_every_envelope(
    queue: TestQueue, moto_endpoint: str, target: DemoTarget, start_rulebook: RulebookFactory
) -> None:
    services = ["direct", "gateway", "sns", "sns-raw", "eventbridge", "alarmed"]
    for service in [*services, "alarm-ok", "sentinel"]:
        target.break_service(service)
    sns = aws_client("sns", moto_endpoint)
    topic = topic_to_queue(moto_endpoint, queue, f"failures-{queue.name}")
    raw_topic = topic_to_queue(moto_endpoint, queue, f"raw-{queue.name}", raw=True)
    eventbridge_rule_to_queue(moto_endpoint, queue, f"rule-{queue.name}", "com.example.monitor")

    queue.send(json.dumps(failure("direct")))
    queue.send(json.dumps(gateway_envelope(failure("gateway"))))
    sns.publish(TopicArn=topic, Message=json.dumps(failure("sns")), Subject="failure")
    sns.publish(TopicArn=raw_topic, Message=json.dumps(failure("sns-raw")))
    aws_client("events", moto_endpoint).put_events(
        Entries=[
            {
                "Source": "com.example.monitor",
                "DetailType": "Service failure",
                "Detail": json.dumps(failure("eventbridge", status="error")),
            }
        ]
    )
    dimensions = {"host": "web01", "service": "alarmed"}
    sns.publish(TopicArn=topic, Message=json.dumps(cloudwatch_alarm(dimensions=dimensions)))
    ok = cloudwatch_alarm(state="OK", dimensions={"host": "web01", "service": "alarm-ok"})
    sns.publish(TopicArn=topic, Message=json.dumps(ok))
    assert queue.counts()[0] == 7, "every delivery reached the queue"

    rulebook = start_rulebook(queue)
    rulebook.wait_for(
        lambda: set(target.runs_per_service()) >= set(services), HANDLED_TIMEOUT, "all handled"
    )
    # Rules run one event at a time: once the queue is empty and a later failure has been
    # remediated, any action for the OK alarm would have run before it.
    wait_until(lambda: queue.counts() == (0, 0), 30, what="the queue to be empty")
    queue.send(json.dumps(failure("sentinel")))
    rulebook.wait_for(
        lambda: "sentinel" in target.runs_per_service(), HANDLED_TIMEOUT, "the sentinel"
    )

    assert target.runs_per_service() == dict.fromkeys([*services, "sentinel"], 1)
    assert target.running(services) == services
    assert target.state("alarm-ok") == "down"
    # The alarm's rule collects diagnostics before its restart, with the alarm as reason.
    (report,) = target.diagnostics("alarmed")
    assert "CloudWatch alarm web01-cpu-high" in report.read_text()
    assert "== state ==\ndown" in report.read_text()
