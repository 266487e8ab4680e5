"""The AWS error codes that mean "slow down" or "try again later": stated once for the gateway.

The event source plugin (extensions/eda/plugins/event_source/aws_sqs_queue.py) is loaded on
its own by ansible-rulebook, so it keeps a copy, `_TRANSIENT_CODES`;
tests/unit/gateway/test_aws_errors.py keeps the two equal.
"""

from __future__ import annotations

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "KmsThrottled",
        "KMS.ThrottlingException",
        "AWS.SimpleQueueService.RequestThrottled",
    }
)
SERVER_FAULT_CODES = frozenset(
    {
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
TRANSIENT_CODES = THROTTLING_CODES | SERVER_FAULT_CODES


def is_throttling(code: str, status: int | None) -> bool:
    return code in THROTTLING_CODES or status == 429


def is_transient(code: str, status: int | None) -> bool:
    """A failure that passes by itself; anything else needs someone to change something."""
    return code in TRANSIENT_CODES or status == 429 or (status is not None and status >= 500)
