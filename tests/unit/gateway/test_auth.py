from __future__ import annotations

import pytest
from durable_eda_gateway.auth import (
    AuthError,
    MisconfiguredSecretError,
    check_api_key,
    check_github_signature,
    check_standard_webhooks_signature,
)

from tests.unit.gateway.support import (
    API_KEY,
    GITHUB_SECRET,
    OLD_API_KEY,
    STANDARD_SECRET,
    github_signature,
    standard_headers,
)

KEYS = (API_KEY, OLD_API_KEY)
BODY = b'{"status":"failed"}'
NOW = 1_800_000_000


def refusal(check: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(AuthError) as caught:
        check(*args, **kwargs)  # type: ignore[operator]
    return caught.value.code


@pytest.mark.parametrize("key", KEYS)
def test_every_configured_key_is_accepted(key: str) -> None:
    check_api_key({"x-api-key": key}, "x-api-key", KEYS)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_credentials"),
        ({"x-api-key": ""}, "missing_credentials"),
        ({"x-api-key": API_KEY[:-1]}, "invalid_credentials"),
        ({"x-api-key": API_KEY + "x"}, "invalid_credentials"),
        ({"x-api-key": "ключ\udc80"}, "invalid_credentials"),
        ({"x-other": API_KEY}, "missing_credentials"),
    ],
)
def test_a_missing_or_wrong_key_is_refused(headers: dict[str, str], code: str) -> None:
    assert refusal(check_api_key, headers, "x-api-key", KEYS) == code


def test_refusals_never_carry_the_key() -> None:
    with pytest.raises(AuthError) as caught:
        check_api_key({"x-api-key": API_KEY[:-1]}, "x-api-key", KEYS)
    assert API_KEY[:-1] not in str(caught.value)
    assert API_KEY not in caught.value.message


def test_github_signature_of_the_raw_body_is_accepted() -> None:
    headers = {"x-hub-signature-256": github_signature(BODY)}
    check_github_signature(headers, BODY, ["rotated-out", GITHUB_SECRET])


def test_github_signature_hex_case_does_not_matter() -> None:
    headers = {"x-hub-signature-256": github_signature(BODY).upper().replace("SHA256", "sha256")}
    check_github_signature(headers, BODY, [GITHUB_SECRET])


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        ({}, BODY, "missing_signature"),
        ({"x-hub-signature-256": github_signature(BODY)}, BODY + b" ", "invalid_signature"),
        ({"x-hub-signature-256": github_signature(BODY, "other")}, BODY, "invalid_signature"),
        ({"x-hub-signature-256": github_signature(BODY)[7:]}, BODY, "invalid_signature"),
        ({"x-hub-signature-256": "sha256=zz\udc80"}, BODY, "invalid_signature"),
    ],
)
def test_github_signature_mismatch_is_refused(
    headers: dict[str, str], body: bytes, code: str
) -> None:
    assert refusal(check_github_signature, headers, body, [GITHUB_SECRET]) == code


def check_standard(headers: dict[str, str], body: bytes = BODY, now: int = NOW) -> None:
    check_standard_webhooks_signature(headers, body, [STANDARD_SECRET], now=now, tolerance=300)


def test_standard_webhooks_signature_is_accepted_within_tolerance() -> None:
    check_standard(standard_headers(BODY, NOW - 299))
    check_standard(standard_headers(BODY, NOW + 299))


def test_standard_webhooks_accepts_any_of_several_signatures_and_secrets() -> None:
    headers = standard_headers(BODY, NOW)
    headers["webhook-signature"] = "v1,bm90LWl0 " + headers["webhook-signature"]
    check_standard_webhooks_signature(
        headers, BODY, ["whsec_b2xk", STANDARD_SECRET], now=NOW, tolerance=300
    )


def test_a_replayed_request_is_refused_once_outside_the_window() -> None:
    headers = standard_headers(BODY, NOW)
    assert refusal(check_standard, headers, now=NOW + 301) == "stale_timestamp"
    assert refusal(check_standard, headers, now=NOW - 301) == "stale_timestamp"


def test_the_timestamp_cannot_be_moved_without_breaking_the_signature() -> None:
    headers = standard_headers(BODY, NOW - 3600)
    headers["webhook-timestamp"] = str(NOW)
    assert refusal(check_standard, headers) == "invalid_signature"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"webhook-signature": ""}, "missing_signature"),
        ({"webhook-id": ""}, "missing_signature"),
        ({"webhook-timestamp": "soon"}, "invalid_signature"),
        ({"webhook-timestamp": "١٢٣"}, "invalid_signature"),
        ({"webhook-timestamp": "9" * 40}, "invalid_signature"),
        ({"webhook-id": "msg_2"}, "invalid_signature"),
        ({"webhook-signature": "v2,abc"}, "invalid_signature"),
    ],
)
def test_standard_webhooks_bad_headers_are_refused(change: dict[str, str], code: str) -> None:
    headers = standard_headers(BODY, NOW) | change
    assert refusal(check_standard, headers) == code


def test_a_standard_webhooks_secret_that_is_not_base64_is_a_configuration_error() -> None:
    with pytest.raises(MisconfiguredSecretError):
        check_standard_webhooks_signature(
            standard_headers(BODY, NOW), BODY, ["whsec_not base64!"], now=NOW, tolerance=300
        )
