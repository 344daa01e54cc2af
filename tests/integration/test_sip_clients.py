"""Real clients against `sipline serve` as a process: sipp and baresip register with an endpoint's
username and password, and are refused after a password change, a deletion, or over a transport
the endpoint's encryption forbids. Two processes on one PostgreSQL share bindings.

sipp 3.6 and baresip 1.0 (Debian 12) compute MD5 digests only, and baresip gives up when any
challenge names an algorithm it lacks: the default (MD5 alone) is what both need, so every server
here runs on the defaults, as a new user's does.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import _create_pg_database, _drop_pg_database, require_postgres
from tests.integration.clients import Baresip, sipp_register
from tests.integration.sipline_process import Sipline, need

pytestmark = pytest.mark.integration

QUIET = {"SIPLINE_LOG_LEVEL": "warning"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sipline]:
    with Sipline(tmp_path_factory.mktemp("sipline"), env=QUIET) as process:
        yield process


@pytest.fixture
def api(server: Sipline) -> Iterator[httpx.Client]:
    with server.api() as client:
        yield client


def _endpoint(server: Sipline, api: httpx.Client, **fields: object) -> tuple[dict, str, str]:
    password = f"pw-{uuid.uuid4().hex[:12]}"
    endpoint = server.create_endpoint(api, username=f"u{uuid.uuid4().hex[:8]}", password=password, **fields)
    return endpoint, password, server.domain(api)


def _wait_for_registration(
    server: Sipline, api: httpx.Client, endpoint_id: str, *, transport: str, port: int | None = None
) -> dict:
    """The endpoint's registration over `transport` (from `port`, for UDP), polled for up to 15 s."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for registration in server.registrations(api, endpoint_id):
            if registration["transport"] == transport and port in (None, registration["source_port"]):
                return registration
        time.sleep(0.2)
    raise AssertionError(f"no {transport} registration within 15 s")


def test_sipp_registers_with_the_endpoint_password(server: Sipline, api: httpx.Client, tmp_path: Path):
    endpoint, password, domain = _endpoint(server, api)
    result = sipp_register(tmp_path, server.ports["udp"], [(endpoint["username"], password, domain)])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    [registration] = server.registrations(api, endpoint["id"])
    assert registration["transport"] == "udp"
    assert registration["user_agent"] == "sipp"
    assert registration["contact"].startswith(f"sip:{endpoint['username']}@127.0.0.1:")


def test_a_sip_domain_setting_in_any_case_with_a_trailing_dot_is_one_domain(tmp_path: Path):
    env = {**QUIET, "SIPLINE_SIP_DOMAIN": "SIP.Example.COM."}
    with Sipline(tmp_path / "node", env=env) as node, node.api() as api:
        endpoint, password, domain = _endpoint(node, api)
        assert domain == "default.sip.example.com"
        result = sipp_register(tmp_path / "sipp", node.ports["udp"], [(endpoint["username"], password, domain)])
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert len(node.registrations(api, endpoint["id"])) == 1


def test_baresip_registers_over_udp(server: Sipline, api: httpx.Client, tmp_path: Path):
    endpoint, password, domain = _endpoint(server, api)
    phone = Baresip(
        tmp_path, username=endpoint["username"], password=password, domain=domain, server_port=server.ports["udp"]
    )
    with phone:
        registration = _wait_for_registration(server, api, endpoint["id"], transport="udp", port=phone.port)
        assert phone.wait_for_output("200 OK"), phone.output()
    assert registration["transport"] == "udp"
    assert "baresip" in (registration["user_agent"] or "")


def test_baresip_registers_over_tls(server: Sipline, api: httpx.Client, tmp_path: Path):
    endpoint, password, domain = _endpoint(server, api)
    phone = Baresip(
        tmp_path,
        username=endpoint["username"],
        password=password,
        domain=domain,
        server_port=server.ports["tls"],
        transport="tls",
        cafile=server.cert,
    )
    with phone:
        registration = _wait_for_registration(server, api, endpoint["id"], transport="tls")
    assert registration["transport"] == "tls"


