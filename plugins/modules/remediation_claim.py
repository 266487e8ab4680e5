#!/usr/bin/python
# Copyright: durable.eda contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: remediation_claim
short_description: Let one run at a time remediate an event on a host, and record when it did
description:
  - An idempotency key for remediation playbooks. Before acting on an event, a run claims the
    event's key on the host; after acting, it records the key as completed. A run for a key
    that was completed does nothing (RV(outcome=done)), so a redelivered event acts once.
  - Two runs for the same key at once (an event redelivered while its first run is still going,
    or two activations holding the same message) do not both act. The check for a record and
    the claim are one step under a lock on the host. The second run waits while the first holds
    the claim. It returns RV(outcome=done) when the first records completion, or takes the claim
    over when the first run is gone.
  - A run is gone when its claim is stale. On the machine that ran the claiming ansible-playbook
    (a local connection, or the controller managing itself), that is as soon as its process
    has exited. A run killed halfway (a crash) is taken over at once and acts again. For a claim
    made from another machine, it is O(stale_after) seconds after the claim was made.
  - O(state=released) drops this run's claim without a record (a run that failed), so the
    event's next run acts.
  - Needs a POSIX host (file locks).
author:
  - durable.eda contributors (@durable-eda)
version_added: 0.1.0
options:
  path:
    description: Folder on the host for the claims and records. Created when missing.
    type: path
    required: true
  key:
    description:
      - The idempotency key, one file name's worth. Hash an event's id together with the
        playbook and host names to get one.
      - The record is C(<path>/<key>.json); the claim while a run holds it is
        C(<path>/<key>.claim).
    type: str
    required: true
  state:
    description:
      - V(claimed) takes the claim, waiting while another run holds it.
      - V(completed) writes the record (O(record)) and drops the claim.
      - V(released) drops the claim and writes nothing.
    type: str
    choices: [claimed, completed, released]
    default: claimed
  record:
    description: With O(state=completed), what the record says (written as JSON).
    type: dict
    default: {}
  stale_after:
    description:
      - Seconds after which a claim made from another machine is taken to belong to a run
        that is gone. Longer than the longest run of the playbook; a live run holding a claim
        older than this can be overtaken by a second run.
    type: int
    default: 900
  owner:
    description:
      - Who holds the claim. The action plugin sets it on the controller, from the
        ansible-playbook process and the controller's kernel boot and process namespace; set
        it only to claim on behalf of another process.
    type: dict
    suboptions:
      pid:
        description: Process id of the run on its machine.
        type: int
        required: true
      machine:
        description:
          - Identifies the machine and process namespace of O(owner.pid). Empty when unknown;
            then only O(stale_after) tells that the run is gone.
        type: str
        default: ""
notes:
  - Supports check mode. In check mode nothing is written; V(claimed) reports what a real run
    would find without waiting.
"""

EXAMPLES = r"""
- name: Claim this event's remediation on the host
  durable.eda.remediation_claim:
    path: /var/lib/durable-eda/remediated
    key: "restart_service-{{ (inventory_hostname ~ ' ' ~ remediation_event_id) | hash('sha256') }}"
  register: claim

- name: Restart the service
  ansible.builtin.service:
    name: nginx
    state: restarted
  when: claim.outcome == 'claimed'

- name: Record the event as remediated
  durable.eda.remediation_claim:
    path: /var/lib/durable-eda/remediated
    key: "restart_service-{{ (inventory_hostname ~ ' ' ~ remediation_event_id) | hash('sha256') }}"
    state: completed
    record:
      event_id: "{{ remediation_event_id }}"
  when: claim.outcome == 'claimed'
"""

RETURN = r"""
outcome:
  description:
    - V(claimed) this run holds the claim and should act; V(done) a run completed this key
      already and this one should not act; V(completed) the record was written;
      V(released) the claim was dropped, or was not this run's to drop.
  returned: always
  type: str
  sample: claimed
record:
  description: The record of the run that completed the key.
  returned: when RV(outcome=done)
  type: dict
taken_over:
  description: The claim this run took over from a run that was gone.
  returned: when a stale claim was taken over
  type: dict
  sample: {"pid": 4242, "machine": "1c9a...:pid:[4026531836]", "claimed_at": 1764550000.5}
waited:
  description: Seconds spent waiting for another run's claim.
  returned: when RV(outcome) is V(claimed) or V(done)
  type: float
