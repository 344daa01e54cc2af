"""Real softphones calling each other through `sipline serve`: two baresip processes register to two
endpoints, one dials the other, the other answers by itself, both see the call established, one
hangs up and the other sees it; over UDP, and over TLS with SRTP for endpoints that require it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.sipline_process import Sipline
from tests.integration.softphone import Softphone

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sipline]:
    with Sipline(tmp_path_factory.mktemp("calls")) as process:
        yield process


def _endpoint(server: Sipline, api: httpx.Client, **fields: object) -> tuple[str, str]:
    username, password = f"u{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:12]}"
    server.create_endpoint(api, username=username, password=password, **fields)
    return username, password


@pytest.mark.parametrize(("transport", "srtp"), [("udp", False), ("tls", True)])
def test_two_softphones_call_each_other_and_either_can_hang_up(
    server: Sipline, tmp_path: Path, transport: str, srtp: bool
) -> None:
    fields = {"encryption": "required"} if srtp else {}
    with server.api() as api:
        domain = server.domain(api)
        (alice_user, alice_pw), (bob_user, bob_pw) = _endpoint(server, api, **fields), _endpoint(server, api, **fields)
    common = {"domain": domain, "server_port": server.ports[transport], "transport": transport, "srtp": srtp}
    with (
        Softphone(tmp_path / "alice", username=alice_user, password=alice_pw, **common) as alice,
        Softphone(tmp_path / "bob", username=bob_user, password=bob_pw, **common) as bob,
    ):
        alice.wait_registered()
        bob.wait_registered()
        alice.dial(f"sip:{bob_user}@{domain}")
        assert bob.wait_for("CALL_ESTABLISHED")["peeruri"].startswith(f"sip:{alice_user}@{domain}")
        assert alice.wait_for("CALL_ESTABLISHED")["peeruri"].startswith(f"sip:{bob_user}@{domain}")
        bob.hang_up()
        alice.wait_for("CALL_CLOSED")
        bob.wait_for("CALL_CLOSED")
    legs = server.finished_calls(alice_user)
    assert sorted(c["direction"] for c in legs) == ["inbound", "outbound"]
    assert all(c["status"] == "completed" for c in legs)


def test_a_softphones_call_runs_its_laml_document(server: Sipline, tmp_path: Path) -> None:
    """The caller's endpoint has a LaML handler on a real webhook server: whatever the phone dials,
    the document decides: here, the other phone, by SIP URI, with a caller name of its own."""
    from tests.webhooks.http_server import WebhookServer

    with WebhookServer() as web, server.api() as api:
        domain = server.domain(api)
        alice_user, alice_pw = _endpoint(server, api, call_handler="laml_webhooks", call_request_url=web.url("/voice"))
        bob_user, bob_pw = _endpoint(server, api)
        web.respond(
            "/voice",
            body=f'<Response><Dial callerName="Reception"><Sip>sip:{bob_user}@{domain}</Sip></Dial></Response>',
        )
        common = {"domain": domain, "server_port": server.ports["udp"]}
        with (
            Softphone(tmp_path / "alice", username=alice_user, password=alice_pw, **common) as alice,
            Softphone(tmp_path / "bob", username=bob_user, password=bob_pw, **common) as bob,
        ):
            alice.wait_registered()
            bob.wait_registered()
            alice.dial(f"sip:the-front-desk@{domain}")
            bob.wait_for("CALL_ESTABLISHED")
            alice.wait_for("CALL_ESTABLISHED")
            alice.hang_up()
            bob.wait_for("CALL_CLOSED")
            alice.wait_for("CALL_CLOSED")
        [request] = web.requests_to("/voice")
        assert request.form["To"] == f"sip:the-front-desk@{domain}"