def test_after_a_password_change_the_old_password_is_refused(server: Sipline, api: httpx.Client, tmp_path: Path):
    endpoint, old, domain = _endpoint(server, api)
    user = endpoint["username"]
    assert sipp_register(tmp_path / "before", server.ports["udp"], [(user, old, domain)]).returncode == 0
    response = api.put(f"/endpoints/sip/{endpoint['id']}", json={"password": "the-new-password"})
    assert response.status_code == 201, response.text

    assert sipp_register(tmp_path / "old", server.ports["udp"], [(user, old, domain)], timeout=8).returncode != 0
    phone = Baresip(tmp_path / "baresip", username=user, password=old, domain=domain, server_port=server.ports["udp"])
    with phone:
        assert phone.wait_for_output("401 Unauthorized"), phone.output()
        # The 401 is sent after the store has refused: nothing can have been bound.
        assert all(r["source_port"] != phone.port for r in server.registrations(api, endpoint["id"]))
    new = sipp_register(tmp_path / "new", server.ports["udp"], [(user, "the-new-password", domain)])
    assert new.returncode == 0


def test_deleting_an_endpoint_removes_its_bindings_and_refuses_it(server: Sipline, api: httpx.Client, tmp_path: Path):
    endpoint, password, domain = _endpoint(server, api)
    user = endpoint["username"]
    assert sipp_register(tmp_path / "a", server.ports["udp"], [(user, password, domain)]).returncode == 0
    assert len(server.registrations(api, endpoint["id"])) == 1
    assert api.delete(f"/endpoints/sip/{endpoint['id']}").status_code == 204
    assert api.get(f"/endpoints/sip/{endpoint['id']}/registrations").status_code == 404
    with sqlite3.connect(server.data_dir / "sipline.db") as db:
        rows = db.execute("SELECT count(*) FROM sip_bindings WHERE endpoint_id = ?", (endpoint["id"],)).fetchone()
    assert rows == (0,)
    assert sipp_register(tmp_path / "b", server.ports["udp"], [(user, password, domain)], timeout=8).returncode != 0


def test_encryption_required_is_refused_over_udp_and_accepted_over_tls(
    server: Sipline, api: httpx.Client, tmp_path: Path
):
    endpoint, password, domain = _endpoint(server, api, encryption="required")
    common = {"username": endpoint["username"], "password": password, "domain": domain}
    with Baresip(tmp_path / "udp", server_port=server.ports["udp"], **common) as phone:
        assert phone.wait_for_output("403 Encryption Required"), phone.output()
    assert server.registrations(api, endpoint["id"]) == []
    tls = Baresip(tmp_path / "tls", server_port=server.ports["tls"], transport="tls", cafile=server.cert, **common)
    with tls:
        assert _wait_for_registration(server, api, endpoint["id"], transport="tls")["user_agent"].startswith("baresip")


def test_an_endpoint_created_on_one_node_registers_through_another(tmp_path: Path):
    pg_url = require_postgres()
    need("sipp")
    url = asyncio.run(_create_pg_database(pg_url))
    try:
        # Same secret on both nodes: nonces and sealed passwords must be readable by either.
        env = {**QUIET, "SIPLINE_DATABASE_URL": url, "SIPLINE_SECRET_KEY": os.urandom(16).hex()}
        with Sipline(tmp_path / "node1", env=env) as node1, Sipline(tmp_path / "node2", env=env) as node2:
            assert node1.project_id and node2.project_id is None  # node 2 found the project node 1 made
            with node1.api() as api1:
                endpoint, password, domain = _endpoint(node1, api1)
                result = sipp_register(
                    tmp_path / "sipp", node2.ports["udp"], [(endpoint["username"], password, domain)]
                )
                assert result.returncode == 0, result.stdout[-2000:]
                [registration] = node1.registrations(api1, endpoint["id"])
            with node2.api(node1.project_id, node1.token) as api2:
                assert node2.registrations(api2, endpoint["id"]) == [registration]
    finally:
        asyncio.run(_drop_pg_database(url))
