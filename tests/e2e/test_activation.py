"""The controller rulebook run as an EDA controller activation runs it: worker mode.

ansible-rulebook starts with --worker and gets everything from a loopback stand-in for
eda-server's websocket (tests/e2e/activation.py): the rulebook text, the activation's extra
vars (with what the AWS credential type and the Rule Engine credential inject, secrets
vault-encrypted as eda-server does), the AWS credential's environment variables, and the
automation controller's address and token. run_job_template talks to a loopback stand-in
for the controller's job-template API. SQS is moto behind the fault proxy, which shows
which credentials signed each request; the store is the tests' PostgreSQL.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.activation import (
    ActivationProcess,
    ControllerApi,
    EdaServerPeer,
    Workload,
    controller_rulebook,
)
from tests.e2e.support import subprocess_env
from tests.support.aws import REGION, TestQueue, wait_until
from tests.support.eda_server import (
    RULE_ENGINE_EXTRA_VARS,
    RULE_ENGINE_INPUT_FIELDS,
    Vault,
    inject,
)
from tests.support.fault_proxy import FaultProxy
from tests.support.postgres import HOST, Database

pytestmark = pytest.mark.e2e

HANDLED_TIMEOUT = 120.0
# eda-server passes the activation's id as --persistence-id and its instance's as --id.
ACTIVATION_ID = "7"
TEMPLATES = {"durable.eda restart service": 21, "durable.eda collect diagnostics": 22}
CONTROLLER_TOKEN = "controller-oauth-token-for-eda"
WEBSOCKET_TOKEN = "websocket-access-token"
AWS_INPUTS = {
    "access_key": "AKIAACTIVATION000001",
    "secret_key": "activation-secret-key-never-logged",
    "session_token": "activation-session-token-never-logged",
    "region": REGION,
}
AWS_TYPE = Path("extensions/eda/plugins/event_source/credential_types/aws-sqs")

ActivationFactory = Callable[..., ActivationProcess]


def _failure(service: str, host: str) -> str:
    return json.dumps({"status": "failed", "service": service, "host": host})


def _workload(
    project_root: Path,
    queue: TestQueue,
    sqs_endpoint: str,
    database: Database,
    controller: ControllerApi,
) -> Workload:
    vault = Vault(secrets.token_urlsafe(16))
    aws_fields = yaml.safe_load((project_root / AWS_TYPE / "input.yml").read_text())["fields"]
    aws_injectors = yaml.safe_load((project_root / AWS_TYPE / "injectors.yml").read_text())
    aws_env, aws_vars = inject(aws_fields, aws_injectors, AWS_INPUTS, vault)
    rule_engine_inputs = {
        "postgres_db_host": HOST,
        "postgres_db_port": str(database.port),
        "postgres_db_name": database.name,
        "postgres_db_user": database.user,
        "postgres_db_password": database.password,
        "postgres_sslmode": "disable",
        "deduplication_window_size": "1000",
    }
    _, store_vars = inject(
        RULE_ENGINE_INPUT_FIELDS,
        {"extra_vars": RULE_ENGINE_EXTRA_VARS},
        rule_engine_inputs,
        vault,
    )
    activation_vars = {
        "sqs_queue_name": queue.name,
        "sqs_endpoint_url": sqs_endpoint,
        "sqs_wait_time_seconds": 1,
        "sqs_visibility_timeout": 6,
    }
    return Workload(
        rulebook_text=controller_rulebook(project_root),
        extra_vars={**activation_vars, **aws_vars, **store_vars},
        env_vars=aws_env,
        controller={"url": controller.url, "token": CONTROLLER_TOKEN, "ssl_verify": "no"},
        vault_collection=vault.collection_message(),
    )


@pytest.fixture
def controller() -> Iterator[ControllerApi]:
    with ControllerApi(templates=dict(TEMPLATES)) as api:
        yield api


@pytest.fixture
def peer(
    project_root: Path,
    queue: TestQueue,
    proxy: FaultProxy,
    postgres_database: Database,
    controller: ControllerApi,
) -> Iterator[EdaServerPeer]:
    workload = _workload(project_root, queue, proxy.url, postgres_database, controller)
    with EdaServerPeer(workload=workload, access_token=WEBSOCKET_TOKEN) as running:
        yield running


@pytest.fixture
def start_activation(
    installed_collection: Path, peer: EdaServerPeer, tmp_path: Path
) -> Iterator[ActivationFactory]:
    """An activation's container: the collection installed, no AWS credentials of its own."""
    started: list[ActivationProcess] = []
    env = {
        k: v
        for k, v in subprocess_env(installed_collection).items()
        if k not in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    }
    # The decision environment's setting; and job status polls every 0.2 s instead of 10 s.
    env.update(JAVA_TOOL_OPTIONS="-Xrs", EDA_JOB_TEMPLATE_REFRESH_DELAY="0.2")

    def start(instance_id: int, persistence: bool = True) -> ActivationProcess:
        process = ActivationProcess(
            rulebook="(from the websocket)",
            workdir=tmp_path / f"instance-{instance_id}",
            inventory=tmp_path,
            variables={},
            env=env,
            persistence_id=ACTIVATION_ID if persistence else None,
            websocket_url=peer.url,
            access_token=WEBSOCKET_TOKEN,
            instance_id=instance_id,
        )
        process.workdir.mkdir(parents=True)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.kill()


