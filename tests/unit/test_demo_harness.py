"""The demo host's journal, as playbooks/restart_service.yml writes it, parsed in one place."""

from __future__ import annotations

from pathlib import Path

from demo.harness import DemoTarget, JournalEntry, parse_journal

LINES = """\
2026-11-30T08:00:01.000001Z restart_service service=api host=web01 event=e-1 outcome=restarted
not a journal line
2026-11-30T08:00:02.000002Z restart_service service=api host=web01 event=e-1 \
outcome=skipped (already remediated)
2026-11-30T08:00:03.000003Z restart_service service=db host=web01 event=e-2 outcome=already running
"""


def test_each_run_is_one_entry() -> None:
    assert parse_journal(LINES) == [
        JournalEntry("api", "e-1", "restarted"),
        JournalEntry("api", "e-1", "skipped (already remediated)"),
        JournalEntry("db", "e-2", "already running"),
    ]


def test_the_target_tells_effects_from_skips(tmp_path: Path) -> None:
    target = DemoTarget(tmp_path).create()
    assert target.journal() == []
    (target.services / "remediations.log").write_text(LINES)
    assert target.remediations() == [("api", "e-1"), ("db", "e-2")]
    assert target.skips() == [("api", "e-1")]
    assert target.runs_per_service() == {"api": 1, "db": 1}
