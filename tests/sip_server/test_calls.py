"""Calls through a real SipServer on loopback sockets, between scripted user agents.

Each test makes a project with endpoints through the API, registers UAs as their devices, and
checks what each side sees: the B2BUA's two dialogs, ringing, answer, hang-up from either side,
cancel, busy, no answer, forking to several devices, SDP policy, identity, and the Call records.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipline.runtime import Runtime
from sipline.sip.message import SipRequest
from sipline.sipserver.server import SipServer
from tests.conftest import Project, new_project
from tests.sip_server.ua import ANSWER, OFFER, UA, header_params


def _runtime_on_free_ports(runtime: Runtime, data_dir: Path, **settings: object) -> Runtime:
    update = {"sip_udp_port": 0, "sip_tcp_port": 0, "sip_tls_port": 0, "data_dir": data_dir, **settings}
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=update))


@pytest.fixture
async def server(runtime: Runtime, tmp_path: Path) -> AsyncIterator[SipServer]:
    sip = SipServer(_runtime_on_free_ports(runtime, tmp_path, call_ring_timeout=3.0))
    sip.service.domains.ttl = 0
    await sip.start()
    yield sip
    await sip.stop()


@dataclasses.dataclass
class World:
    server: SipServer
    project: Project
    domain: str

    def ua(self, endpoint: dict, transport: str = "udp", password: str = "s3cret-pass") -> UA:
        port = self.server.ports[transport]
        return UA(endpoint["username"], password, self.domain, ("127.0.0.1", port), transport=transport)

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


async def _answered_call(world: World, alice: UA, bob: UA) -> tuple:
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


async def test_a_registered_endpoint_calls_another_by_user_name_and_either_hangs_up(world: World):
    a, b = await world.project.create(caller_id="Alice Liddell"), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        assert (await bob.register()).status == 200
        caller, callee, ok = await _answered_call(world, alice, bob)
        # Two dialogs: the callee sees sipline's own Call-ID and the caller's identity.
        assert callee.call_id != caller.call_id
        invite = callee.invite
        assert invite is not None
        assert invite.headers.get("From").startswith(f'"Alice Liddell" <sip:{a["username"]}@{world.domain}>')
        assert invite.uri == f"sip:{b['username']}@127.0.0.1:{bob.port};transport=udp"
        assert b"m=audio" in invite.body and b"PCMU" in invite.body
        assert b"m=audio 41000" in ok.body  # the callee's answer reaches the caller
        # The callee hangs up: the caller gets a BYE in its own dialog, and both are answered.
        bob.in_dialog(callee, "BYE")
        assert (await bob.next(status=200, call_id=callee.call_id)).status == 200
        bye = await alice.request("BYE", call_id=caller.call_id)
        alice.send(alice.reply(bye, 200, "OK"))
    records = {r["direction"]: r for r in await world.calls()}
    inbound, outbound = records["inbound"], records["outbound"]
    assert inbound["status"] == outbound["status"] == "completed"
    assert outbound["parent_call_sid"] == inbound["sid"]
    assert inbound["from"] == f"sip:{a['username']}@{world.domain}"
    assert outbound["to"] == f"sip:{b['username']}@{world.domain}"
