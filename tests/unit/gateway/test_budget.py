"""The AWS client timeouts derived from GATEWAY_TIMEOUT_SECONDS always leave time to answer."""

from __future__ import annotations

import pytest
from durable_eda_gateway.budget import (
    ANSWER_RESERVE_SECONDS,
    CALLS_PER_REQUEST,
    MIN_ATTEMPT_SECONDS,
    aws_timeouts,
    retry_pauses,
)
from hypothesis import given
from hypothesis import strategies as st


@given(
    request_seconds=st.integers(3, 900),
    max_attempts=st.integers(1, 10),
    calls=st.sampled_from([CALLS_PER_REQUEST, CALLS_PER_REQUEST + 1]),
)
def test_every_call_at_its_slowest_still_leaves_time_to_answer(
    request_seconds: int, max_attempts: int, calls: int
) -> None:
    try:
        timeouts = aws_timeouts(request_seconds, max_attempts, calls)
    except ValueError:
        per_call = (request_seconds - ANSWER_RESERVE_SECONDS) / calls
        assert per_call - retry_pauses(max_attempts) < max_attempts * MIN_ATTEMPT_SECONDS
        return
    slowest = calls * timeouts.call_seconds + ANSWER_RESERVE_SECONDS
    assert slowest <= request_seconds + 1e-9
    assert timeouts.needed_seconds(calls) == pytest.approx(slowest)
    assert timeouts.connect + timeouts.read >= MIN_ATTEMPT_SECONDS
    assert 0 < timeouts.connect <= timeouts.read


def test_the_lambda_default_gives_each_of_three_attempts_over_a_second() -> None:
    timeouts = aws_timeouts(15, 3)
    assert timeouts.max_attempts == 3
    assert timeouts.connect + timeouts.read == pytest.approx(4 / 3)
    assert timeouts.call_seconds == pytest.approx(7.0)


def test_retry_pauses_follow_botocores_standard_mode() -> None:
    assert [retry_pauses(n) for n in (1, 2, 3, 6, 7)] == [0, 1, 3, 31, 51]
