"""Call handlers through a real SipServer: an endpoint's calls run its LaML webhooks or SWML script,
fetched from a real HTTP server on loopback, with devices played by scripted user agents."""

from __future__ import annotations

import json
import secrets

import pytest
from twilio.request_validator import RequestValidator

from sipline.store import projects
from tests.sip_server.ua import UA, header_params
from tests.sip_server.world import World
from tests.webhooks.http_server import WebhookServer


@pytest.fixture
def web():
    with WebhookServer() as running:
        yield running


def laml(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


async def _laml_caller(world: World, web: WebhookServer, **fields) -> dict:
    return await world.project.create(
        call_handler="laml_webhooks", call_request_url=web.url("/voice"), call_request_method="POST", **fields
    )


async def _finish(alice: UA, leg) -> int:
    final = await alice.response(leg.call_id, timeout=10)
    if final.status >= 300:
        alice.ack_failure(leg, final)
    return final.status


async def test_laml_request_is_signed_and_dials_an_endpoint_by_sip_uri(world: World, web: WebhookServer, runtime):
    bob = await world.project.create()
    web.respond("/voice", body=laml(f'<Dial timeout="10"><Sip>sip:{bob["username"]}@{world.domain}</Sip></Dial>'))
    alice = await _laml_caller(world, web)
    async with world.ua(alice) as a, world.ua(bob) as b:
        await b.register()
        leg = await a.invite("whoever-the-app-decides", headers=["X-Account: 42"])
        assert (await a.response(leg.call_id, final=False)).status == 180  # ringing while fetched
        callee = await b.incoming()
        b.answer(callee)
        ok = await a.response(leg.call_id)
        assert ok.status == 200
        a.established(leg, ok)
        a.ack(leg)
        await b.request("ACK", call_id=callee.call_id)
        a.in_dialog(leg, "BYE")
        bye = await b.request("BYE", call_id=callee.call_id)
        b.send(b.reply(bye, 200, "OK"))
        assert (await a.response(leg.call_id, method="BYE")).status == 200
    [request] = web.requests_to("/voice")
    form = request.form
    assert form["AccountSid"] == world.project.id and form["ApiVersion"] == "2010-04-01"
    assert form["CallStatus"] == "ringing" and form["Direction"] == "inbound"
    assert form["From"] == f"sip:{alice['username']}@{world.domain}"
    assert form["To"] == f"sip:whoever-the-app-decides@{world.domain}"
    assert form["SipDomain"] == world.domain and form["SipUsername"] == alice["username"]
    assert form["SipHeader_X-Account"] == "42" and form["SipSourceIp"] == "127.0.0.1"
    assert form["CallSid"].startswith("CA") and form["SipCallId"] == leg.call_id
    project = await runtime.db.read(projects.get, world.project.id)
    validator = RequestValidator(project["signing_key"])
    assert validator.validate(request.url, form, request.headers["x-twilio-signature"])
    assert request.headers["user-agent"].startswith("sipline/")
    records = {r["direction"]: r for r in await world.calls()}
    assert records["inbound"]["status"] == records["outbound"]["status"] == "completed"


async def test_dial_action_gets_the_outcome_and_its_document_goes_on(world: World, web: WebhookServer):
    bob = await world.project.create()
    web.respond("/voice", body=laml(f'<Dial action="/after"><Sip>sip:{bob["username"]}@{world.domain}</Sip></Dial>'))
    web.respond("/after", body=laml('<Reject reason="busy"/>'))
    alice = await _laml_caller(world, web)
    async with world.ua(alice) as a, world.ua(bob) as b:
        await b.register()
        leg = await a.invite("anyone")
        callee = await b.incoming()
        b.answer(callee, 486, "Busy Here", headers=["X-Why: in a meeting"])
        await b.request("ACK", call_id=callee.call_id)
        assert await _finish(a, leg) == 486
    [after] = web.requests_to("/after")
    form = after.form
    assert (form["DialCallStatus"], form["DialSipResponseCode"], form["DialCallDuration"]) == ("busy", "486", "0")
    assert form["DialSipCallId"] == callee.call_id and form["DialCallSid"].startswith("CA")
    assert form["DialSipHeader_X-Why"] == "in a meeting"
    [inbound] = [r for r in await world.calls() if r["direction"] == "inbound"]
    assert inbound["status"] == "busy"


async def test_a_number_rings_the_endpoint_of_that_user_name_and_the_end_says_no_answer(
    world: World, web: WebhookServer
):
    desk = await world.project.create(username="+15551230000")
    web.respond("/voice", body=laml('<Dial timeout="5"><Number>+1 (555) 123-0000</Number></Dial>'))
    alice = await _laml_caller(world, web)
    async with world.ua(alice) as a, world.ua(desk) as d:
        await d.register()
        leg = await a.invite("x")
        callee = await d.incoming()
        d.answer(callee, 180, "Ringing", body="")
        cancel = await d.request("CANCEL", call_id=callee.call_id, timeout=10)
        d.send(d.reply(cancel, 200, "OK"))
        assert callee.invite is not None
        d.send(d.reply(callee.invite, 487, "Request Terminated", tag=callee.local_tag))
        assert await _finish(a, leg) == 480  # the document ends after a Dial nobody answered


async def test_redirect_loops_are_bounded_and_end_in_a_sip_error_the_record_explains(world: World, web: WebhookServer):
    web.respond("/voice", body=laml('<Redirect method="POST">/voice</Redirect>'))
    alice = await _laml_caller(world, web)
    async with world.ua(alice) as a:
        leg = await a.invite("x")
        assert await _finish(a, leg) == 500
    assert 2 < len(web.requests_to("/voice")) <= 12
    [record] = await world.calls()
    assert record["status"] == "failed" and record["sip_result_code"] == 500


@pytest.mark.parametrize(
    ("scripted", "code"),
    [
        ({"status": 500, "body": "oops"}, "11200"),
        ({"body": "<Response><Say>hello</Say></Response>"}, "12100"),
        ({"body": "this is not XML at all"}, "12100"),
        ({"body": laml("<Dial/>"), "delay": 1.0}, "11200"),  # slower than the #rt=200 read timeout
    ],
)
async def test_a_document_that_cannot_be_fetched_or_run_goes_to_the_fallback(
    world: World, web: WebhookServer, scripted: dict, code: str
):
    bob = await world.project.create()
    web.respond("/voice", **scripted)
    web.respond("/fallback", body=laml(f"<Dial><Sip>sip:{bob['username']}@{world.domain}</Sip></Dial>"))
    alice = await world.project.create(
        call_handler="laml_webhooks",
        call_request_url=web.url("/voice") + "#rt=200",
        call_fallback_url=web.url("/fallback"),
    )
    async with world.ua(alice) as a, world.ua(bob) as b:
        await b.register()
        leg = await a.invite("x")
        callee = await b.incoming(timeout=10)
        b.answer(callee, 603, "Decline")
        await b.request("ACK", call_id=callee.call_id)
        assert await _finish(a, leg) == 603
    [fallback] = web.requests_to("/fallback")
    assert fallback.form["ErrorCode"] == code
    assert fallback.form["ErrorUrl"] == web.url("/voice")


async def test_when_the_fallback_fails_too_the_caller_gets_a_sip_error(world: World, web: WebhookServer):
    web.respond("/voice", status=503)
    web.respond("/fallback", body="garbage")
    alice = await world.project.create(
        call_handler="laml_webhooks", call_request_url=web.url("/voice"), call_fallback_url=web.url("/fallback")
    )
    async with world.ua(alice) as a:
        leg = await a.invite("x")
        final = await a.response(leg.call_id, timeout=10)
        assert final.status == 500 and "12100" in (final.headers.get("Warning") or "")
        a.ack_failure(leg, final)
    [record] = await world.calls()
    assert (record["status"], record["sip_result_code"]) == ("failed", 500)


async def test_status_callbacks_report_the_callers_leg_and_the_dialled_ones(world: World, web: WebhookServer):
    bob = await world.project.create()
    web.respond("/voice", body=laml(
        f'<Dial><Sip statusCallback="/leg" statusCallbackEvent="initiated ringing answered completed">'
        f'sip:{bob["username"]}@{world.domain}</Sip></Dial>'
    ))  # fmt: skip
    web.respond("/leg", status=204)
    web.respond("/status", status=204)
    alice = await _laml_caller(world, web, call_status_callback_url=web.url("/status"))
    async with world.ua(alice) as a, world.ua(bob) as b:
        await b.register()
        leg = await a.invite("x")
        callee = await b.incoming()
        b.answer(callee, 180, "Ringing", body="")
        b.answer(callee)
        ok = await a.response(leg.call_id)
        a.established(leg, ok)
        a.ack(leg)
        await b.request("ACK", call_id=callee.call_id)
        b.in_dialog(callee, "BYE")
        assert (await b.next(status=200, call_id=callee.call_id)).status == 200
        bye = await a.request("BYE", call_id=leg.call_id)
        a.send(a.reply(bye, 200, "OK"))
    [status] = await web.arrived(1, "/status")
    assert status.form["CallStatus"] == "completed" and "CallDuration" in status.form
    assert status.form["Timestamp"] and status.form["SequenceNumber"] == "0"
    legs = sorted(await web.arrived(4, "/leg"), key=lambda r: int(r.form["SequenceNumber"]))
    assert [r.form["CallStatus"] for r in legs] == ["initiated", "ringing", "in-progress", "completed"]
    assert {r.form["ParentCallSid"] for r in legs} == {status.form["CallSid"]}


async def test_a_remote_sip_server_is_dialled_with_the_documents_credentials(world: World, web: WebhookServer):
    # The remote server is a scripted UA of its own; it answers toward sipline's UDP port.
    sipline = ("127.0.0.1", world.server.ports["udp"])
    async with UA("trunk-user", "trunk-secret", "127.0.0.1", sipline) as remote:
        uri = f"sip:ext100@127.0.0.1:{remote.port}"
        web.respond("/voice", body=laml(f'<Dial><Sip username="trunk-user" password="trunk-secret">{uri}</Sip></Dial>'))
        alice = await _laml_caller(world, web)
        async with world.ua(alice) as a:
            leg = await a.invite("x")
            challenged = await remote.incoming()
            nonce = secrets.token_hex(8)
            assert challenged.invite is not None
            remote.send(remote.reply(
                challenged.invite, 401, "Unauthorized", tag="t1",
                headers=[f'WWW-Authenticate: Digest realm="trunk", nonce="{nonce}", qop="auth", algorithm=MD5'],
            ))  # fmt: skip
            await remote.request("ACK", call_id=challenged.call_id)
            again = await remote.incoming()
            assert again.call_id == challenged.call_id
            assert again.invite is not None
            answer = header_params(again.invite.headers.get("Authorization") or "")
            assert (answer["username"], answer["realm"], answer["nonce"]) == ("trunk-user", "trunk", nonce)
            remote.answer(again, 486, "Busy Here")
            await remote.request("ACK", call_id=again.call_id)
            assert await _finish(a, leg) == 486


async def test_swml_connect_is_posted_the_call_as_json_and_rings_in_series(world: World, web: WebhookServer):
    desk, mobile = await world.project.create(), await world.project.create()
    script = {
        "version": "1.0.0",
        "sections": {
            "main": [
                {"connect": {"serial": [
                    {"to": f"sip:{desk['username']}@{world.domain}", "timeout": 5},
                    {"to": f"sip:{mobile['username']}@{world.domain}"},
                ]}},
                {"hangup": {"reason": "busy"}},
            ]
        },
    }  # fmt: skip
    web.respond("/swml", body=json.dumps(script), content_type="application/json")
    alice = await world.project.create(call_handler="relay_script", call_relay_script_url=web.url("/swml"))
    async with world.ua(alice) as a, world.ua(desk) as d, world.ua(mobile) as m:
        await d.register()
        await m.register()
        leg = await a.invite("x")
        first = await d.incoming()
        d.answer(first, 486, "Busy Here")
        await d.request("ACK", call_id=first.call_id)
        second = await m.incoming()  # then the next one
        m.answer(second, 486, "Busy Here")
        await m.request("ACK", call_id=second.call_id)
        assert await _finish(a, leg) == 486  # hangup reason busy
    [request] = web.requests_to("/swml")
    body = request.json
    assert body["call"]["from"] == f"sip:{alice['username']}@{world.domain}"
    assert body["call"]["type"] == "sip" and body["call"]["project_id"] == world.project.id
    assert "vars" in body and "params" in body


async def test_swml_call_state_url_gets_signalwires_call_state_events(world: World, web: WebhookServer):
    bob = await world.project.create()
    script = (
        "version: 1.0.0\n"
        "sections:\n"
        "  main:\n"
        "    - connect:\n"
        f"        to: sip:{bob['username']}@{world.domain}\n"
        f"        call_state_url: {web.url('/state')}\n"
        "        call_state_events: [created, ringing, answered, ended]\n"
    )
    web.respond("/swml", body=script, content_type="application/yaml")
    web.respond("/state", status=200)
    alice = await world.project.create(call_handler="relay_script", call_relay_script_url=web.url("/swml"))
    async with world.ua(alice) as a, world.ua(bob) as b:
        await b.register()
        leg = await a.invite("x")
        callee = await b.incoming()
        b.answer(callee, 180, "Ringing", body="")
        b.answer(callee, 486, "Busy Here")
        await b.request("ACK", call_id=callee.call_id)
        assert await _finish(a, leg) == 486
    events = await web.arrived(3, "/state")
    # Sent concurrently, they may arrive in any order: each says when it happened.
    states = [e.json["params"]["call_state"] for e in sorted(events, key=lambda e: e.json["timestamp"])]
    assert states == ["created", "ringing", "ended"]
    assert all(e.json["event_type"] == "calling.call.state" for e in events)
    [ended] = [e for e in events if e.json["params"]["call_state"] == "ended"]
    assert ended.json["params"]["end_reason"] == "busy"


async def test_dial_attributes_shape_the_call_and_the_document_goes_on_after_the_time_limit(
    world: World, web: WebhookServer
):
    bob = await world.project.create()
    web.respond("/voice", body=laml(
        f'<Dial callerId="+15550001111" callerName="Front Desk" timeLimit="1">'
        f'<Sip>sip:{bob["username"]}@{world.domain}?X-Ticket=T%2D42</Sip></Dial>'
        '<Pause length="1"/><Hangup/>'
    ))  # fmt: skip
    alice = await _laml_caller(world, web)
    async with world.ua(alice) as a, world.ua(bob) as b:
        await b.register()
        leg = await a.invite("x")
        callee = await b.incoming()
        assert callee.invite is not None
        assert callee.invite.headers.get("From").startswith(f'"Front Desk" <sip:+15550001111@{world.domain}>')
        assert callee.invite.headers.get("X-Ticket") == "T-42"
        b.answer(callee)
        ok = await a.response(leg.call_id)
        a.established(leg, ok)
        a.ack(leg)
        await b.request("ACK", call_id=callee.call_id)
        # After 1 s the callee is hung up (timeLimit); the caller stays for the Pause, then <Hangup>.
        bye = await b.request("BYE", call_id=callee.call_id, timeout=5)
        b.send(b.reply(bye, 200, "OK"))
        bye = await a.request("BYE", call_id=leg.call_id, timeout=5)
        a.send(a.reply(bye, 200, "OK"))
        assert bye.headers.get("Call-ID") == leg.call_id
    records = {r["direction"]: r for r in await world.calls()}
    assert records["inbound"]["status"] == records["outbound"]["status"] == "completed"
