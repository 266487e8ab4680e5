"""Durable mode against the real engine: slow actions, unpostable events, filters that fan
out or drop, with acknowledgements matched to their messages.

Each test writes a small rulebook (and, where it needs one, an event filter in the work
folder's event_filter/, where ansible-rulebook looks for bare filter names) so that what
it exercises is the source, not the collection's remediation rules.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.conftest import RulebookFactory
from tests.support.aws import TestQueue, create_queue_with_dead_letters, wait_until

pytestmark = pytest.mark.e2e

TIMEOUT = 180.0

RULEBOOK = """
- name: acknowledgements
  hosts: all
  sources:
    - name: sqs
      durable.eda.aws_sqs_queue:
        name: "{{{{ sqs_queue_name }}}}"
        region: "{{{{ sqs_region }}}}"
        endpoint_url: "{{{{ sqs_endpoint_url }}}}"
        wait_time_seconds: 1
        visibility_timeout: 6
        feedback_timeout: "{{{{ sqs_feedback_timeout | default(120) }}}}"
        feedback: true
{filters}
  rules:
    - name: handle
      condition: event.body.n is defined
      action:
{action}
"""

DEBUG_ACTION = """\
        debug:
          msg: "handled n={{ event.body.n }} copy={{ event.meta.fan_out_copy | default(0) }}"
"""

FAN_OUT = """
import copy
import uuid


def main(event, **kwargs):
    duplicate = copy.deepcopy(event)
    duplicate["meta"]["uuid"] = str(uuid.uuid4())
    duplicate["meta"]["fan_out_copy"] = 1
    return [event, duplicate]
"""

DROP_ODD = """
def main(event, **kwargs):
    body = event.get("body")
    if isinstance(body, dict) and body.get("n", 0) % 2:
        return []
    return event
"""

# A set is not JSON: the engine's post raises, logs, and sends no acknowledgement.
UNPOSTABLE = """
def main(event, **kwargs):
    body = event.get("body")
    if isinstance(body, dict) and body.get("poison"):
        event["unpostable"] = {1}
    return event
