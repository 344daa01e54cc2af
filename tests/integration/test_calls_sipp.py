"""Calls through `sipline serve` between sipp processes: a registered sipp callee, a sipp caller that
answers the 407 with its endpoint's password; answered, busy, cancelled, unknown, unreachable;
over UDP and TCP (Debian's sipp has no TLS: TLS calls are the softphone tests'), and across two
nodes on one PostgreSQL (the caller on node A, the callee's TCP connection on node B).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _create_pg_database, _drop_pg_database, require_postgres
from tests.integration.clients import sipp_call, sipp_callee
from tests.integration.sipline_process import Sipline, need

pytestmark = pytest.mark.integration

QUIET = {"SIPLINE_LOG_LEVEL": "warning", "SIPLINE_CALL_RING_TIMEOUT": "5"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sipline]:
    with Sipline(tmp_path_factory.mktemp("sipp-calls"), env=QUIET) as process:
        yield process


def _pair(server: Sipline) -> tuple[tuple[str, str], tuple[str, str], str]:
    with server.api() as api:
        domain = server.domain(api)
        users = []
        for _ in range(2):
            username, password = f"u{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:12]}"
            server.create_endpoint(api, username=username, password=password)
            users.append((username, password))
    return users[0], users[1], domain


def _statuses(server: Sipline, caller: str) -> dict[str, str]:
    return {c["direction"]: c["status"] for c in server.finished_calls(caller)}


def _ok(result) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_sipp_calls_a_registered_sipp_that_answers(server: Sipline, tmp_path: Path, transport: str) -> None:
    (caller, password), (callee, callee_password), domain = _pair(server)
    port = server.ports[transport]
    with sipp_callee(tmp_path / "callee", port, callee, callee_password, domain, transport=transport):
        _ok(sipp_call(tmp_path / "caller", port, caller, password, callee, domain, transport=transport, calls=3))
    assert _statuses(server, caller) == {"inbound": "completed", "outbound": "completed"}


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_busy_sipp_makes_the_caller_hear_486(server: Sipline, tmp_path: Path, transport: str) -> None:
    (caller, password), (callee, callee_password), domain = _pair(server)
    port = server.ports[transport]
    with sipp_callee(tmp_path / "callee", port, callee, callee_password, domain, "uas_busy.xml", transport=transport):
        result = sipp_call(
            tmp_path / "caller", port, caller, password, callee, domain,
            scenario="uac_expect.xml", expect=486, transport=transport,
        )  # fmt: skip
        _ok(result)
    assert _statuses(server, caller) == {"inbound": "busy", "outbound": "busy"}


def test_cancelling_a_ringing_sipp(server: Sipline, tmp_path: Path) -> None:
    (caller, password), (callee, callee_password), domain = _pair(server)
    port = server.ports["udp"]
    with sipp_callee(tmp_path / "callee", port, callee, callee_password, domain, "uas_ring_forever.xml"):
        _ok(sipp_call(tmp_path / "caller", port, caller, password, callee, domain, scenario="uac_cancel.xml"))
    assert _statuses(server, caller) == {"inbound": "canceled", "outbound": "canceled"}


def test_unknown_users_get_404_and_users_without_devices_480(server: Sipline, tmp_path: Path) -> None:
    (caller, password), (callee, _), domain = _pair(server)
    port = server.ports["udp"]
    for user, status in (("nobody-here", 404), (callee, 480)):
        result = sipp_call(
            tmp_path / str(status), port, caller, password, user, domain, scenario="uac_expect.xml", expect=status
        )
        _ok(result)


def test_a_call_on_one_node_reaches_a_callee_connected_to_another(tmp_path: Path) -> None:
    pg_url = require_postgres()
    need("sipp")
    url = asyncio.run(_create_pg_database(pg_url))
    try:
        env = {**QUIET, "SIPLINE_DATABASE_URL": url, "SIPLINE_SECRET_KEY": os.urandom(16).hex()}
        with Sipline(tmp_path / "a", env=env) as node_a, Sipline(tmp_path / "b", env=env) as node_b:
            node_b.project_id, node_b.token = node_a.project_id, node_a.token
            (caller, password), (callee, callee_password), domain = _pair(node_a)
            with sipp_callee(
                tmp_path / "callee", node_b.ports["tcp"], callee, callee_password, domain, transport="tcp"
            ):
                result = sipp_call(tmp_path / "caller", node_a.ports["udp"], caller, password, callee, domain)
                _ok(result)
            assert _statuses(node_a, caller) == {"inbound": "completed", "outbound": "completed"}
    finally:
        asyncio.run(_drop_pg_database(url))


def test_a_laml_document_dials_a_remote_sipp_server_by_ip(server: Sipline, tmp_path: Path) -> None:
    """The caller's endpoint runs LaML from a real webhook server; its <Dial><Sip> names a sipp UAS
    outside the installation (an IP literal: RFC 3263 takes it as it is), which answers."""
    from tests.integration.clients import SCENARIOS, free_port
    from tests.webhooks.http_server import WebhookServer

    with WebhookServer() as web, server.api() as api:
        domain = server.domain(api)
        caller, password = f"u{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:12]}"
        server.create_endpoint(
            api, username=caller, password=password, call_handler="laml_webhooks", call_request_url=web.url("/voice")
        )
        port = free_port()
        web.respond("/voice", body=f"<Response><Dial><Sip>sip:trunk@127.0.0.1:{port}</Sip></Dial></Response>")
        uas = subprocess.Popen(
            [need("sipp"), "-sf", str(SCENARIOS / "uas_answer.xml"), "-i", "127.0.0.1", "-p", str(port), "-m", "1",
             "-nostdin", "-timeout", "30s", "-trace_err"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            _ok(sipp_call(tmp_path / "caller", server.ports["udp"], caller, password, "anyone", domain))
            assert uas.wait(timeout=30) == 0
        finally:
            if uas.poll() is None:
                uas.kill()
                uas.wait()
        [request] = web.requests_to("/voice")
        assert request.form["From"] == f"sip:{caller}@{domain}"
    assert _statuses(server, caller) == {"inbound": "completed", "outbound": "completed"}
