# Copyright: durable.eda contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs durable.eda.remediation_claim with the claiming run's identity from the controller."""

from __future__ import annotations

import os
from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.durable.eda.plugins.modules.remediation_claim import this_machine


class ActionModule(ActionBase):  # type: ignore[misc]
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = dict(self._task.args)
        # A task runs in a worker process forked by ansible-playbook: its parent is the run,
        # which lives exactly as long as the run does.
        args.setdefault("owner", {"pid": os.getppid(), "machine": this_machine()})
        result.update(
            self._execute_module(
                module_name="durable.eda.remediation_claim", module_args=args, task_vars=task_vars
            )
        )
        return result
