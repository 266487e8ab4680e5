"""API keys and signing secrets: from the environment, Secrets Manager or SSM, cached.

A stored value holds one secret or several (rotation), separated by commas or newlines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from durable_eda_gateway.config import SecretSpec, split_secrets

logger = logging.getLogger(__name__)


class SecretsUnavailableError(Exception):
    """The secrets could not be fetched and no earlier copy is cached."""


class CachedSecrets:
    """One list of secrets, fetched on first use and again after `ttl` seconds.

    If a refresh fails, the previous values stay in use: an outage of Secrets Manager
    should not turn into an outage of the gateway.
    """

    def __init__(
        self,
        spec: SecretSpec,
        client_for: Callable[[str], Any],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spec = spec
        self._client_for = client_for
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._values: tuple[str, ...] | None = None
        self._fetched_at = 0.0

    def __repr__(self) -> str:
        return f"CachedSecrets({self._spec!r})"

    def values(self) -> tuple[str, ...]:
        if self._spec.literal is not None:
            return split_secrets(self._spec.literal)
        with self._lock:
            if self._values is None or self._clock() - self._fetched_at >= self._ttl:
                self._refresh()
            assert self._values is not None
            return self._values

    def _refresh(self) -> None:
        try:
            values = split_secrets(self._fetch())
        except (BotoCoreError, ClientError, KeyError) as error:
            if self._values is None:
                logger.error("cannot fetch %s: %s", self._where(), type(error).__name__)
                raise SecretsUnavailableError(self._where()) from None
            logger.warning("cannot refresh %s, keeping the cached copy", self._where())
            return
        if not values:
            raise SecretsUnavailableError(f"{self._where()} is empty")
        self._values = values
        self._fetched_at = self._clock()

    def _fetch(self) -> str:
        if self._spec.secret_id is not None:
            reply = self._client_for("secretsmanager").get_secret_value(
                SecretId=self._spec.secret_id
            )
            return str(reply["SecretString"])
        reply = self._client_for("ssm").get_parameter(
            Name=self._spec.ssm_parameter, WithDecryption=True
        )
        return str(reply["Parameter"]["Value"])

    def _where(self) -> str:
        if self._spec.secret_id is not None:
            return f"secret {self._spec.secret_id} ({self._spec.variable}_SECRET_ID)"
        return f"parameter {self._spec.ssm_parameter} ({self._spec.variable}_SSM_PARAMETER)"
