"""How long the gateway's AWS calls may take, all derived from GATEWAY_TIMEOUT_SECONDS.

One request may make two AWS calls (a secrets refresh, then SendMessage), three with a large
payload bucket (PutObject before SendMessage), each with up to GATEWAY_SQS_MAX_ATTEMPTS
attempts and botocore's pauses between them. The timeouts of one attempt are chosen so that
every call at its slowest still leaves time to answer 503 with Retry-After before the
request's time (on Lambda, the function timeout) runs out.
"""

from __future__ import annotations

from dataclasses import dataclass

# Kept back from the request's time to build and send the answer after the last call gave up.
ANSWER_RESERVE_SECONDS = 1.0
CALLS_PER_REQUEST = 2
MAX_CONNECT_SECONDS = 3.0
# Below this an attempt could not reach AWS even on a good day: the settings are refused.
MIN_ATTEMPT_SECONDS = 0.5
# botocore's standard retry mode pauses up to min(2 ** (n - 1), 20) s after attempt n.
_MAX_PAUSE_SECONDS = 20.0


def retry_pauses(max_attempts: int) -> float:
    """The longest botocore's standard mode can pause between `max_attempts` attempts."""
    return sum(min(2.0 ** (n - 1), _MAX_PAUSE_SECONDS) for n in range(1, max_attempts))


@dataclass(frozen=True)
class AwsTimeouts:
    connect: float
    read: float
    max_attempts: int

    @property
    def call_seconds(self) -> float:
        """The longest one AWS call can take: every attempt timing out, every pause taken."""
        return self.max_attempts * (self.connect + self.read) + retry_pauses(self.max_attempts)

    def needed_seconds(self, calls: int = 1) -> float:
        """Time that must be left before starting `calls` calls in a row, then the answer."""
        return calls * self.call_seconds + ANSWER_RESERVE_SECONDS


def aws_timeouts(
    request_seconds: float, max_attempts: int, calls: int = CALLS_PER_REQUEST
) -> AwsTimeouts:
    """Per-attempt timeouts that fit `calls` calls and the answer in `request_seconds`.

    ValueError if they cannot fit with at least MIN_ATTEMPT_SECONDS an attempt.
    """
    per_call = (request_seconds - ANSWER_RESERVE_SECONDS) / calls
    per_attempt = (per_call - retry_pauses(max_attempts)) / max_attempts
    if per_attempt < MIN_ATTEMPT_SECONDS:
        raise ValueError(
            f"{max_attempts} attempts per AWS call do not fit in {request_seconds:g} s"
        )
    connect = min(MAX_CONNECT_SECONDS, per_attempt / 3)
    return AwsTimeouts(connect=connect, read=per_attempt - connect, max_attempts=max_attempts)
