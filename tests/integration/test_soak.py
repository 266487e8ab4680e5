"""The soak's code path at toy sizes, so `make soak` cannot rot between its runs.

One short run through the relay, the fault proxy and a real source process, with the
consumer told to drop one event: the soak must count exactly that one as lost and fail its
loss check, while its other checks pass.
"""

from __future__ import annotations

import tempfile

from benchmarks.soak import Result, Settings, run

TOY = Settings(
    seconds=2,
    rate=20,
    backlog=30,
    backlog_depth=20,
    fault_every=0.3,
    sample_every=0.2,
    drain_within=30,
    visibility_timeout=2,
    wait_time_seconds=1,
    forget=5,
)


def toy_run(moto_endpoint: str) -> Result:
    with tempfile.TemporaryFile() as log:
        return run(moto_endpoint, TOY, log)


def test_a_toy_soak_counts_a_dropped_event_as_lost(moto_endpoint: str) -> None:
    result = toy_run(moto_endpoint)

    checks = result.checks()
    assert result.lost == 1
    assert not checks["0 lost"]
    assert not result.ok
    assert checks["0 crashes"], result.crashed
    assert result.duplicates == 0
    assert sum(phase.sent for phase in result.phases) == 2 * 20 + 30
    assert sum(result.faults.values()) > 0
    assert result.rss_after_warm_up()
