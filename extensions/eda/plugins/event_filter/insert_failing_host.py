# Copyright: durable.eda contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""durable.eda.insert_failing_host: limit an event's actions to the host the event names.

ansible-rulebook limits an action to the hosts in the event's `meta.hosts`. This filter
copies the failing host from the event's body there, at the first of `host_paths` that
holds one. Unlike eda.builtin.insert_hosts_to_meta it never raises (a filter that raises
stops the whole rulebook, so one malformed message would stop every remediation), and it
accepts only a single plain host name: a value such as "all", "web*" or "a,b" is an
inventory pattern that would widen the action to many hosts, so it is refused and the
event keeps no `meta.hosts`. Rules that act on a host must therefore require
`event.meta.hosts is defined`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

DOCUMENTATION = r"""
---
author:
  - durable.eda contributors (@durable-eda)
version_added: 0.1.0
short_description: Put the failing host named in an event into meta.hosts.
description:
  - Copies the first plain host name found at one of host_paths into the event's
    meta.hosts, so that the rulebook's actions run on that host only.
  - Values that are not a single plain host name (inventory patterns such as all,
    web*, a,b or !x, numbers, null, lists) are ignored and logged; the filter never
    raises.
options:
  host_paths:
    description:
      - Dotted paths into the event, tried in order.
    type: list
    elements: str
    default: [body.host, body.payload.host]
"""

EXAMPLES = r"""
- name: Remediate on the failing host only
  hosts: all
  sources:
    - durable.eda.aws_sqs_queue:
        name: eda-events
      filters:
        - durable.eda.insert_failing_host:
            host_paths: [body.host, body.payload.host]
  rules:
    - name: Restart a failed service
      condition: event.body.status == "failed" and event.meta.hosts is defined
      action:
        run_playbook:
          name: durable.eda.restart_service
"""

logger = logging.getLogger(__name__)

DEFAULT_HOST_PATHS = ("body.host", "body.payload.host")
# A host name as an inventory names it; anything else could be a pattern over many hosts.
_PLAIN_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
_PATTERN_WORDS = frozenset({"all", "ungrouped"})
_MISSING = object()


def _value_at(event: dict[str, Any], path: str) -> object:
    node: object = event
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _is_plain_host(value: object) -> bool:
    return (
        isinstance(value, str)
        and bool(_PLAIN_HOST.match(value))
        and value.lower() not in _PATTERN_WORDS
    )


def main(event: dict[str, Any], host_paths: Sequence[str] = DEFAULT_HOST_PATHS) -> dict[str, Any]:
    for path in host_paths:
        value = _value_at(event, path)
        if value is _MISSING:
            continue
        if _is_plain_host(value):
            meta = event.setdefault("meta", {})
            if isinstance(meta, dict):
                meta["hosts"] = value
            return event
        logger.warning("Ignoring %s: %.80r is not a single plain host name", path, value)
        return event
    return event
