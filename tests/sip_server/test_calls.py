"""Calls through a real SipServer on loopback sockets, between scripted user agents.

Each test makes a project with endpoints through the API, registers UAs as their devices, and
checks what each side sees: the B2BUA's two dialogs, ringing, answer, hang-up from either side,
cancel, busy, no answer, forking to several devices, SDP policy, identity, and the Call records.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from sipline.runtime import Runtime
from sipline.sip.message import serialize
from sipline.sip.transaction import NoAck
from sipline.sipserver.calls import engine
from sipline.sipserver.server import SipServer
from tests.conftest import new_project
from tests.sip_server.ua import ANSWER, OFFER, SRTP_OFFER, UA, Leg
from tests.sip_server.world import World, answered_call, runtime_on_free_ports


async def _answered_call(world: World, alice: UA, bob: UA) -> tuple:
    return await answered_call(alice, bob)


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


async def test_the_caller_hangs_up_and_the_callee_gets_the_bye(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller, callee, _ = await _answered_call(world, alice, bob)
        alice.in_dialog(caller, "BYE")
        assert (await alice.next(status=200, call_id=caller.call_id)).status == 200
        bye = await bob.request("BYE", call_id=callee.call_id)
        assert bye.headers.get("From").endswith(f";tag={callee.remote_tag}")
        bob.send(bob.reply(bye, 200, "OK"))
    assert {r["status"] for r in await world.calls()} == {"completed"}


async def test_cancelling_while_ringing_stops_the_device_and_answers_487(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller = await alice.invite(b["username"])
        callee = await bob.incoming()
        bob.answer(callee, 180, "Ringing", body="")
        assert (await alice.response(caller.call_id, final=False)).status == 180
        alice.cancel(caller)
        cancelled = await bob.request("CANCEL", call_id=callee.call_id)
        bob.send(bob.reply(cancelled, 200, "OK"))
        assert callee.invite is not None
        bob.send(bob.reply(callee.invite, 487, "Request Terminated", tag=callee.local_tag))
        final = await alice.response(caller.call_id)
        assert final.status == 487
        alice.ack_failure(caller, final)
    records = {r["direction"]: r for r in await world.calls()}
    assert records["inbound"]["status"] == "canceled"
    assert records["outbound"]["status"] == "canceled"


async def test_a_busy_callee_makes_the_caller_hear_busy(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller = await alice.invite(b["username"])
        callee = await bob.incoming()
        bob.answer(callee, 486, "Busy Here")
        assert (await bob.request("ACK", call_id=callee.call_id)).method == "ACK"
        final = await alice.response(caller.call_id)
        assert final.status == 486
        alice.ack_failure(caller, final)
        bob.answer(callee, 486, "Busy Here")  # as if sipline's ACK was lost: it is sent again
        assert (await bob.request("ACK", call_id=callee.call_id)).method == "ACK"
    records = {r["direction"]: r for r in await world.calls()}
    assert records["inbound"]["status"] == records["outbound"]["status"] == "busy"
    assert records["inbound"]["sip_result_code"] == 486


async def test_an_unknown_user_is_404_and_one_without_devices_is_480(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice:
        for user, expected in (("nobody-by-that-name", 404), (b["username"], 480)):
            leg = await alice.invite(user)
            final = await alice.response(leg.call_id)
            assert final.status == expected, (user, final.status, final.reason)
            alice.ack_failure(leg, final)
    statuses = sorted((r["status"], r["sip_result_code"]) for r in await world.calls())
    assert statuses == [("failed", 404), ("failed", 480)]


@pytest.mark.parametrize(
    ("error", "answer"),
    [
        # Without Retry-After the caller would have to take it as a 500 (RFC 3261 §21.5.4).
        (OperationalError("SELECT", {}, ConnectionRefusedError("the database is down")), (503, "5")),
        (IntegrityError("INSERT", {}, Exception("a constraint our code broke")), (500, None)),  # a fault of ours
    ],
)
async def test_a_call_the_store_cannot_serve_gets_503_with_retry_after_and_a_store_fault_500(
    world: World, monkeypatch: pytest.MonkeyPatch, error: Exception, answer: tuple[int, str | None]
):
    a, b = await world.project.create(), await world.project.create()

    def fail(*args: object) -> None:
        raise error

    monkeypatch.setattr(engine, "find_callee", fail)
    async with world.ua(a) as alice:
        leg = await alice.invite(b["username"])
        final = await alice.response(leg.call_id)
        assert (final.status, final.headers.get("Retry-After")) == answer
        alice.ack_failure(leg, final)


async def test_nobody_answering_ends_in_480_after_the_ring_timeout(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller = await alice.invite(b["username"])
        callee = await bob.incoming()
        bob.answer(callee, 180, "Ringing", body="")
        cancelled = await bob.request("CANCEL", call_id=callee.call_id, timeout=10)  # the 3 s ring timeout
        bob.send(bob.reply(cancelled, 200, "OK"))
        assert callee.invite is not None
        bob.send(bob.reply(callee.invite, 487, "Request Terminated", tag=callee.local_tag))
        final = await alice.response(caller.call_id, timeout=10)
        assert final.status == 480
        alice.ack_failure(caller, final)
    records = {r["direction"]: r for r in await world.calls()}
    assert records["inbound"]["status"] == records["outbound"]["status"] == "no-answer"


async def test_every_device_rings_and_the_first_to_answer_gets_the_call(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as desk, world.ua(b) as mobile:
        await desk.register()
        await mobile.register()
        caller = await alice.invite(b["username"])
        at_desk, on_mobile = await desk.incoming(), await mobile.incoming()
        assert at_desk.call_id != on_mobile.call_id
        desk.answer(at_desk, 180, "Ringing", body="")
        mobile.answer(on_mobile, 180, "Ringing", body="")
        mobile.answer(on_mobile)
        ok = await alice.response(caller.call_id)
        assert ok.status == 200
        alice.established(caller, ok)
        alice.ack(caller)
        await mobile.request("ACK", call_id=on_mobile.call_id)
        cancelled = await desk.request("CANCEL", call_id=at_desk.call_id)  # the other one stops ringing
        desk.send(desk.reply(cancelled, 200, "OK"))
        assert at_desk.invite is not None
        desk.send(desk.reply(at_desk.invite, 487, "Request Terminated", tag=at_desk.local_tag))
        assert (await desk.request("ACK", call_id=at_desk.call_id)).method == "ACK"
        alice.in_dialog(caller, "BYE")
        bye = await mobile.request("BYE", call_id=on_mobile.call_id)
        mobile.send(mobile.reply(bye, 200, "OK"))
    legs = sorted(r["status"] for r in await world.calls() if r["direction"] == "outbound")
    assert legs == ["canceled", "completed"]


async def test_when_two_devices_answer_at_once_the_second_is_acknowledged_and_hung_up(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as desk, world.ua(b) as mobile:
        await desk.register()
        await mobile.register()
        caller = await alice.invite(b["username"])
        at_desk, on_mobile = await desk.incoming(), await mobile.incoming()
        desk.answer(at_desk)
        mobile.answer(on_mobile)
        ok = await alice.response(caller.call_id)
        alice.established(caller, ok)
        alice.ack(caller)
        # One of them won; the other gets an ACK for its 200, then a BYE.
        first = await asyncio.wait_for(
            asyncio.gather(
                desk.request("ACK", call_id=at_desk.call_id), mobile.request("ACK", call_id=on_mobile.call_id)
            ),
            5,
        )
        assert all(ack.method == "ACK" for ack in first)
        byes = []
        for ua, leg in ((desk, at_desk), (mobile, on_mobile)):
            with contextlib.suppress(TimeoutError):
                byes.append((ua, await ua.request("BYE", call_id=leg.call_id, timeout=1)))
        assert len(byes) == 1  # only the loser is hung up
        ua, bye = byes[0]
        ua.send(ua.reply(bye, 200, "OK"))
        alice.in_dialog(caller, "BYE")
        assert (await alice.response(caller.call_id, method="BYE")).status == 200


async def test_a_wrong_password_never_rings_anyone(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        leg = await alice.invite(b["username"], password="not-the-password")
        final = await alice.response(leg.call_id)
        assert final.status == 407  # challenged again
        with pytest.raises(TimeoutError):
            await bob.request("INVITE", timeout=0.5)
    assert await world.calls() == []


async def test_an_endpoint_with_an_unsupported_call_handler_is_refused_with_a_warning(world: World):
    a = await world.project.create(call_handler="dialogflow", call_dialogflow_agent_id="agent-1")
    b = await world.project.create()
    async with world.ua(a) as alice:
        leg = await alice.invite(b["username"])
        final = await alice.response(leg.call_id)
        assert final.status == 501
        assert "dialogflow" in (final.headers.get("Warning") or "")
        alice.ack_failure(leg, final)
    [record] = await world.calls()
    assert (record["status"], record["sip_result_code"]) == ("failed", 501)


async def test_hold_by_re_invite_and_dtmf_by_info_pass_across_in_both_directions(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller, callee, _ = await _answered_call(world, alice, bob)
        # The callee puts the call on hold: a re-INVITE with sendonly SDP reaches the caller.
        hold = ANSWER.replace("a=sendrecv", "a=sendonly").replace("o=bob 1 1", "o=bob 1 2")
        bob.in_dialog(callee, "INVITE", body=hold)
        reinvite = await alice.request("INVITE", call_id=caller.call_id)
        assert b"a=sendonly" in reinvite.body
        alice.send(alice.reply(reinvite, 200, "OK", body=OFFER.replace("a=sendrecv", "a=recvonly")))
        ok = await bob.response(callee.call_id)
        assert ok.status == 200 and b"a=recvonly" in ok.body
        bob.ack(callee)
        assert (await alice.request("ACK", call_id=caller.call_id)).method == "ACK"
        # DTMF from the caller as INFO, passed across with its body.
        alice.in_dialog(caller, "INFO", body="Signal=5\r\nDuration=160\r\n", content_type="application/dtmf-relay")
        info = await bob.request("INFO", call_id=callee.call_id)
        assert info.body == b"Signal=5\r\nDuration=160\r\n"
        assert info.headers.get("Content-Type") == "application/dtmf-relay"
        bob.send(bob.reply(info, 200, "OK"))
        assert (await alice.response(caller.call_id, method="INFO")).status == 200
        # In-dialog OPTIONS and UPDATE too.
        alice.in_dialog(caller, "OPTIONS")
        options = await bob.request("OPTIONS", call_id=callee.call_id)
        bob.send(bob.reply(options, 200, "OK"))
        assert (await alice.response(caller.call_id, method="OPTIONS")).status == 200
        bob.in_dialog(callee, "UPDATE", body=ANSWER.replace("o=bob 1 1", "o=bob 1 3"))
        update = await alice.request("UPDATE", call_id=caller.call_id)
        alice.send(alice.reply(update, 200, "OK", body=OFFER))
        assert (await bob.response(callee.call_id, method="UPDATE")).status == 200
        alice.in_dialog(caller, "BYE")
        bye = await bob.request("BYE", call_id=callee.call_id)
        bob.send(bob.reply(bye, 200, "OK"))


async def test_requests_for_unknown_dialogs_get_481_and_loops_482_and_exhausted_hops_483(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice:
        ghost = Leg("no-such-call", "t1", f"<{alice.aor}>", f"<sip:{b['username']}@{world.domain}>", "t2",
                    f"sip:{b['username']}@{world.domain}")  # fmt: skip
        alice.in_dialog(ghost, "BYE")
        assert (await alice.response("no-such-call", method="BYE")).status == 481
        for headers, expected in (
            (["Max-Forwards: 0"], 483),
            ([f"Via: SIP/2.0/UDP 127.0.0.1:9;branch={world.server.service.local.branch_prefix}x"], 482),
        ):
            text = alice.build(
                "INVITE", f"sip:{b['username']}@{world.domain}", call_id=f"loop-{expected}",
                from_=f"<{alice.aor}>;tag=1", to=f"<sip:{b['username']}@{world.domain}>", cseq=1, body=OFFER,
            )  # fmt: skip
            if expected == 483:
                text = text.replace("Max-Forwards: 70", "Max-Forwards: 0")
            else:
                text = text.replace("Max-Forwards: 70", f"{headers[0]}\r\nMax-Forwards: 70")
            alice.send(text)
            final = await alice.response(f"loop-{expected}")
            assert final.status == expected


async def test_the_offer_keeps_only_codecs_both_endpoints_allow_and_nothing_in_common_is_488(world: World):
    a = await world.project.create(codecs=["PCMA", "PCMU", "OPUS"])
    b = await world.project.create(codecs=["PCMU"])
    c = await world.project.create(codecs=["G722"])
    async with world.ua(a) as alice, world.ua(b) as bob, world.ua(c) as carol:
        await bob.register()
        await carol.register()
        caller = await alice.invite(b["username"])
        callee = await bob.incoming()
        body = callee.invite.body.decode()  # type: ignore[union-attr]
        assert "m=audio 40000 RTP/AVP 0 101" in body  # PCMA and G722 filtered out, telephone-event kept
        assert "PCMA" not in body and "G722" not in body
        bob.answer(callee, 486, "Busy Here")
        final = await alice.response(caller.call_id)
        alice.ack_failure(caller, final)
        leg = await alice.invite(c["username"])  # carol allows G722 only, alice does not
        final = await alice.response(leg.call_id)
        assert final.status == 488
        assert "no codec in common" in (final.headers.get("Warning") or "")
        alice.ack_failure(leg, final)
        with pytest.raises(TimeoutError):
            await carol.request("INVITE", timeout=0.3)


async def test_srtp_rules_follow_each_endpoints_encryption(world: World):
    plain = await world.project.create()
    secure = await world.project.create(encryption="required", ciphers=["AES_CM_128_HMAC_SHA1_80"])
    async with world.ua(plain) as alice, world.ua(secure, "tls") as bob, world.ua(secure) as bob_on_udp:
        assert (await bob.register()).status == 200
        # An endpoint that requires encryption may not place calls over UDP...
        leg = await bob_on_udp.invite(plain["username"], body=SRTP_OFFER)
        final = await bob_on_udp.response(leg.call_id)
        assert final.status == 403 and "Encryption" in final.reason
        bob_on_udp.ack_failure(leg, final)
        # ...nor over TLS with a plain RTP offer,
        leg = await bob.invite(plain["username"])
        final = await bob.response(leg.call_id)
        assert final.status == 488 and "SRTP" in (final.headers.get("Warning") or "")
        bob.ack_failure(leg, final)
        # and a plain RTP offer toward it is refused before anything rings.
        leg = await alice.invite(secure["username"])
        final = await alice.response(leg.call_id)
        assert final.status == 488 and "SRTP" in (final.headers.get("Warning") or "")
        alice.ack_failure(leg, final)
        # An SRTP offer reaches it with only the suites it allows.
        leg = await alice.invite(secure["username"], body=SRTP_OFFER)
        callee = await bob.incoming()
        offered = callee.invite.body.decode()  # type: ignore[union-attr]
        assert "RTP/SAVP" in offered and "AES_CM_128_HMAC_SHA1_80" in offered
        assert "AES_CM_128_HMAC_SHA1_32" not in offered
        bob.answer(callee, 486, "Busy Here")
        final = await alice.response(leg.call_id)
        assert final.status == 486
        alice.ack_failure(leg, final)


async def test_calls_work_over_tcp_and_tls_in_any_combination(world: World):
    a, b = await world.project.create(), await world.project.create()
    for caller_transport, callee_transport in (("tcp", "tls"), ("tls", "udp"), ("udp", "tcp")):
        async with world.ua(a, caller_transport) as alice, world.ua(b, callee_transport) as bob:
            assert (await bob.register()).status == 200
            caller, callee, _ = await _answered_call(world, alice, bob)
            invite = callee.invite
            assert invite is not None and invite.uri.endswith(f"transport={callee_transport}")
            assert f"SIP/2.0/{callee_transport.upper()} " in invite.headers.get("Via")
            bob.in_dialog(callee, "BYE")
            assert (await bob.next(status=200, call_id=callee.call_id)).status == 200
            bye = await alice.request("BYE", call_id=caller.call_id)
            alice.send(alice.reply(bye, 200, "OK"))
            assert (await bob.register(expires=0)).status == 200


async def test_a_device_whose_connection_is_gone_is_skipped(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice:
        async with world.ua(b, "tcp") as gone:
            assert (await gone.register()).status == 200
        leg = await alice.invite(b["username"])  # its only binding's flow is closed: nothing to ring
        final = await alice.response(leg.call_id)
        assert final.status == 480
        alice.ack_failure(leg, final)


async def test_the_longest_call_is_ended_on_both_sides(world: World, runtime: Runtime, tmp_path: Path):
    a, b = await world.project.create(), await world.project.create()
    world.server.service.runtime.settings.call_max_duration = 0.5  # type: ignore[misc]
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller, callee, _ = await _answered_call(world, alice, bob)
        bye_caller = await alice.request("BYE", call_id=caller.call_id)
        bye_callee = await bob.request("BYE", call_id=callee.call_id)
        alice.send(alice.reply(bye_caller, 200, "OK"))
        bob.send(bob.reply(bye_callee, 200, "OK"))
    assert {r["status"] for r in await world.calls()} == {"completed"}


async def test_the_callee_sees_send_as_as_the_caller(world: World):
    a = await world.project.create(caller_id="Front Desk", send_as="+15551230000")
    b = await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller = await alice.invite(b["username"])
        callee = await bob.incoming()
        assert callee.invite is not None
        assert callee.invite.headers.get("From").startswith(f'"Front Desk" <sip:+15551230000@{world.domain}>')
        bob.answer(callee, 603, "Decline")
        final = await alice.response(caller.call_id)
        assert final.status == 603
        alice.ack_failure(caller, final)


async def test_a_call_placed_on_one_node_reaches_a_device_connected_to_another(
    world: World, runtime: Runtime, tmp_path: Path
):
    """Two nodes on one store: the callee's TCP connection is held by node B, the caller talks to
    node A; B relays A's requests over the connection, and the callee's back to A."""
    other = SipServer(runtime_on_free_ports(runtime, tmp_path / "b"))
    other.service.domains.ttl = 0
    await other.start()
    try:
        a, b = await world.project.create(), await world.project.create()
        node_b = World(other, world.project, world.domain)
        async with world.ua(a) as alice, node_b.ua(b, "tcp") as bob:
            assert (await bob.register()).status == 200
            caller, callee, _ = await _answered_call(world, alice, bob)
            assert callee.invite is not None
            # The callee sees node B on the dialog's path, twice (toward it, toward the nodes).
            record_routes = callee.invite.headers.get_all("Record-Route")
            assert len(record_routes) == 2 and f":{other.ports['tcp']};transport=tcp" in record_routes[0]
            # The callee's BYE follows its route set: over its connection to B, on to A, to the caller.
            assert callee.route_set == record_routes
            bob.in_dialog(callee, "BYE")
            bye = await alice.request("BYE", call_id=caller.call_id)
            alice.send(alice.reply(bye, 200, "OK"))
            assert (await bob.next(status=200, call_id=callee.call_id)).status == 200
        assert {r["status"] for r in await world.calls()} == {"completed"}
    finally:
        await other.stop()


async def test_a_cancel_crossing_the_answer_leaves_a_call_that_the_caller_then_ends(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller = await alice.invite(b["username"])
        callee = await bob.incoming()
        bob.answer(callee)  # the answer and the CANCEL cross
        alice.cancel(caller)
        final = await alice.response(caller.call_id)
        assert (await alice.response(caller.call_id, method="CANCEL")).status == 200
        if final.status == 200:  # answered first: the CANCEL changed nothing (RFC 3261 §9.2)
            alice.established(caller, final)
            alice.ack(caller)
            await bob.request("ACK", call_id=callee.call_id)
            alice.in_dialog(caller, "BYE")
            bye = await bob.request("BYE", call_id=callee.call_id)
            bob.send(bob.reply(bye, 200, "OK"))
            assert (await alice.response(caller.call_id, method="BYE")).status == 200
        else:  # cancelled first: the callee's answer is acknowledged and hung up
            assert final.status == 487
            alice.ack_failure(caller, final)
            await bob.request("ACK", call_id=callee.call_id)
            bye = await bob.request("BYE", call_id=callee.call_id)
            bob.send(bob.reply(bye, 200, "OK"))


async def test_a_bye_from_the_caller_while_ringing_ends_the_attempt(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller = await alice.invite(b["username"])
        callee = await bob.incoming()
        bob.answer(callee, 180, "Ringing", body="")
        ringing = await alice.response(caller.call_id, final=False)
        alice.established(caller, ringing)  # the early dialog
        alice.in_dialog(caller, "BYE")
        assert (await alice.response(caller.call_id, method="BYE")).status == 200
        assert (await alice.response(caller.call_id)).status == 487
        cancelled = await bob.request("CANCEL", call_id=callee.call_id)
        bob.send(bob.reply(cancelled, 200, "OK"))


async def test_offers_crossing_in_both_directions_get_491_and_an_unacceptable_one_488(world: World):
    a = await world.project.create(codecs=["PCMU"])
    b = await world.project.create(codecs=["PCMU"])
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller, callee, _ = await _answered_call(world, alice, bob)
        bob.in_dialog(callee, "INVITE", body=ANSWER.replace("o=bob 1 1", "o=bob 1 2"))
        reinvite = await alice.request("INVITE", call_id=caller.call_id)
        alice.in_dialog(caller, "INVITE", body=OFFER)  # glare: both offer at once
        assert (await alice.response(caller.call_id)).status == 491
        alice.send(alice.reply(reinvite, 200, "OK", body=OFFER))
        assert (await bob.response(callee.call_id)).status == 200
        bob.ack(callee)
        await alice.request("ACK", call_id=caller.call_id)
        # An offer with nothing the other side allows is refused here, and never reaches it.
        g722_only = ANSWER.replace("RTP/AVP 0 101", "RTP/AVP 9").replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:9 G722/8000")
        bob.in_dialog(callee, "INVITE", body=g722_only)
        refused = await bob.response(callee.call_id)
        assert refused.status == 488
        bob.ack_failure(callee, refused)
        alice.in_dialog(caller, "BYE")
        bye = await bob.request("BYE", call_id=callee.call_id)
        bob.send(bob.reply(bye, 200, "OK"))
        assert (await alice.response(caller.call_id, method="BYE")).status == 200


async def test_unreadable_offers_and_invites_without_contact_are_refused(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice:
        for body, content_type, expected in (
            ("v=0\r\nm=audio lots RTP/AVP 0\r\n", "application/sdp", 400),
            ("hello", "text/plain", 415),
        ):
            leg = await alice.invite(b["username"], body=body, content_type=content_type)
            final = await alice.response(leg.call_id)
            assert final.status == expected, (body, final.status, final.reason)
            alice.ack_failure(leg, final)
        text = alice.build(
            "INVITE", f"sip:{b['username']}@{world.domain}", call_id="no-contact", from_=f"<{alice.aor}>;tag=1",
            to=f"<sip:{b['username']}@{world.domain}>", cseq=1, body=OFFER,
        ).replace(f"Contact: {alice.contact}\r\n", "")  # fmt: skip
        alice.send(text)
        challenged = await alice.response("no-contact")
        assert challenged.status in (400, 407)


async def test_a_retransmitted_invite_is_one_call(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller = await alice.invite(b["username"])
        assert caller.invite is not None
        alice.send(serialize(caller.invite))  # the same INVITE again, as a UDP phone retransmits
        callee = await bob.incoming()
        with pytest.raises(TimeoutError):
            await bob.request("INVITE", timeout=0.3)
        bob.answer(callee, 486, "Busy Here")
        final = await alice.response(caller.call_id)
        assert final.status == 486
        alice.ack_failure(caller, final)


async def test_a_call_that_is_over_is_let_go_while_late_copies_of_its_messages_are_still_handled(world: World):
    a, b = await world.project.create(), await world.project.create()
    engine = world.server.service.calls
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller, callee, _ = await answered_call(alice, bob)
        (call,) = engine.calls
        (life,) = engine._lives
        gone = weakref.ref(call)
        del call
        alice.in_dialog(caller, "BYE")
        assert (await alice.response(caller.call_id, method="BYE")).status == 200
        first_bye = await bob.request("BYE", call_id=callee.call_id)
        bob.send(bob.reply(first_bye, 200, "OK"))
        await asyncio.wait_for(life, 5)
        # Its INVITE transactions live on for 32 s (Timers L and M), but hold none of the call:
        # thousands of finished calls kept whole made the collector's full passes stall everything.
        gc.collect()
        assert gone() is None
        # What they still owe: the caller's INVITE, sent again, starts nothing...
        assert caller.invite is not None
        alice.send(serialize(caller.invite))
        # ...the callee's 200, sent again as if our ACK was lost, gets the ACK again...
        bob.answer(callee)
        assert (await bob.request("ACK", call_id=callee.call_id)).headers.get("To").endswith(callee.local_tag)
        # ...and a 200 of another fork, a dialog nobody wants, is acknowledged and hung up.
        assert callee.invite is not None
        bob.send(bob.reply(callee.invite, 200, "OK", tag="late-fork", body=ANSWER))
        assert (await bob.request("ACK", call_id=callee.call_id)).headers.get("To").endswith("tag=late-fork")
        bye = await bob.request("BYE", call_id=callee.call_id)
        while bye.headers.get("Via") == first_bye.headers.get("Via"):
            # The first BYE sent again (Timer E): the loop was busy past T1 (the collection above,
            # on a loaded machine) before it read our 200. A phone answers a copy again.
            bob.send(bob.reply(bye, 200, "OK"))
            bye = await bob.request("BYE", call_id=callee.call_id)
        assert bye.headers.get("To").endswith("tag=late-fork")
        bob.send(bob.reply(bye, 200, "OK"))
        with pytest.raises(TimeoutError):
            await bob.request("INVITE", timeout=0.3)
        with pytest.raises(TimeoutError):
            await alice.response(caller.call_id, timeout=0.1)
    assert len(await world.calls()) == 2  # the caller's leg and the callee's: nothing new


async def test_an_answer_never_acknowledged_ends_the_call_on_both_legs(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller = await alice.invite(b["username"])
        callee = await bob.incoming()
        bob.answer(callee)
        ok = await alice.response(caller.call_id)
        assert ok.status == 200
        # No ACK from the caller: 64*T1 later its INVITE transaction reports NoAck (the transaction
        # tests prove that timer); the call must then end on both legs.
        [call] = world.server.service.calls.calls
        call.on_caller_transaction(NoAck())
        bye = await bob.request("BYE", call_id=callee.call_id)  # acknowledged first, then hung up
        bob.send(bob.reply(bye, 200, "OK"))
        bye = await alice.request("BYE", call_id=caller.call_id)
        alice.send(alice.reply(bye, 200, "OK"))
    [inbound] = [r for r in await world.calls() if r["direction"] == "inbound"]
    assert inbound["status"] == "completed"


async def test_a_dialog_the_other_side_no_longer_knows_ends_the_call(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        await bob.register()
        caller, callee, _ = await _answered_call(world, alice, bob)
        alice.in_dialog(caller, "INFO", body="Signal=1\r\n", content_type="application/dtmf-relay")
        info = await bob.request("INFO", call_id=callee.call_id)
        bob.send(bob.reply(info, 481, "Call/Transaction Does Not Exist"))  # bob forgot the call
        assert (await alice.response(caller.call_id, method="INFO")).status == 481
        bye = await alice.request("BYE", call_id=caller.call_id)
        alice.send(alice.reply(bye, 200, "OK"))
        bye = await bob.request("BYE", call_id=callee.call_id)
        bob.send(bob.reply(bye, 481, "Call/Transaction Does Not Exist"))


def test_record_writes_are_merged_per_record_in_order():
    from sipline.sipserver.calls.records import merged

    batch = [
        ("create", "CA1", {"sid": "CA1", "status": "queued"}),
        ("update", "CA2", {"status": "ringing"}),
        ("update", "CA1", {"status": "ringing"}),
        ("update", "CA2", {"status": "completed", "end_time": 5.0}),
        ("update", "CA1", {"status": "in-progress", "answered_time": 2.0}),
    ]
    assert merged(batch) == [
        ("create", "CA1", {"sid": "CA1", "status": "in-progress", "answered_time": 2.0}),
        ("update", "CA2", {"status": "completed", "end_time": 5.0}),
    ]


async def test_a_record_the_store_refuses_is_dropped_alone_and_the_others_are_written(runtime: Runtime, caplog):
    # A fault of ours (here: a record created twice) fails the same way every time: retried, it
    # would hold back every record queued after it, for ever.
    from sipline.sipserver.calls.records import CallRecords, new_record
    from sipline.store import calls as call_store
    from sipline.store import projects

    project = await runtime.db.write(projects.create, "records")
    records = CallRecords(runtime.db)
    records.create(new_record("CA1", project["id"], "inbound", "node"))
    await asyncio.wait_for(records.flush(), 10)
    records.create(new_record("CA1", project["id"], "inbound", "node"))  # the same sid again: refused
    records.create(new_record("CA2", project["id"], "inbound", "node"))
    await asyncio.wait_for(records.flush(), 10)
    records.update("CA2", status="completed")  # and the writer goes on
    await asyncio.wait_for(records.flush(), 10)
    await records.close()
    assert (await runtime.db.read(call_store.get, project["id"], "CA2"))["status"] == "completed"
    assert "the create of CA1 could not be written, dropped" in caplog.text


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_calls_that_are_up_do_not_count_as_load_and_new_requests_keep_being_answered(
    world: World, transport: str
):
    # A transport refuses new work beyond a number of requests being answered (UDP: 1,024 per
    # socket; TCP and TLS: 32 per connection, where it stops reading). A call that rings or is up
    # is not such a request: more calls than that stay up on one connection, and their BYEs and
    # new REGISTERs are still read and answered.
    count = 40  # more than a connection's 32
    if transport == "udp":
        udp = world.server._udp
        assert udp is not None
        udp.max_in_flight = 8  # rather than placing 1,025 calls
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a, transport) as alice, world.ua(b, transport) as bob:
        assert (await bob.register()).status == 200
        up = [await answered_call(alice, bob) for _ in range(count)]
        assert (await bob.register()).status == 200
        for caller, callee, _ in up:
            alice.in_dialog(caller, "BYE")
            assert (await alice.next(status=200, call_id=caller.call_id)).status == 200
            bye = await bob.request("BYE", call_id=callee.call_id)
            bob.send(bob.reply(bye, 200, "OK"))
    assert {r["status"] for r in await world.calls()} == {"completed"}  # its first page


async def test_stopping_the_server_hangs_up_its_calls_over_every_transport(
    runtime: Runtime, tmp_path: Path, sip_client
):
    # The calls end before the connections close: a device on TCP gets its BYE too.
    sip = SipServer(runtime_on_free_ports(runtime, tmp_path))
    sip.service.domains.ttl = 0
    await sip.start()
    stopping: asyncio.Task[None] | None = None
    try:
        project = await new_project(runtime, sip_client)
        domain = (await project.request("GET", "/sip_profile")).json()["domain"]
        world = World(sip, project, domain)
        a, b = await project.create(), await project.create()
        async with world.ua(a, "udp") as alice, world.ua(b, "tcp") as bob:
            assert (await bob.register()).status == 200
            caller, callee, _ = await answered_call(alice, bob)
            stopping = asyncio.create_task(sip.stop())
            bye_caller = await alice.request("BYE", call_id=caller.call_id)
            bye_callee = await bob.request("BYE", call_id=callee.call_id)
            alice.send(alice.reply(bye_caller, 200, "OK"))
            bob.send(bob.reply(bye_callee, 200, "OK"))
            await stopping
    finally:
        if stopping is None:
            await sip.stop()
