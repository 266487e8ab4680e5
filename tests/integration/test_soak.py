"""The soak's code path at toy sizes, so `make soak` cannot rot between its runs.

One short run through the relay, the fault proxy and a real source process, with the
consumer told to drop one event: the soak must count exactly that one as lost and fail its
loss check, while its other checks pass. And the RSS check on made-up samples.
"""

from __future__ import annotations

import tempfile
from collections import Counter

from benchmarks.soak import Result, Sample, Settings, run

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


def rss_result(steady: list[int], backlog: list[int]) -> Result:
    samples = [Sample(i, "steady", rss, taken=i) for i, rss in enumerate(steady)]
    samples += [Sample(100 + i, "backlog", rss, taken=100 + i) for i, rss in enumerate(backlog)]
    return Result(
        settings=TOY,
        phases=[],
        samples=samples,
        lost=0,
        duplicates=0,
        duplicated_ids=[],
        crashed="",
        exit_code=0,
        faults=Counter(),
        actions=Counter(),
        steady_rate=0,
        deepest=0,
    )


def test_rss_that_grows_with_the_backlog_fails_the_soak() -> None:
    warm_up = [30_000, 50_000]  # before the first event, then the first fifth after it
    steady = [*warm_up, 56_000, 56_100, 56_000, 56_200, 56_100, 56_000, 56_100, 56_000]

    assert rss_result(steady, [56_200, 57_000, 58_000]).ok
    assert not rss_result(steady, [56_200, 60_000, 62_000]).ok
