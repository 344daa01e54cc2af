"""A SipServer on free loopback ports with a project of its own: the stage for call tests."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipline.runtime import Runtime
from sipline.sipserver.server import SipServer
from tests.conftest import Project, new_project
from tests.sip_server.ua import UA


def runtime_on_free_ports(runtime: Runtime, data_dir: Path, **settings: object) -> Runtime:
    update = {"sip_udp_port": 0, "sip_tcp_port": 0, "sip_tls_port": 0, "data_dir": data_dir, **settings}
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=update))


@pytest.fixture
async def server(runtime: Runtime, tmp_path: Path) -> AsyncIterator[SipServer]:
    sip = SipServer(runtime_on_free_ports(runtime, tmp_path, call_ring_timeout=3.0))
    sip.service.domains.ttl = 0
    await sip.start()
    yield sip
    # Whatever the test did, no call, dialog or held connection is left behind once it is over.
    engine = sip.service.calls
    assert not engine.calls and not engine.dialogs and not engine._invites
    assert all(connection.users == 0 for connection in sip._connections)
    await sip.stop()


@dataclasses.dataclass
class World:
    server: SipServer
    project: Project
    domain: str

    def ua(self, endpoint: dict, transport: str = "udp", password: str = "s3cret-pass") -> UA:
        port = self.server.ports[transport]
        cafile = self.server.runtime.settings.data_dir / "sip-tls-cert.pem"
        return UA(endpoint["username"], password, self.domain, ("127.0.0.1", port), transport=transport, cafile=cafile)

    async def calls(self) -> list[dict]:
        await self.server.service.calls.records.flush()
        response = await self.project.client.get(
            f"/api/laml/2010-04-01/Accounts/{self.project.id}/Calls.json", headers=self.project.auth
        )
        assert response.status_code == 200, response.text
        return response.json()["calls"]


@pytest.fixture
async def world(server: SipServer, runtime: Runtime, sip_client) -> World:
    project = await new_project(runtime, sip_client)
    domain = (await project.request("GET", "/sip_profile")).json()["domain"]
    return World(server, project, domain)


async def answered_call(alice: UA, bob: UA) -> tuple:
    """alice calls bob, bob rings then answers, alice acknowledges: (caller leg, callee leg, 200)."""
    caller = await alice.invite(bob.username)
    callee = await bob.incoming()
    bob.answer(callee, 180, "Ringing", body="")
    ringing = await alice.response(caller.call_id, final=False)
    assert ringing.status == 180
    bob.answer(callee)
    ok = await alice.response(caller.call_id)
    assert ok.status == 200
    alice.established(caller, ok)
    alice.ack(caller)
    await bob.request("ACK", call_id=callee.call_id)
    return caller, callee, ok
