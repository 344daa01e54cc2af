"""Start `sipline serve` as a real process on free loopback ports and talk to it over HTTP.

The ports, the bootstrap project id and its token are read from what the process prints on stdout
(see sipline/serve.py and sipline/sipserver/server.py), exactly as an operator would read them.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from sipline.domain.calls import UNFINISHED_STATUSES

SIPLINE = str(Path(sys.executable).with_name("sipline"))
REQUIRE_CLIENTS = os.environ.get("CI") == "true" or os.environ.get("SIPLINE_REQUIRE_SIP_CLIENTS") == "1"

_PROJECT_RE = re.compile(r"^\s*project id:\s*(\S+)")
_TOKEN_RE = re.compile(r"^\s*API token:\s*(\S+)")
_SIP_RE = re.compile(r"^sipline: SIP on (.*)$")
_HTTP_RE = re.compile(r"^sipline: HTTP API on (http://\S+)")
_CERT_RE = re.compile(r"^sipline: generated a self-signed TLS certificate for SIP: (\S+)")


def need(binary: str) -> str:
    """Path of a client program; missing fails in CI (or with SIPLINE_REQUIRE_SIP_CLIENTS=1), else skips."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} is not installed (Debian: apt-get install sip-tester baresip)"
        if REQUIRE_CLIENTS:
            pytest.fail(message)
        pytest.skip(message)
    return path


class Sipline:
    """One `sipline serve` process; use as a context manager so it is always stopped."""

    def __init__(
        self,
        data_dir: Path,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        """`prefix` runs the process under another command (bench/sip.py pins it with taskset)."""
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {})}
        self.args = args or []
        self.prefix = prefix or []
        self.lines: list[str] = []
        self.project_id: str | None = None
        self.token: str | None = None
        self.http_url = ""
        self.ports: dict[str, int] = {}
        self.cert: Path | None = None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> Sipline:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            *self.prefix, SIPLINE, "serve", "--data-dir", str(self.data_dir), "--http-port", "0",
            "--sip-udp-port", "0", "--sip-tcp-port", "0", "--sip-tls-port", "0", *self.args,
        ]  # fmt: skip
        stderr = (self.data_dir / "stderr.log").open("w")
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, env=self.env, start_new_session=True
        )
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.http_url:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise TimeoutError(f"sipline did not start in {timeout} s: {self.output()}") from None
            if line is None:
                self.stop()
                raise RuntimeError(f"sipline exited during startup: {self.output()}")
            self._parse(line)
        return self

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)

    def _parse(self, line: str) -> None:
        if m := _PROJECT_RE.match(line):
            self.project_id = m[1]
        elif m := _TOKEN_RE.match(line):
            self.token = m[1]
        elif m := _CERT_RE.match(line):
            self.cert = Path(m[1])
        elif m := _SIP_RE.match(line):
            for item in m[1].split():
                name, _host, port = item.rsplit(":", 2)
                self.ports[name] = int(port)
        elif m := _HTTP_RE.match(line):
            self.http_url = m[1]

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def output(self) -> str:
        errors = self.data_dir / "stderr.log"
        return "".join(self.lines) + (errors.read_text()[-4000:] if errors.exists() else "")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def tracebacks(self) -> str:
        """The server log's tracebacks: an unhandled exception, whatever the test itself checked."""
        errors = self.data_dir / "stderr.log"
        text = errors.read_text(errors="replace") if errors.exists() else ""
        return text if "Traceback (most recent call last)" in text else ""

    def __enter__(self) -> Sipline:
        return self.start() if self._proc is None else self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop()
        if exc_type is None:
            tracebacks = self.tracebacks()
            assert not tracebacks, f"the server logged an unhandled exception:\n{tracebacks[-4000:]}"

    # --- the HTTP API, as a user calls it -----------------------------------------------------

    def api(self, project_id: str | None = None, token: str | None = None) -> httpx.Client:
        auth = (project_id or self.project_id or "", token or self.token or "")
        return httpx.Client(base_url=self.http_url + "/api/relay/rest", auth=auth, timeout=10)

    def domain(self, api: httpx.Client) -> str:
        response = api.get("/sip_profile")
        response.raise_for_status()
        return str(response.json()["domain"])

    @staticmethod
    def create_endpoint(api: httpx.Client, **fields: Any) -> dict[str, Any]:
        response = api.post("/endpoints/sip", json=fields)
        assert response.status_code == 201, response.text
        return dict(response.json())

    @staticmethod
    def registrations(api: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
        response = api.get(f"/endpoints/sip/{endpoint_id}/registrations")
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def finished_calls(self, caller: str, legs: int = 2, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The records of the calls from `caller` once `legs` of them are there and none is
        unfinished: they are written behind the calls, a few milliseconds after their messages."""
        deadline = time.monotonic() + timeout
        while True:
            response = httpx.get(
                f"{self.http_url}/api/laml/2010-04-01/Accounts/{self.project_id}/Calls.json",
                auth=(self.project_id or "", self.token or ""),
            )
            assert response.status_code == 200, response.text
            calls = [c for c in response.json()["calls"] if caller in c["from"]]
            settled = len(calls) >= legs and all(c["status"] not in UNFINISHED_STATUSES for c in calls)
            if settled or time.monotonic() > deadline:
                return calls
            time.sleep(0.02)


def cli(
    *args: str, data_dir: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    """One `sipline` command (not serve) against a data dir, as a user runs it."""
    return subprocess.run(
        [SIPLINE, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