"""

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

POLL_SECONDS = 0.5


def this_machine() -> str:
    """The kernel boot and process namespace this process runs in ("" off Linux).

    Two processes with the same value see each other's process ids.
    """
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot_id}:{namespace}"


def process_running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    # The state follows the command name in brackets; a zombie has exited.
    return stat.rpartition(")")[2].split()[0] != "Z"


class Claims:
    """Claims and records in one folder, read and changed under one lock."""

    def __init__(self, path: Path, stale_after: float, machine: str) -> None:
        self.path = path
        self.stale_after = stale_after
        self.machine = machine

    def record_file(self, key: str) -> Path:
        return self.path / f"{key}.json"

    def claim_file(self, key: str) -> Path:
        return self.path / f"{key}.claim"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def gone(self, holder: dict[str, Any], now: float) -> bool:
        if self.machine and holder.get("machine") == self.machine:
            return not process_running(int(holder.get("pid", 0)))
        return now - float(holder.get("claimed_at", 0)) >= self.stale_after

    def try_claim(self, key: str, owner: dict[str, Any], write: bool) -> dict[str, Any] | None:
        """One look under the lock: a result, or None while a live run holds the claim."""
        with self.locked():
            if self.record_file(key).exists():
                return {"outcome": "done", "record": read_json(self.record_file(key))}
            holder = read_json(self.claim_file(key)) if self.claim_file(key).exists() else None
            mine = holder is not None and same_run(holder, owner)
            if holder is not None and not mine and not self.gone(holder, time.time()):
                return None
            if write and not mine:
                write_json(self.claim_file(key), {**owner, "claimed_at": time.time()})
            result: dict[str, Any] = {"outcome": "claimed", "changed": not mine}
            if holder is not None and not mine:
                result["taken_over"] = holder
            return result

    def claim(
        self,
        key: str,
        owner: dict[str, Any],
        write: bool = True,
        wait: Callable[[float], None] = time.sleep,
    ) -> dict[str, Any]:
        started = time.monotonic()
        while (result := self.try_claim(key, owner, write)) is None:
            if not write:
                return {"outcome": "claimed", "changed": True, "waited": 0.0}
            wait(POLL_SECONDS)
        return {**result, "waited": round(time.monotonic() - started, 1)}

    def complete(self, key: str, owner: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        with self.locked():
            write_json(self.record_file(key), record)
            self._drop(key, owner)
        return {"outcome": "completed", "changed": True}

    def release(self, key: str, owner: dict[str, Any]) -> dict[str, Any]:
        with self.locked():
            return {"outcome": "released", "changed": self._drop(key, owner)}

    def _drop(self, key: str, owner: dict[str, Any]) -> bool:
        claim = self.claim_file(key)
        if claim.exists() and same_run(read_json(claim), owner):
            claim.unlink()
            return True
        return False


def same_run(holder: dict[str, Any], owner: dict[str, Any]) -> bool:
    return bool(holder.get("pid") == owner["pid"] and holder.get("machine") == owner["machine"])


def read_json(path: Path) -> dict[str, Any]:
    """A record or claim; one that cannot be read says nothing about its run."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return content if isinstance(content, dict) else {}


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Whole or not at all: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "key": {"type": "str", "required": True, "no_log": False},
            "state": {
                "type": "str",
                "choices": ["claimed", "completed", "released"],
                "default": "claimed",
            },
            "record": {"type": "dict", "default": {}},
            "stale_after": {"type": "int", "default": 900},
            "owner": {
                "type": "dict",
                "options": {
                    "pid": {"type": "int", "required": True},
                    "machine": {"type": "str", "default": ""},
                },
            },
        },
        supports_check_mode=True,
    )
    params = module.params
    key = params["key"]
    if not key or "/" in key or key.startswith("."):
        module.fail_json(msg=f"key must be a file name, without / and not starting with .: {key!r}")
    owner = params["owner"]
    if owner is None:
        module.fail_json(
            msg="owner is missing: run this module as durable.eda.remediation_claim, whose action "
            "plugin sets it on the controller, or set it"
        )
    machine = this_machine()
    claims = Claims(Path(params["path"]), params["stale_after"], machine)
    if params["state"] == "claimed":
        result = claims.claim(key, owner, write=not module.check_mode)
    elif module.check_mode:
        result = {"outcome": params["state"], "changed": True}
    elif params["state"] == "completed":
        result = claims.complete(key, owner, params["record"])
    else:
        result = claims.release(key, owner)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
