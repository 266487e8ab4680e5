"""Which credentials sign the source's requests: seen by a proxy, since moto checks none."""

from __future__ import annotations

import pytest

from tests.integration.source_harness import consume, eventually, running_source, source_args
from tests.support.aws import ACCESS_KEY, TestQueue
from tests.support.fault_proxy import FaultProxy

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


async def test_role_arn_signs_with_assumed_temporary_credentials(
    queue: TestQueue, proxy: FaultProxy, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_endpoint)
    args = source_args(
        queue, proxy.url, role_arn="arn:aws:iam::123456789012:role/eda-consumer", external_id="ext"
    )
    await deliver_one(queue, args)
    signers = {(r.access_key_id, bool(r.security_token)) for r in proxy.requests}
    assert len(signers) == 1
    key, has_token = signers.pop()
    assert key != ACCESS_KEY
    assert key.startswith("ASIA")
    assert has_token


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
    assert set(engine.message_ids()) == set(sent)
