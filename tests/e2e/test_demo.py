"""`make demo` (demo/run_demo.py) tells its story to the end and leaves nothing running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if text in command:
            found.append(command)
    return found


# Seconds on idle cores; each of the demo's steps may wait up to 3 minutes on busy ones.
@pytest.mark.timeout(600)
def test_demo_runs_to_the_end_and_leaves_nothing_running(
    project_root: Path, tmp_path: Path
) -> None:
    work = tmp_path / "demo-work"
    env = {**os.environ, "DEMO_WORK": str(work), "DEMO_QUEUE": "demo-test"}
    result = subprocess.run(
        [sys.executable, "-m", "demo.run_demo"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "The storm of 5 'search' failures ran 1 remediation." in output
    assert "Every event sent while it was down was remediated. The queue is empty." in output
    assert f"Logs: {work / 'logs'}" in output
    for service in ("web", "cache", "search", "api", "mail", "billing", "auth"):
        assert (work / "services" / f"{service}.state").read_text() == "running\n"
    assert processes_mentioning(str(work)) == []