"""

_HANDLED = re.compile(r"handled n=(\d+) copy=(\d)")


def write_rulebook(
    workdir: Path, action: str = DEBUG_ACTION, filters: dict[str, str] | None = None
) -> str:
    filters = filters or {}
    folder = workdir / "event_filter"
    folder.mkdir(exist_ok=True)
    for name, code in filters.items():
        (folder / f"{name}.py").write_text(code)
    listed = ""
    if filters:
        listed = "      filters:\n" + "".join(f"        - {name}:\n" for name in filters)
    path = workdir / "acknowledgements.yml"
    path.write_text(RULEBOOK.format(filters=listed.rstrip("\n"), action=action.rstrip("\n")))
    return str(path)


def handled(workdir: Path) -> Counter[tuple[int, int]]:
    """(n, copy) of every time the rule ran, across every start in the work folder."""
    text = "\n".join(p.read_text(errors="replace") for p in workdir.glob("ansible-rulebook-*.log"))
    return Counter((int(n), int(c)) for n, c in _HANDLED.findall(text))


def bodies(numbers: range) -> list[str]:
    return [json.dumps({"n": n}) for n in numbers]


def run_with_a_sigkill(
    queue: TestQueue,
    start_rulebook: RulebookFactory,
    rulebook: str,
    workdir: Path,
    expected: set[tuple[int, int]],
    persistence_id: str,
) -> Counter[tuple[int, int]]:
    """50 messages, SIGKILL once some are handled, restart: every expected event handled."""
    queue.send_many(bodies(range(50)))
    first = start_rulebook(queue, rulebook=rulebook, persistence_id=persistence_id)
    first.wait_for(lambda: len(handled(workdir)) >= 10, TIMEOUT, "10 events handled")
    first.kill()
    second = start_rulebook(queue, rulebook=rulebook, persistence_id=persistence_id)
    second.wait_for(lambda: expected <= set(handled(workdir)), TIMEOUT, "every event handled")
    second.wait_for(lambda: queue.counts() == (0, 0), TIMEOUT, "the queue empty")
    second.assert_running()
    # An acknowledgement for a message already settled: it was deleted too early.
    assert "which is not awaiting one" not in second.log_tail(100_000)
    return handled(workdir)


def test_fan_out_filter_through_a_sigkill_loses_no_event_and_never_stalls(
    queue: TestQueue, start_rulebook: RulebookFactory, tmp_path: Path
) -> None:
    rulebook = write_rulebook(tmp_path, filters={"fan_out": FAN_OUT})
    expected = {(n, copy) for n in range(50) for copy in (0, 1)}
    seen = run_with_a_sigkill(queue, start_rulebook, rulebook, tmp_path, expected, "fan-out")
    # A message deleted before its copy was acknowledged would lose the copy at the kill.
    assert set(seen) == expected


def test_dropping_filter_through_a_sigkill_deletes_dropped_messages_and_loses_none(
    queue: TestQueue, start_rulebook: RulebookFactory, tmp_path: Path
) -> None:
    rulebook = write_rulebook(tmp_path, filters={"drop_odd": DROP_ODD})
    expected = {(n, 0) for n in range(0, 50, 2)}
    seen = run_with_a_sigkill(queue, start_rulebook, rulebook, tmp_path, expected, "dropping")
    assert set(seen) == expected


def test_a_storm_of_slow_actions_outlasting_feedback_timeout_keeps_the_activation_alive(
    queue: TestQueue, start_rulebook: RulebookFactory, tmp_path: Path
) -> None:
    effects = tmp_path / "effects.txt"
    (tmp_path / "slow.yml").write_text(
        textwrap.dedent(
            f"""\
            - name: A remediation that takes a while
              hosts: all
              gather_facts: false
              tasks:
                - name: Work, then record the event
                  ansible.builtin.shell: >-
                    sleep 1 && echo {{{{ ansible_eda.event.body.n }}}} >> {effects}
                  changed_when: true
            """
        )
    )
    action = "        run_playbook:\n          name: slow.yml\n"
    rulebook = write_rulebook(tmp_path, action=action)
    # More than 10 actions queued: the engine withholds acknowledgements for many seconds.
    queue.send_many(bodies(range(14)))
    running = start_rulebook(
        queue, rulebook=rulebook, persistence_id="storm", sqs_feedback_timeout=2
    )

    def effects_seen() -> list[str]:
        return effects.read_text().split() if effects.exists() else []

    running.wait_for(lambda: len(effects_seen()) >= 14, TIMEOUT, "14 actions done")
    running.wait_for(lambda: queue.counts() == (0, 0), TIMEOUT, "the queue empty")
    running.assert_running()
    assert sorted(map(int, effects_seen())) == list(range(14))
    assert "for the engine's acknowledgement" in running.log_tail(100_000)


def test_an_event_the_engine_cannot_post_goes_to_the_dead_letter_queue_and_others_go_on(
    moto_endpoint: str, start_rulebook: RulebookFactory, tmp_path: Path
) -> None:
    queue, dead_letters = create_queue_with_dead_letters(moto_endpoint, max_receive_count=2)
    rulebook = write_rulebook(tmp_path, filters={"unpostable": UNPOSTABLE})
    poison = queue.send(json.dumps({"n": 0, "poison": True}))
    running = start_rulebook(queue, rulebook=rulebook, persistence_id="poison")
    # Each event handled after the poison proves the engine went past it, so the source
    # releases it; SQS moves it to the dead-letter queue after its second receive.
    for n in range(1, 20):
        if dead_letters.counts()[0]:
            break
        queue.send(json.dumps({"n": n}))
        running.wait_for(lambda n=n: (n, 0) in handled(tmp_path), TIMEOUT, f"event {n} handled")
    wait_until(lambda: dead_letters.counts()[0] == 1, 60, what="the poison in the DLQ")
    (dead,) = dead_letters.drain()
    assert dead["MessageId"] == poison
    running.wait_for(lambda: queue.counts() == (0, 0), TIMEOUT, "the queue empty")
    assert (0, 0) not in handled(tmp_path)
    running.assert_running()
