"""Secrets fetched from Secrets Manager / SSM (moto) are cached, refreshed and survive outages."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from durable_eda_gateway.config import SecretSpec
from durable_eda_gateway.secrets import CachedSecrets, SecretsUnavailableError

from tests.support.aws import REGION
from tests.support.fault_proxy import UNAVAILABLE, FaultProxy, aws_error


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def clients(endpoint: str) -> Any:
    made: dict[str, Any] = {}

    def client_for(service: str) -> Any:
        if service not in made:
            made[service] = boto3.client(
                service,
                endpoint_url=endpoint,
                region_name=REGION,
                config=Config(retries={"total_max_attempts": 1}),
            )
        return made[service]

    return client_for


@pytest.fixture
def secret_name(moto_endpoint: str) -> str:
    name = f"gw-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION).create_secret(
        Name=name, SecretString="key-one, key-two\n"
    )
    return name


def test_secrets_are_refreshed_after_the_ttl_and_pick_up_a_rotation(
    moto_endpoint: str, proxy: FaultProxy, secret_name: str
) -> None:
    clock = Clock()
    cache = CachedSecrets(
        SecretSpec("GATEWAY_API_KEYS", secret_id=secret_name), clients(proxy.url), 60, clock
    )
    assert cache.values() == ("key-one", "key-two")
    boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION).put_secret_value(
        SecretId=secret_name, SecretString="key-three"
    )
    clock.now += 59
    assert cache.values() == ("key-one", "key-two")
    assert proxy.count("GetSecretValue") == 1
    clock.now += 1
    assert cache.values() == ("key-three",)
    assert proxy.count("GetSecretValue") == 2


def test_a_failed_refresh_keeps_the_cached_secrets(proxy: FaultProxy, secret_name: str) -> None:
    clock = Clock()
    cache = CachedSecrets(
        SecretSpec("GATEWAY_API_KEYS", secret_id=secret_name), clients(proxy.url), 60, clock
    )
    assert cache.values() == ("key-one", "key-two")
    proxy.inject(UNAVAILABLE, action="GetSecretValue")
    clock.now += 120
    assert cache.values() == ("key-one", "key-two")
    assert proxy.count("GetSecretValue") == 2
    # The failure is remembered for the back-off: the outage costs no fetch per request.
    clock.now += 4.9
    assert cache.values() == ("key-one", "key-two")
    assert proxy.count("GetSecretValue") == 2
    clock.now += 0.1
    assert cache.values() == ("key-one", "key-two")
    assert proxy.count("GetSecretValue") == 3


def test_without_a_cached_copy_a_failure_is_reported(proxy: FaultProxy, secret_name: str) -> None:
    clock = Clock()
    cache = CachedSecrets(
        SecretSpec("GATEWAY_API_KEYS", secret_id=secret_name), clients(proxy.url), 60, clock
    )
    proxy.inject(aws_error("AccessDeniedException"), action="GetSecretValue")
    with pytest.raises(SecretsUnavailableError) as caught:
        cache.values()
    assert "key-one" not in str(caught.value)
    with pytest.raises(SecretsUnavailableError):
        cache.values()
    assert proxy.count("GetSecretValue") == 1
    clock.now += 5
    assert cache.values() == ("key-one", "key-two")


def concurrently(call: Callable[[], Any], threads: int = 20) -> list[Any]:
    """`call` from `threads` threads released together; what each returned or raised."""
    start = threading.Barrier(threads)

    def one() -> Any:
        start.wait()
        try:
            return call()
        except SecretsUnavailableError as error:
            return error

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: one(), range(threads)))


def test_an_outage_costs_one_fetch_per_back_off_not_one_per_request(
    proxy: FaultProxy, secret_name: str
) -> None:
    clock = Clock()
    cache = CachedSecrets(
        SecretSpec("GATEWAY_API_KEYS", secret_id=secret_name), clients(proxy.url), 60, clock, 10
    )
    assert cache.values() == ("key-one", "key-two")
    proxy.inject(UNAVAILABLE, action="GetSecretValue", times=1000)
    clock.now += 60
    assert concurrently(cache.values) == [("key-one", "key-two")] * 20
    assert proxy.count("GetSecretValue") == 2
    clock.now += 10
    assert concurrently(cache.values) == [("key-one", "key-two")] * 20
    assert proxy.count("GetSecretValue") == 3


def test_an_outage_before_the_first_fetch_costs_one_fetch_per_back_off(
    proxy: FaultProxy, secret_name: str
) -> None:
    clock = Clock()
    cache = CachedSecrets(
        SecretSpec("GATEWAY_API_KEYS", secret_id=secret_name), clients(proxy.url), 60, clock, 10
    )
    proxy.inject(UNAVAILABLE, action="GetSecretValue", times=1000)
    answers = concurrently(cache.values)
    assert all(isinstance(answer, SecretsUnavailableError) for answer in answers)
    assert proxy.count("GetSecretValue") == 1


def test_ssm_parameters_are_decrypted(moto_endpoint: str) -> None:
    name = f"/gw/{uuid.uuid4().hex[:8]}"
    boto3.client("ssm", endpoint_url=moto_endpoint, region_name=REGION).put_parameter(
        Name=name, Value="p1,p2", Type="SecureString"
    )
    cache = CachedSecrets(
        SecretSpec("GATEWAY_SIGNING_SECRETS", ssm_parameter=name),
        clients(moto_endpoint),
        60,
        Clock(),
    )
    assert cache.values() == ("p1", "p2")


def test_an_empty_secret_is_unusable(moto_endpoint: str) -> None:
    name = f"gw-{uuid.uuid4().hex[:8]}"
    boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION).create_secret(
        Name=name, SecretString=" , "
    )
    cache = CachedSecrets(
        SecretSpec("GATEWAY_API_KEYS", secret_id=name), clients(moto_endpoint), 60, Clock()
    )
    with pytest.raises(SecretsUnavailableError):
        cache.values()


def test_a_secret_emptied_after_use_revokes_the_cached_copy(
    moto_endpoint: str, secret_name: str
) -> None:
    clock = Clock()
    cache = CachedSecrets(
        SecretSpec("GATEWAY_API_KEYS", secret_id=secret_name), clients(moto_endpoint), 60, clock
    )
    assert cache.values() == ("key-one", "key-two")
    boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION).put_secret_value(
        SecretId=secret_name, SecretString=" "
    )
    clock.now += 60
    with pytest.raises(SecretsUnavailableError):
        cache.values()
