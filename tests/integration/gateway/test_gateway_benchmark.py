"""The gateway benchmark still runs end to end (a handful of requests, no timing claims)."""

from __future__ import annotations

from benchmarks.gateway import measure


def test_the_benchmark_measures_both_paths_and_the_cold_start(moto_endpoint: str) -> None:
    results = measure(moto_endpoint, requests=8, levels=(1, 4))
    assert results.requests == 8
    assert [level.clients for level in results.levels] == [1, 4]
    assert all(level.gateway_per_second > 0 for level in results.levels)
    assert all(level.direct_per_second > 0 for level in results.levels)
    assert results.lambda_import_ms > 0
    assert results.lambda_first_call_ms > 0
