"""durable.eda.remediation_claim: one run at a time acts on an event, a dead run's claim is
taken over, a completed event is not acted on again. Real processes and files, no clock."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from plugins.modules.remediation_claim import Claims, this_machine

KEY = "restart_service-0123abcd"
HERE = this_machine()


class WaitedForHolderError(Exception):
    pass


def owner(pid: int, machine: str = HERE) -> dict[str, Any]:
    return {"pid": pid, "machine": machine}


def exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def refuse_to_wait(_: float) -> None:
    raise WaitedForHolderError


@pytest.fixture
def live_holder() -> Any:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield owner(holder.pid)
    holder.kill()
    holder.wait()


@pytest.fixture
def claims(tmp_path: Path) -> Claims:
    return Claims(tmp_path / "remediated", stale_after=60, machine=HERE)


def test_the_first_run_claims_and_a_completed_event_is_done(claims: Claims) -> None:
    me = owner(1001)
    assert claims.claim(KEY, me)["outcome"] == "claimed"
    assert claims.complete(KEY, me, {"event_id": "e-1"})["outcome"] == "completed"
    assert not claims.claim_file(KEY).exists()

    again = claims.claim(KEY, owner(1002), wait=refuse_to_wait)
    assert (again["outcome"], again["record"]) == ("done", {"event_id": "e-1"})


def test_a_run_waits_while_a_live_run_holds_the_claim_then_finds_it_done(
    claims: Claims, live_holder: dict[str, Any]
) -> None:
    claims.claim(KEY, live_holder)
    waits = []

    def holder_completes_while_we_wait(seconds: float) -> None:
        waits.append(seconds)
        claims.complete(KEY, live_holder, {"event_id": "e-1"})

    result = claims.claim(KEY, owner(1002), wait=holder_completes_while_we_wait)
    assert result["outcome"] == "done"
    assert len(waits) == 1


def test_the_claim_of_a_run_that_exited_is_taken_over_at_once(claims: Claims) -> None:
    dead = owner(exited_pid())
    claims.claim(KEY, dead)

    result = claims.claim(KEY, owner(1002), wait=refuse_to_wait)
    assert result["outcome"] == "claimed"
    assert result["taken_over"]["pid"] == dead["pid"]


def test_a_claim_from_another_machine_is_waited_for_until_it_is_stale(
    claims: Claims, tmp_path: Path
) -> None:
    elsewhere = owner(1, machine="another-boot:pid:[1]")
    claims.claim(KEY, elsewhere)
    with pytest.raises(WaitedForHolderError):
        claims.claim(KEY, owner(1002), wait=refuse_to_wait)

    impatient = Claims(claims.path, stale_after=0, machine=HERE)
    result = impatient.claim(KEY, owner(1002), wait=refuse_to_wait)
    assert result["taken_over"]["machine"] == "another-boot:pid:[1]"


def test_a_run_claiming_again_keeps_its_claim(claims: Claims) -> None:
    me = owner(1001)
    claims.claim(KEY, me)
    again = claims.claim(KEY, me, wait=refuse_to_wait)
    assert (again["outcome"], again["changed"]) == ("claimed", False)


def test_release_drops_only_the_runs_own_claim(claims: Claims, live_holder: dict[str, Any]) -> None:
    claims.claim(KEY, live_holder)
    assert claims.release(KEY, owner(1002)) == {"outcome": "released", "changed": False}
    assert claims.claim_file(KEY).exists()
    assert claims.release(KEY, live_holder) == {"outcome": "released", "changed": True}
    assert claims.claim(KEY, owner(1002), wait=refuse_to_wait)["outcome"] == "claimed"


def test_check_mode_writes_nothing_and_does_not_wait(
    claims: Claims, live_holder: dict[str, Any]
) -> None:
    assert claims.claim(KEY, owner(1001), write=False)["outcome"] == "claimed"
    assert not claims.claim_file(KEY).exists()
    claims.claim(KEY, live_holder)
    assert claims.claim(KEY, owner(1002), write=False, wait=refuse_to_wait)["outcome"] == "claimed"


def race(path: str, keys: int, start: Any, results: Any) -> None:
    runs = Claims(Path(path), stale_after=60, machine=HERE)
    me = owner(os.getpid())
    start.wait()
    for key in range(keys):
        outcome = runs.claim(f"{KEY}-{key}", me, wait=time.sleep)["outcome"]
        if outcome == "claimed":
            runs.complete(f"{KEY}-{key}", me, {"pid": me["pid"]})
        results.put((key, outcome))


def test_of_runs_started_at_once_exactly_one_acts(tmp_path: Path) -> None:
    """Four processes go through the same 200 events at once, each racing the others."""
    runs, keys = 4, 200
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(runs), context.Queue()
    processes = [
        context.Process(target=race, args=(str(tmp_path), keys, start, results))
        for _ in range(runs)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(runs * keys)]
    for process in processes:
        process.join(30)
    claimed = Counter(key for key, outcome in outcomes if outcome == "claimed")
    assert claimed == Counter(range(keys))
