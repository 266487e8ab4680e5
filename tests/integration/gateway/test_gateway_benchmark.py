"""The gateway benchmark still runs end to end (a handful of requests, no timing claims)."""

from __future__ import annotations

from benchmarks.gateway import measure


def test_the_benchmark_measures_both_paths_and_the_cold_start(moto_endpoint: str) -> None:
    results = measure(moto_endpoint, requests=8)
    assert results.requests == 8
    assert results.gateway_per_second > 0
    assert results.direct_per_second > 0
    assert results.lambda_import_ms > 0
    assert results.lambda_first_call_ms > 0
