"""Request authentication: API keys and HMAC signatures of the raw body.

Every comparison of a secret-derived value is constant-time, and every key is compared
even after a match, so the time taken does not tell which key (if any) was close.
No function here puts a secret, or what the client sent, into an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping


class AuthError(Exception):
    """The request is not authenticated. `code` is stable; `message` is safe to return."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MisconfiguredSecretError(ValueError):
    """A configured secret cannot be used (e.g. a Standard Webhooks secret that is not base64)."""


def constant_time_in(candidate: bytes, secrets: Iterable[bytes]) -> bool:
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(candidate, secret)
    return matched


def as_bytes(text: str) -> bytes:
    # Header values may hold any code point; surrogatepass keeps encoding from raising.
    return text.encode("utf-8", "surrogatepass")


def check_api_key(headers: Mapping[str, str], header: str, keys: Iterable[str]) -> None:
    presented = headers.get(header)
    if not presented:
        raise AuthError("missing_credentials", f"the {header} header is required")
    if not constant_time_in(as_bytes(presented), [as_bytes(key) for key in keys]):
        raise AuthError("invalid_credentials", f"the {header} header is not a valid key")


def check_github_signature(headers: Mapping[str, str], body: bytes, secrets: Iterable[str]) -> None:
    """GitHub's X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the raw body."""
    presented = headers.get("x-hub-signature-256")
    if not presented:
        raise AuthError("missing_signature", "the X-Hub-Signature-256 header is required")
    expected = [
        b"sha256=" + hmac.new(as_bytes(s), body, hashlib.sha256).hexdigest().encode()
        for s in secrets
    ]
    if not constant_time_in(as_bytes(presented.strip().lower()), expected):
        raise AuthError("invalid_signature", "the X-Hub-Signature-256 signature does not match")


def check_standard_webhooks_signature(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    now: float,
    tolerance: int,
) -> None:
    """The Standard Webhooks scheme (webhook-id, webhook-timestamp, webhook-signature).

    The signed content is "{id}.{timestamp}.{body}"; a timestamp outside `tolerance`
    seconds of `now` is refused, so a captured request cannot be replayed later.
    """
    message_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not message_id or not timestamp or not signatures:
        raise AuthError(
            "missing_signature",
            "the webhook-id, webhook-timestamp and webhook-signature headers are required",
        )
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise AuthError("invalid_signature", "webhook-timestamp must be Unix seconds")
    if abs(now - int(timestamp)) > tolerance:
        raise AuthError("stale_timestamp", "webhook-timestamp is outside the accepted window")
    signed = as_bytes(f"{message_id}.{timestamp}.") + body
    expected = [
        base64.b64encode(hmac.new(standard_webhooks_key(s), signed, hashlib.sha256).digest())
        for s in secrets
    ]
    presented = [
        as_bytes(item.partition(",")[2]) for item in signatures.split() if item.startswith("v1,")
    ]
    matched = False
    for candidate in presented:
        matched |= constant_time_in(candidate, expected)
    if not matched:
        raise AuthError("invalid_signature", "no webhook-signature matches")


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key: the base64 part of a "whsec_..." secret, decoded."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise MisconfiguredSecretError(
            "a Standard Webhooks secret must be base64 (whsec_...)"
        ) from None
