"""The gateway's list of transient AWS error codes and the source plugin's copy stay equal."""

from __future__ import annotations

import aws_sqs_queue
import pytest
from durable_eda_gateway.aws_errors import (
    SERVER_FAULT_CODES,
    THROTTLING_CODES,
    TRANSIENT_CODES,
    is_throttling,
    is_transient,
)

# The plugin is loaded alone by ansible-rulebook and cannot import the gateway: it keeps a copy.
PLUGIN_CODES = frozenset(aws_sqs_queue._TRANSIENT_CODES)


def test_the_source_plugin_treats_the_same_codes_as_transient() -> None:
    assert not PLUGIN_CODES - TRANSIENT_CODES, "add these to durable_eda_gateway.aws_errors"
    assert not TRANSIENT_CODES - PLUGIN_CODES, (
        "the plugin's _TRANSIENT_CODES (it is loaded alone by ansible-rulebook, so it keeps its "
        "own copy) lacks these codes of durable_eda_gateway.aws_errors"
    )


def test_throttling_and_server_faults_are_both_transient_and_do_not_overlap() -> None:
    assert THROTTLING_CODES | SERVER_FAULT_CODES == TRANSIENT_CODES
    assert not THROTTLING_CODES & SERVER_FAULT_CODES


@pytest.mark.parametrize(
    ("code", "status", "throttling", "transient"),
    [
        ("ThrottlingException", 400, True, True),
        ("KmsThrottled", 400, True, True),
        ("", 429, True, True),
        ("ServiceUnavailable", 503, False, True),
        ("", 500, False, True),
        ("AccessDenied", 403, False, False),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, False, False),
    ],
)
def test_codes_are_classified(code: str, status: int, throttling: bool, transient: bool) -> None:
    assert (is_throttling(code, status), is_transient(code, status)) == (throttling, transient)