def _launched(controller: ControllerApi) -> set[tuple[str, str, str]]:
    return {(j.template, j.limit, j.extra_vars["remediation_service"]) for j in controller.launches}


def test_activation_launches_job_templates_and_a_sigkill_loses_nothing(
    queue: TestQueue,
    proxy: FaultProxy,
    controller: ControllerApi,
    peer: EdaServerPeer,
    start_activation: ActivationFactory,
) -> None:
    restart, diagnose = "durable.eda restart service", "durable.eda collect diagnostics"
    failures = [_failure(f"svc-{n}", "web01") for n in range(5)]
    alert = json.dumps({"severity": "critical", "service": "db", "host": "web02"})
    bodies = [*failures, alert]
    # Each SQS message's id is its event's meta.uuid, passed on as remediation_event_id.
    sent = {
        message_id: (json.loads(body)["service"], json.loads(body)["host"])
        for message_id, body in zip(queue.send_many(bodies), bodies, strict=True)
    }
    expected = {(restart, "web01", f"svc-{n}") for n in range(5)}
    expected |= {(diagnose, "web02", "db"), (restart, "web02", "db")}

    first = start_activation(instance_id=11)
    first.wait_for(lambda: len(controller.launches) >= 2, HANDLED_TIMEOUT, "2 launches")
    assert first.kill() == -signal.SIGKILL

    second = start_activation(instance_id=12)
    second.wait_for(lambda: _launched(controller) >= expected, HANDLED_TIMEOUT, "all launched")
    wait_until(lambda: queue.counts() == (0, 0), 30, what="the queue to be empty")

    assert _launched(controller) == expected
    # The second instance resumed the first one's session from PostgreSQL: the events the
    # first had taken (and so deleted from SQS) but not acted on yet.
    recovered = re.search(r"Found (\d+) pending matching events", second.log_tail(100_000))
    assert recovered, "the restarted activation did not recover the persisted session"
    assert int(recovered.group(1)) >= 1
    for launch in controller.launches:
        assert launch.authorization == f"Bearer {CONTROLLER_TOKEN}"
        service, host = sent[launch.extra_vars["remediation_event_id"]]
        assert (launch.extra_vars["remediation_service"], launch.limit) == (service, host)
        assert launch.extra_vars["remediation_reason"] in ("status failed", "critical alert")
    assert [w["activation_id"] for w in peer.workers] == ["11", "12"]
    assert peer.authorizations == {f"Bearer {WEBSOCKET_TOKEN}"}
    # The AWS credential's keys, from its env injectors, signed every SQS request.
    signers = {(r.access_key_id, r.security_token) for r in proxy.requests}
    assert signers == {(AWS_INPUTS["access_key"], AWS_INPUTS["session_token"])}
    logs = first.log_tail(100_000) + second.log_tail(100_000)
    for secret in (AWS_INPUTS["secret_key"], AWS_INPUTS["session_token"]):
        assert secret not in logs


def test_without_persistence_the_activation_fails_at_start_and_consumes_nothing(
    queue: TestQueue, start_activation: ActivationFactory, peer: EdaServerPeer
) -> None:
    queue.send_many([_failure("svc-0", "web01")])
    activation = start_activation(instance_id=31, persistence=False)
    assert activation.exit_code(60) == 1, activation.log_tail()
    assert "please Enable persistence for Activation" in activation.log_tail(400)
    assert peer.workers
    assert queue.counts() == (1, 0)
