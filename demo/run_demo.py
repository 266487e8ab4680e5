"""`make demo`: the whole pipeline, end to end, on a local SQS endpoint (or your AWS account).

webhook -> durable.eda gateway -> SQS (+ dead-letter queue) -> ansible-rulebook with
remediate_failures_durable.yml (H2 persistence) -> remediation playbooks -> a demo host whose
services are state files that really break and really get fixed. Then the durability claim:
ansible-rulebook is stopped, failures arrive while it is down, and after a restart every one
of them is remediated.

Settings (environment variables):
  DEMO_PORT    port of the local SQS endpoint (moto) on 127.0.0.1; default: a free port
  DEMO_QUEUE   queue name; default durable-eda-demo (its dead-letter queue: NAME-dlq)
  DEMO_REGION  region; default us-east-1
  DEMO_AWS     1: use real AWS SQS with your usual credentials instead of moto
  DEMO_WORK    work folder (logs, H2 files, the demo host); default demo-work/
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
import yaml
from moto.server import ThreadedMotoServer

from demo.harness import DemoTarget, build_and_install_collection, tool, tool_env

PROJECT = Path(__file__).resolve().parent.parent
HOST = "web01"
PERSISTENCE_ID = "durable-eda-demo"
# A step is several playbook runs: seconds on idle cores, over a minute seen on 2 busy ones.
STEP_TIMEOUT = 180.0
WAIT_TIME_SECONDS = 2
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Settings:
    port: int
    queue: str
    region: str
    real_aws: bool
    work: Path

    @staticmethod
    def from_env() -> Settings:
        return Settings(
            port=int(os.environ.get("DEMO_PORT") or 0),
            queue=os.environ.get("DEMO_QUEUE") or "durable-eda-demo",
            region=os.environ.get("DEMO_REGION") or "us-east-1",
            real_aws=os.environ.get("DEMO_AWS", "") in ("1", "true", "yes"),
            work=Path(os.environ.get("DEMO_WORK") or PROJECT / "demo-work").resolve(),
        )

    @property
    def logs(self) -> Path:
        return self.work / "logs"


def say(text: str = "") -> None:
    print(text, flush=True)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = STEP_TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


# --- SQS -----------------------------------------------------------------------------


@contextlib.contextmanager
def sqs_endpoint(settings: Settings) -> Iterator[str | None]:
    """moto's SQS on 127.0.0.1 in this process (gone when the demo ends), or None for AWS."""
    if settings.real_aws:
        yield None
        return
    # Its HTTP server would log every request, long polls included, over the story.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=settings.port, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def sqs_client(settings: Settings, endpoint: str | None) -> Any:
    if endpoint is None:
        return boto3.client("sqs", region_name=settings.region)
    # moto checks no signature: any key will do, and none of the user's is sent to it.
    return boto3.client(
        "sqs",
        region_name=settings.region,
        endpoint_url=endpoint,
        aws_access_key_id="demo",
        aws_secret_access_key="demo",
    )


def create_queue_with_dead_letter_queue(client: Any, name: str) -> str:
    """The queue, whose messages go to NAME-dlq after 5 failed deliveries."""
    dlq_url = client.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    url = client.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    return str(url)


def queue_counts(client: Any, url: str) -> tuple[int, int]:
    attributes = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


# --- The collection, the demo host ---------------------------------------------------


# --- The gateway (webhooks in) ---------------------------------------------------------


