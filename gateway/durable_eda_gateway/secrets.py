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


def _always() -> bool:
    return True


class CachedSecrets:
    """One list of secrets, fetched on first use and again after `ttl` seconds.

    If a refresh fails, the previous values stay in use: an outage of Secrets Manager
    should not turn into an outage of the gateway. A failed fetch is not tried again for
    `backoff` seconds, so an outage costs one fetch per interval, not one per request.
    """

    def __init__(
        self,
        spec: SecretSpec,
        client_for: Callable[[str], Any],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        backoff: float = 5.0,
    ) -> None:
        self._spec = spec
        self._client_for = client_for
        self._ttl = ttl
        self._clock = clock
        self._backoff = backoff
        self._lock = threading.Lock()
        self._values: tuple[str, ...] | None = None
        # When to fetch next: after the TTL once fetched, after the back-off once failed.
        self._next_fetch = 0.0

    def __repr__(self) -> str:
        return f"CachedSecrets({self._spec!r})"

    def values(self, may_fetch: Callable[[], bool] = _always) -> tuple[str, ...]:
        """The secrets; `may_fetch` says whether there is time left to call AWS for them."""
        if self._spec.literal is not None:
            return split_secrets(self._spec.literal)
        with self._lock:
            if self._clock() >= self._next_fetch and may_fetch():
                self._refresh()
            if self._values is None:
                raise SecretsUnavailableError(self._where())
            return self._values

    def _refresh(self) -> None:
        try:
            values = split_secrets(self._fetch())
        except (BotoCoreError, ClientError, KeyError) as error:
            self._next_fetch = self._clock() + self._backoff
            if self._values is None:
                logger.error("cannot fetch %s: %s", self._where(), type(error).__name__)
            else:
                logger.warning("cannot refresh %s, keeping the cached copy", self._where())
            return
        if not values:
            # Emptied on purpose, perhaps to revoke every key: the old copy goes too.
            self._values = None
            self._next_fetch = self._clock() + self._backoff
            logger.error("%s holds no secret", self._where())
            return
        self._values = values
        self._next_fetch = self._clock() + self._ttl

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
