"""The source's retry back-off: exponential, jittered, capped, for as long as an outage lasts."""

from __future__ import annotations

from aws_sqs_queue import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, Backoff


def test_delays_double_from_the_base_with_jitter_in_the_upper_half() -> None:
    backoff = Backoff()
    for attempt in range(6):
        ceiling = BACKOFF_BASE_SECONDS * 2**attempt
        assert ceiling / 2 <= backoff.next_delay() <= ceiling


def test_delays_stay_capped_through_an_outage_of_any_length() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay() for _ in range(5000)]
    assert max(delays) <= BACKOFF_CAP_SECONDS
    assert min(delays[-100:]) >= BACKOFF_CAP_SECONDS / 2


def test_jitter_spreads_consumers_that_fail_together() -> None:
    delays = {Backoff(attempt=10).next_delay() for _ in range(20)}
    assert len(delays) > 1