@dataclass
class Gateway:
    """The durable.eda gateway's local service, in its own process."""

    queue_url: str
    endpoint: str | None
    settings: Settings
    api_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    process: subprocess.Popen[str] | None = None
    url: str = ""

    def start(self) -> Gateway:
        env = {
            "PYTHONPATH": str(PROJECT / "gateway"),
            "GATEWAY_QUEUE_URL": self.queue_url,
            "GATEWAY_SOURCE": "monitoring",
            "GATEWAY_API_KEYS": self.api_key,
            "AWS_DEFAULT_REGION": self.settings.region,
        }
        if self.endpoint:
            env |= {
                "GATEWAY_AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": "demo",
                "AWS_SECRET_ACCESS_KEY": "demo",
            }
        log_path = self.settings.logs / "gateway.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "durable_eda_gateway.service", "--port", "0"],
            env=tool_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        banner = self.process.stdout.readline()
        # Its first line says where it listens; the rest goes to the log as it comes.
        threading.Thread(
            target=_copy_lines, args=(self.process.stdout, log_path, banner), daemon=True
        ).start()
        found = re.search(r"(http://127\.0\.0\.1:\d+)", banner)
        if not found:
            raise RuntimeError(f"the gateway did not start; see {log_path}")
        self.url = found.group(1)
        return self

    def post(self, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url + "/",
            data=json.dumps(payload).encode(),
            headers={"content-type": "application/json", "x-api-key": self.api_key},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            reply = json.loads(answer.read())
        if not reply.get("forwarded"):
            raise RuntimeError(f"the gateway did not forward {payload}: {reply}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _copy_lines(stream: IO[str], log_path: Path, first: str) -> None:
    with log_path.open("w") as log:
        log.write(first)
        for line in stream:
            log.write(line)
            log.flush()


# --- ansible-rulebook ---------------------------------------------------------------------


class EventPrinter:
    """Turns ansible-rulebook's --print-events output into one readable line per event."""

    def __init__(self) -> None:
        self._block: list[str] | None = None

    def feed(self, line: str) -> None:
        if "[received event]" in line:
            self._block = []
        elif self._block is not None:
            if line.startswith("*****"):
                self._show("\n".join(self._block[2:]))
                self._block = None
            else:
                self._block.append(line)
        elif line.startswith("PLAY ["):
            say(f"      ansible-rulebook runs: {line[6:].split(']')[0]}")

    @staticmethod
    def _show(text: str) -> None:
        try:
            event = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            say(f"  <-  event arrived: {text[:120]}")
            return
        body = event.get("body")
        # durable.eda.unwrap took the gateway's envelope off and kept its facts in meta.
        gateway = event.get("meta", {}).get("gateway")
        if isinstance(gateway, dict) and isinstance(body, dict):
            body = {"via gateway from": gateway.get("source"), **body}
        say(f"  <-  event arrived: {json.dumps(body)[:120]}")


@dataclass
class Rulebook:
    """ansible-rulebook in durable mode; its output goes to a log and, summarised, to you."""

    settings: Settings
    inventory: Path
    variables: Path
    env: dict[str, str]
    runs: int = 0
    process: subprocess.Popen[str] | None = None
    _reader: threading.Thread | None = None

    def start(self) -> Path:
        self.runs += 1
        log_path = self.settings.logs / f"ansible-rulebook-{self.runs}.log"
        command = [
            tool("ansible-rulebook"),
            "--rulebook",
            "durable.eda.remediate_failures_durable",
            "-i",
            str(self.inventory),
            "--vars",
            str(self.variables),
            "--persistence-id",
            PERSISTENCE_ID,
            "--print-events",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=self.settings.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(
            target=self._tee, args=(self.process.stdout, log_path), daemon=True
        )
        self._reader.start()
        return log_path

    @staticmethod
    def _tee(stream: IO[str], log_path: Path) -> None:
        printer = EventPrinter()
        with log_path.open("w") as log:
            for line in stream:
                log.write(line)
                log.flush()
                printer.feed(line.rstrip("\n"))

    def check_alive(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"ansible-rulebook exited ({self.process.returncode}); see logs")
        return True

    def stop(self) -> int:
        """SIGTERM (graceful with -Xrs: the source gives back what it holds), then the group."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        code: int | None = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.send_signal(signal.SIGTERM)
            code = process.wait(STOP_TIMEOUT)
        # Whatever it left behind (a playbook run) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT)
        return process.returncode if code is None else code


def rulebook_env(collections: Path, endpoint: str | None) -> dict[str, str]:
    extra = {
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONUNBUFFERED": "1",
        # Without -Xrs the JVM inside ansible-rulebook ends the process on SIGTERM before the
        # SQS source can give back the messages it holds.
        "JAVA_TOOL_OPTIONS": "-Xrs",
    }
    if endpoint is not None:
        extra |= {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}
    return tool_env(extra)


def write_variables(settings: Settings, endpoint: str | None) -> Path:
    variables: dict[str, Any] = {
        "sqs_queue_name": settings.queue,
        "sqs_region": settings.region,
        # Short long polls so that stopping never waits on one; fine for a demo.
        "sqs_wait_time_seconds": WAIT_TIME_SECONDS,
        "drools_db_file_path": f"{settings.work / 'h2' / 'remediate'};WRITE_DELAY=0",
        "drools_deduplication_window_size": 1000,
    }
    if endpoint is not None:
        variables["sqs_endpoint_url"] = endpoint
    path = settings.work / "vars.yml"
    path.write_text(yaml.safe_dump(variables))
    return path


# --- The story ------------------------------------------------------------------------------


def failure(service: str, status: str = "failed") -> dict[str, Any]:
    return {"status": status, "service": service, "host": HOST}


def alert(service: str, severity: str = "critical") -> dict[str, Any]:
    return {"severity": severity, "service": service, "host": HOST, "summary": "p99 > 2 s"}


def alarm_through_sns(service: str) -> dict[str, Any]:
    """A CloudWatch alarm's change to ALARM, as its SNS topic delivers it to an SQS queue
    (without raw delivery, the alarm is a JSON string in the notification's Message)."""
    alarm = {
        "AlarmName": f"{HOST}-{service}-5xx",
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": "Threshold Crossed: 1 datapoint [42.0] was greater than 10.0",
        "StateChangeTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime()),
        "Trigger": {
            "MetricName": "5xxErrors",
            "Namespace": "Demo",
            "Dimensions": [{"name": "service", "value": service}, {"name": "host", "value": HOST}],
        },
    }
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:eda-alarms",
        "Subject": f'ALARM: "{alarm["AlarmName"]}"',
        "Message": json.dumps(alarm),
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    }


@dataclass
class JournalWatch:
    """Tells each remediation as the demo host's journal records it."""

    target: DemoTarget
    told: int = 0

    def wait_for(self, rulebook: Rulebook, services: list[str]) -> None:
        def all_done() -> bool:
            rulebook.check_alive()
            runs = self.target.journal()
            for run in runs[self.told :]:
                say(f"  ->  {run.service} on {HOST}: {run.outcome}{_why(run.outcome)}")
            self.told = len(runs)
            return set(services) <= {run.service for run in runs}

        wait_for(all_done, f"remediation of {', '.join(services)}")


def _why(outcome: str) -> str:
    if outcome == "already running":
        return " (a run cut short by the stop, run again: actions are at least once)"
    return ""


def run(settings: Settings) -> None:
    if settings.work.exists():
        shutil.rmtree(settings.work)
    settings.logs.mkdir(parents=True)
    say(f"durable.eda demo (work folder {settings.work})")
    say("Installing the collection from its built tarball ...")
    collections = build_and_install_collection(PROJECT, settings.work)
    target = DemoTarget(settings.work, host=HOST).create()

    with sqs_endpoint(settings) as endpoint:
        where = f"local SQS (moto) at {endpoint}" if endpoint else f"AWS SQS in {settings.region}"
        client = sqs_client(settings, endpoint)
        queue_url = create_queue_with_dead_letter_queue(client, settings.queue)
        say(f"Queue {settings.queue} (dead-letter queue {settings.queue}-dlq) on {where}")
        gateway = Gateway(queue_url, endpoint, settings).start()
        say(f"Webhook gateway listening on {gateway.url}")
        rulebook = Rulebook(
            settings,
            target.inventory,
            write_variables(settings, endpoint),
            rulebook_env(collections, endpoint),
        )
        try:
            story(settings, target, client, queue_url, gateway, rulebook)
        finally:
            rulebook.stop()
            gateway.stop()


def story(
    settings: Settings,
    target: DemoTarget,
    client: Any,
    queue_url: str,
    gateway: Gateway,
    rulebook: Rulebook,
) -> None:
    first = ["web", "cache", "search", "api"]
    for service in [*first, "mail"]:
        target.break_service(service)
    say(f"\nOn {HOST}: {', '.join(first)} and mail are down.")

    say("\n1. ansible-rulebook (remediate_failures_durable.yml, H2 persistence) starts")
    rulebook.start()
    say("   Monitoring reports, through the gateway:")
    gateway.post(failure("web"))
    gateway.post(alert("cache"))
    say("   and a CI system writes to SQS directly: 'search' failed, five times (a storm),")
    for _report in range(5):
        client.send_message(QueueUrl=queue_url, MessageBody=json.dumps(failure("search")))
    say("   A CloudWatch alarm on 'api' goes to ALARM; its SNS topic delivers it to the queue,")
    client.send_message(QueueUrl=queue_url, MessageBody=json.dumps(alarm_through_sns("api")))
    say("   and something that is not a failure.")
    client.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"status": "ok"}))
    journal = JournalWatch(target)
    journal.wait_for(rulebook, first)
    wait_for(lambda: queue_counts(client, queue_url) == (0, 0), "the queue to empty")
    storm_runs = [run.service for run in target.journal()].count("search")
    say(f"   The storm of 5 'search' failures ran {storm_runs} remediation.")

    say("\n2. ansible-rulebook stops (SIGTERM); failures keep coming")
    rulebook.stop()
    if not settings.real_aws:
        # moto keeps a cancelled long poll open on its side until it times out, and hands it
        # a message arriving meanwhile: that message would wait out its visibility timeout.
        time.sleep(WAIT_TIME_SECONDS + 0.5)
    later = ["mail", "billing", "auth"]
    for service in later[1:]:
        target.break_service(service)
    for service in later:
        gateway.post(failure(service, status="error"))
    visible, _in_flight = queue_counts(client, queue_url)
    say(f"   {visible} events wait in SQS while nothing consumes them; mail, billing, auth down.")

    say("\n3. ansible-rulebook starts again with the same persistence id")
    rulebook.start()
    journal.wait_for(rulebook, later)
    wait_for(lambda: queue_counts(client, queue_url) == (0, 0), "the queue to empty")
    say("   Every event sent while it was down was remediated. The queue is empty.")
    summarise(target)


def summarise(target: DemoTarget) -> None:
    runs = [run.service for run in target.journal()]
    say(f"\nOn {target.host} now (service, state, restart_service runs, diagnostics reports):")
    for state in sorted(target.services.glob("*.state")):
        service = state.stem
        reports = len(target.diagnostics(service))
        say(f"   {service:8} {target.state(service):8} {runs.count(service)} {reports}")


def main() -> int:
    settings = Settings.from_env()
    started = time.monotonic()
    try:
        run(settings)
    except (TimeoutError, RuntimeError, subprocess.CalledProcessError, OSError) as error:
        say(f"\nThe demo failed: {error}")
        say(f"Logs: {settings.logs}")
        return 1
    except KeyboardInterrupt:
        say("\nInterrupted; everything the demo started is stopped.")
        return 130
    say(f"\nDone in {time.monotonic() - started:.0f} s; nothing is left running.")
    say(f"Logs: {settings.logs} (ansible-rulebook-1.log, ansible-rulebook-2.log, gateway.log)")
    say(f"The demo host's services and remediation journal: {settings.work / 'services'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
