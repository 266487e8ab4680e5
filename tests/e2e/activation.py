"""Loopback stand-ins for the two servers an EDA controller activation talks to.

- EdaServerPeer stands for eda-server's websocket endpoint (/api/eda/ws/ansible-rulebook,
  aap_eda/wsapi/consumers.py). ansible-rulebook in --worker mode connects, sends
  {"type": "Worker", "activation_id": ID}, and receives the workload in the order
  eda-server sends it: ExtraVars, Rulebook, ControllerInfo, VaultCollection, EnvVars,
  EndOfResponse (ansible-rulebook's websocket.py, request_workload). A second connection
  then carries the event log (Job, Action, SessionStats, Shutdown), which the peer records.
- ControllerApi stands for the automation controller's REST API v2, the part ansible-
  rulebook's job_template_runner.py uses: GET config/, GET unified_job_templates/?name=,
  POST job_templates/ID/launch/, and GET jobs/?id__in= to poll. It records each launch and
  reports a job "running" for JOB_SECONDS, then "successful".
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from tests.e2e.support import Rulebook, tool

WS_PATH = "/api/eda/ws/ansible-rulebook"
JOB_SECONDS = 1.0


def _encoded(data: str) -> str:
    return base64.b64encode(data.encode()).decode()


@dataclass
class Workload:
    """What eda-server sends for one activation."""

    rulebook_text: str
    extra_vars: dict[str, Any]
    env_vars: dict[str, Any]
    controller: dict[str, Any]
    vault_collection: dict[str, Any] | None = None

    def messages(self) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = [
            {"type": "ExtraVars", "data": _encoded(yaml.dump(self.extra_vars))},
            {"type": "Rulebook", "data": _encoded(self.rulebook_text)},
            {"type": "ControllerInfo", **self.controller},
        ]
        if self.vault_collection:
            sent.append(self.vault_collection)
        if self.env_vars:
            sent.append({"type": "EnvVars", "data": _encoded(yaml.dump(self.env_vars))})
        sent.append({"type": "EndOfResponse"})
        return sent


@dataclass
class EdaServerPeer:
    """The websocket side of eda-server, on 127.0.0.1."""

    workload: Workload
    access_token: str
    workers: list[dict[str, Any]] = field(default_factory=list)
    event_log: list[dict[str, Any]] = field(default_factory=list)
    authorizations: set[str] = field(default_factory=set)
    _server: Server | None = None

    def __enter__(self) -> EdaServerPeer:
        self._server = serve(self._handle, "127.0.0.1", 0)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.shutdown()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}{WS_PATH}"

    def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        self.authorizations.add(connection.request.headers.get("Authorization", ""))
        try:
            first = json.loads(connection.recv())
            if first.get("type") == "Worker":
                self.workers.append(first)
                for message in self.workload.messages():
                    connection.send(json.dumps(message))
                return
            self.event_log.append(first)
            while True:
                self.event_log.append(json.loads(connection.recv()))
        except ConnectionClosed:
            return

    def actions(self) -> list[dict[str, Any]]:
        return [m for m in self.event_log if m.get("type") == "Action"]


@dataclass
class Launch:
    template: str
    limit: str
    extra_vars: dict[str, Any]
    authorization: str


@dataclass
class ControllerApi:
    """The automation controller's job-template API, on 127.0.0.1."""

    templates: dict[str, int]
    organization: str = "Default"
    launches: list[Launch] = field(default_factory=list)
    _started: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> ControllerApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api._answer(self, api.get(self.path))

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                authorization = self.headers.get("Authorization", "")
                api._answer(self, api.post(self.path, body, authorization))

            def log_message(self, *_: Any) -> None:
                """Silent: the test reads the launches, not an access log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @staticmethod
    def _answer(handler: BaseHTTPRequestHandler, reply: tuple[int, dict[str, Any]]) -> None:
        status, body = reply
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        url = urlparse(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/api/v2/config/":
            return 200, {"version": "4.6.0"}
        if url.path == "/api/v2/unified_job_templates/":
            found = [self._template(query["name"])] if query.get("name") in self.templates else []
            return 200, {"count": len(found), "next": None, "results": found}
        if url.path == "/api/v2/jobs/":
            ids = [int(i) for i in query.get("id__in", "").split(",") if i]
            jobs = [self._job(i) for i in ids if i in self._started]
            return 200, {"count": len(jobs), "next": None, "results": jobs}
        return 404, {"detail": "Not found."}

    def post(
        self, path: str, body: dict[str, Any], authorization: str
    ) -> tuple[int, dict[str, Any]]:
        by_id = {f"/api/v2/job_templates/{i}/launch/": name for name, i in self.templates.items()}
        if path not in by_id:
            return 404, {"detail": "Not found."}
        with self._lock:
            job_id = len(self._started) + 1
            self._started[job_id] = time.monotonic()
            self.launches.append(
                Launch(by_id[path], str(body.get("limit")), body["extra_vars"], authorization)
            )
        return 201, {"id": job_id, "job": job_id, "url": f"/api/v2/jobs/{job_id}/"}

    def _template(self, name: str) -> dict[str, Any]:
        template_id = self.templates[name]
        return {
            "id": template_id,
            "type": "job_template",
            "name": name,
            "summary_fields": {"organization": {"name": self.organization}},
            "related": {"launch": f"/api/v2/job_templates/{template_id}/launch/"},
            "ask_limit_on_launch": True,
            "ask_labels_on_launch": False,
            "ask_inventory_on_launch": False,
            "ask_variables_on_launch": True,
        }

    def _job(self, job_id: int) -> dict[str, Any]:
        done = time.monotonic() - self._started[job_id] >= JOB_SECONDS
        return {
            "id": job_id,
            "url": f"/api/v2/jobs/{job_id}/",
            "status": "successful" if done else "running",
            "created": datetime.now(UTC).isoformat(),
            "artifacts": {},
        }


@dataclass
class ActivationProcess(Rulebook):
    """ansible-rulebook as an activation's container starts it (eda-server's
    AnsibleRulebookCmdLine): --worker, the websocket, --id of the instance, and
    --persistence-id of the activation when persistence is enabled."""

    websocket_url: str = ""
    access_token: str = ""
    instance_id: int = 0

    def start(self) -> ActivationProcess:
        assert self.process is None, "already running"
        command = [
            tool("ansible-rulebook"),
            "--worker",
            "--websocket-ssl-verify",
            "no",
            "--websocket-url",
            self.websocket_url,
            "--websocket-access-token",
            self.access_token,
            "--websocket-refresh-token",
            "refresh-token-unused",
            "--websocket-token-url",
            self.websocket_url.replace("ws://", "http://").replace(
                "/ws/ansible-rulebook", "/v1/auth/token/refresh/"
            ),
            "--id",
            str(self.instance_id),
            "--heartbeat",
            "5",
            "-v",
        ]
        if self.persistence_id:
            command += ["--persistence-id", self.persistence_id]
        self._launch(command)
        return self

    def _launch(self, command: list[str]) -> None:
        self._log = self._next_log_path().open("wb")
        self.process = subprocess.Popen(
            command,
            cwd=self.workdir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def controller_rulebook(project_root: Path) -> str:
    return (project_root / "extensions/eda/rulebooks/remediate_failures_controller.yml").read_text()
