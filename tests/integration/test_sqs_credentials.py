"""Which credentials sign the source's requests: seen by a proxy, since moto checks none."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import pytest

from tests.integration.source_harness import consume, eventually, running_source, source_args
from tests.support.aws import ACCESS_KEY, TestQueue
from tests.support.fault_proxy import FaultProxy, RecordedRequest

pytestmark = pytest.mark.asyncio

OPTION_KEY = "AKIAOPTIONKEY0000001"
PROFILE_KEY = "AKIAPROFILEKEY000001"


async def deliver_one(queue: TestQueue, args: dict[str, object]) -> None:
    queue.send("signed")
    async with running_source(args) as engine:
        await consume(engine, 1)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted")


async def test_default_chain_uses_the_environment(queue: TestQueue, proxy: FaultProxy) -> None:
    await deliver_one(queue, source_args(queue, proxy.url))
    assert {r.access_key_id for r in proxy.requests} == {ACCESS_KEY}


async def test_access_key_options_sign_every_request(queue: TestQueue, proxy: FaultProxy) -> None:
    args = source_args(
        queue, proxy.url, access_key=OPTION_KEY, secret_key="x" * 40, session_token="tok"
    )
    await deliver_one(queue, args)
    assert {(r.access_key_id, r.security_token) for r in proxy.requests} == {(OPTION_KEY, "tok")}


async def test_profile_option_reads_the_named_profile(
    queue: TestQueue,
    proxy: FaultProxy,
    tmp_path: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "aws-config"  # type: ignore[operator]
    config.write_text(
        f"[profile eda]\naws_access_key_id = {PROFILE_KEY}\naws_secret_access_key = {'y' * 40}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    await deliver_one(queue, source_args(queue, proxy.url, profile="eda"))
    assert {r.access_key_id for r in proxy.requests} == {PROFILE_KEY}


ROLE = "arn:aws:iam::123456789012:role/eda-consumer"


async def test_role_arn_signs_with_assumed_temporary_credentials(
    queue: TestQueue, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", proxy.url)
    args = source_args(queue, proxy.url, role_arn=ROLE, external_id="ext-4711")
    await deliver_one(queue, args)
    assume = [parse_qs(body.decode()) for body in proxy.bodies("AssumeRole")]
    assert assume, "no AssumeRole request"
    assert all(a["ExternalId"] == ["ext-4711"] and a["RoleArn"] == [ROLE] for a in assume)
    assert all(r.access_key_id == ACCESS_KEY for r in proxy.requests if r.action == "AssumeRole")
    signers = {(r.access_key_id, bool(r.security_token)) for r in sqs_requests(proxy)}
    assert len(signers) == 1
    key, has_token = signers.pop()
    assert key != ACCESS_KEY
    assert key.startswith("ASIA")
    assert has_token


async def test_short_lived_role_credentials_are_refreshed_before_they_expire(
    queue: TestQueue, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", proxy.url)
    # Credentials that expire in 5 minutes: inside botocore's refresh window, so each
    # use must fetch new ones rather than sign with credentials about to expire.
    proxy.rewrite_replies("AssumeRole", expiring_in(timedelta(minutes=5)))
    queue.send_many(["one", "two", "three"])
    async with running_source(source_args(queue, proxy.url, role_arn=ROLE)) as engine:
        await consume(engine, 3)
        await eventually(lambda: queue.counts() == (0, 0), what="deleted")
    assert proxy.count("AssumeRole") >= 2
    keys = {r.access_key_id for r in sqs_requests(proxy)}
    assert len(keys) >= 2, keys
    assert all(key.startswith("ASIA") for key in keys)


def sqs_requests(proxy: FaultProxy) -> list[RecordedRequest]:
    return [r for r in proxy.requests if r.action != "AssumeRole"]


def expiring_in(delta: timedelta) -> Callable[[bytes], bytes]:
    def rewrite(reply: bytes) -> bytes:
        expiry = (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")
        return re.sub(
            rb"<Expiration>[^<]*</Expiration>", f"<Expiration>{expiry}</Expiration>".encode(), reply
        )

    return rewrite


async def test_queue_url_addresses_the_queue_directly(queue: TestQueue, proxy: FaultProxy) -> None:
    args = {**source_args(queue, proxy.url), "queue_url": queue.url}
    del args["name"]
    await deliver_one(queue, args)
    assert proxy.count("GetQueueUrl") == 0


async def test_several_pollers_deliver_every_message(queue: TestQueue, moto_endpoint: str) -> None:
    sent = queue.send_many([str(i) for i in range(40)])
    async with running_source(source_args(queue, moto_endpoint, pollers=3)) as engine:
        while not set(sent) <= set(engine.message_ids()):
            await consume(engine, 1)
        await eventually(lambda: queue.counts() == (0, 0), what="all deleted")
    deliveries = Counter(engine.message_ids())
    assert set(deliveries) == set(sent)
    assert max(deliveries.values()) == 1, [m for m, n in deliveries.items() if n > 1]
