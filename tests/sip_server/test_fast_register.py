"""The registrar's fast path (`sipserver.fast_register`) answers as the general path does.

Two services on one store, one with the fast path and one without, are sent the same REGISTERs:
their answers must be the same bytes but for the random To tag and nonce, and the fast one must
have answered without a task (it did take the fast path). What the fast path leaves alone must
still get the general path's answer.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from sipline.runtime import Runtime
from sipline.sip.message import SipResponse, parse_message, serialize
from sipline.sipserver import service as service_module
from sipline.sipserver.service import SipService
from tests.conftest import Project, new_project
from tests.scrape import moved, scrape
from tests.sip_server.conftest import Clock
from tests.sip_server.sip_phone import Phone, RecordingFlow, challenges, exchange

_RANDOM = re.compile(rb'(;tag=|nonce="|branch=|\r\nDate: )[^;"\r]+')


def _normalised(data: bytes) -> bytes:
    return _RANDOM.sub(rb"\1X", data)


async def _pair(
    runtime: Runtime, client: httpx.AsyncClient, clock: Clock
) -> tuple[Project, str, SipService, SipService]:
    """(a new project, its domain, a general service, a fast one that knows the domain already)."""
    project = await new_project(runtime, client)
    domain = (await project.request("GET", "/sip_profile")).json()["domain"]
    general = SipService(runtime, clock=clock, domain_cache_ttl=60)
    general.fast_register = None
    fast = SipService(runtime, clock=clock, domain_cache_ttl=60)
    assert await fast.domains.project(domain, time.monotonic()) is not None
    return project, domain, general, fast


async def _services(runtime: Runtime, client: httpx.AsyncClient, clock: Clock) -> tuple[SipService, SipService, Phone]:
    """(general, fast, a phone of an endpoint speaking to the fast one)."""
    project, domain, general, fast = await _pair(runtime, client, clock)
    endpoint = await project.create()
    return general, fast, Phone(fast, domain, endpoint["username"], "s3cret-pass")


def _register(phone: Phone, *, via: str, display: str = "", extra: tuple[str, ...] = ()) -> bytes:
    lines = [
        f"REGISTER sip:{phone.domain} SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        f"From: {display}<sip:{phone.username}@{phone.domain}>;tag=f1",
        f"To: {display}<sip:{phone.username}@{phone.domain}>",
        "Call-ID: c1@example",
        "CSeq: 7 REGISTER",
        f"Contact: <sip:{phone.username}@127.0.0.1:40000>",
        *extra,
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


SHAPES = {
    "sipp": dict(
        via="SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-1-1-0;rport", extra=("Expires: 3600", "User-Agent: sipp")
    ),
    "rport first": dict(via="SIP/2.0/UDP 127.0.0.1:40000;rport;branch=z9hG4bKa1"),
    "no rport, another host": dict(via="SIP/2.0/UDP 10.9.8.7:5070;branch=z9hG4bKa2", display='"Alice" '),
    "no rport, no port, same host": dict(via="SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa3", extra=("Allow: INVITE, ACK",)),
}


@pytest.mark.parametrize("shape", SHAPES, ids=list(SHAPES))
async def test_a_plain_register_is_challenged_as_the_general_path_challenges_it(runtime, sip_client, clock, shape):
    general, fast, phone = await _services(runtime, sip_client, clock)
    data = _register(phone, **SHAPES[shape])  # type: ignore[arg-type]
    general_flow, fast_flow = RecordingFlow(), RecordingFlow()
    task = general.receive(data, general_flow)
    assert task is not None  # the general path answers in a task
    await task
    assert fast.receive(data, fast_flow) is None  # the fast path, at once
    assert len(fast_flow.sent) == len(general_flow.sent) == 1
    assert _normalised(fast_flow.sent[0]) == _normalised(general_flow.sent[0])
    response = parse_message(fast_flow.sent[0])
    assert isinstance(response, SipResponse) and response.status == 401


async def test_a_copy_of_the_request_gets_the_same_answer_again(runtime, sip_client, clock):
    _, fast, phone = await _services(runtime, sip_client, clock)
    data = _register(phone, via="SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKcopy;rport")
    flow = RecordingFlow()
    assert fast.receive(data, flow) is None
    assert fast.receive(data, flow) is None  # absorbed by what the transaction keeps
    first, again = flow.sent
    assert again == first  # the same tag, the same nonce: not challenged anew


async def test_a_registration_challenged_on_the_fast_path_completes(runtime, sip_client, clock):
    _, _, phone = await _services(runtime, sip_client, clock)  # the phone speaks to the fast one
    before = scrape()
    response = await phone.register()
    assert response.status == 200, response.reason
    assert (response.headers.get("Contact") or "").startswith(f"<{phone.contact_uri}>;expires=")
    after = scrape()
    assert moved(before, after, "sipline_sip_registers_total", outcome="challenged") == 1
    assert moved(before, after, "sipline_sip_registers_total", outcome="registered") == 1
    assert moved(before, after, "sipline_sip_messages_received_total", transport="udp", kind="request") == 2


async def test_what_the_fast_path_leaves_alone_gets_the_general_answer(runtime, sip_client, clock):
    general, fast, phone = await _services(runtime, sip_client, clock)
    via = "SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK{};rport"
    other_domain = _register(phone, via=via.format("d")).replace(
        f"To: <sip:{phone.username}@{phone.domain}>".encode(), f"To: <sip:{phone.username}@example.org>".encode()
    )
    cases = {
        "To domain not the realm": (other_domain, 404),
        "a compact form": (_register(phone, via=via.format("c")).replace(b"\r\nTo:", b"\r\nt:"), 401),
    }
    for name, (data, status) in cases.items():
        answers = []
        for service in (general, fast):
            sent = await exchange(service, data, RecordingFlow())
            assert len(sent) == 1, name
            answers.append(_normalised(sent[0]))
            response = parse_message(sent[0])
            assert isinstance(response, SipResponse) and response.status == status, name
        assert answers[0].split(b"\r\nServer:")[0] == answers[1].split(b"\r\nServer:")[0], name

    # A blocked source is told so, whichever path would have challenged it.
    phone.source = ("127.0.0.12", 40000)
    for _ in range(fast.auth.throttle.policy.limit + 1):
        assert (await phone.register(password="guess")).status == 401
    response = await phone.send(phone.register_bytes())
    assert response.status == 403 and "failed authentications" in response.reason


async def test_a_project_not_yet_known_takes_the_general_path_then_the_fast_one(runtime, sip_client, clock):
    project = await new_project(runtime, sip_client)
    await project.create()
    domain = (await project.request("GET", "/sip_profile")).json()["domain"]
    fast = SipService(runtime, clock=clock, domain_cache_ttl=60)
    phone = Phone(fast, domain, "anyone", "x")
    flow = RecordingFlow()
    task = fast.receive(phone.register_bytes(), flow)
    assert task is not None  # looked the domain up in the store
    await task
    assert fast.receive(phone.register_bytes(), flow) is None  # now known
    assert [challenges(parse_message(sent))[0]["realm"] for sent in flow.sent] == [domain, domain]  # type: ignore[arg-type]


async def test_a_registration_is_read_without_the_general_parser_and_ends_as_on_the_general_path(
    runtime, sip_client, clock, monkeypatch
):
    project, domain, general, fast = await _pair(runtime, sip_client, clock)
    parsed: list[bytes] = []
    parse = service_module.parse_message
    monkeypatch.setattr(service_module, "parse_message", lambda data: parsed.append(data) or parse(data))
    endpoints = [await project.create(), await project.create()]
    phones = [
        Phone(service, domain, endpoint["username"], "s3cret-pass", call_id="same-call-id")
        for service, endpoint in zip((general, fast), endpoints, strict=True)
    ]
    answers, registrations = [], []
    for phone, endpoint in zip(phones, endpoints, strict=True):
        response = await phone.register()
        assert response.status == 200, response.reason
        refreshed = await phone.register()  # the usual case: the same contact again
        assert refreshed.status == 200, refreshed.reason
        answers.append(_normalised(serialize(refreshed)).replace(endpoint["username"].encode(), b"USER"))
        listed = await project.request("GET", f"/endpoints/sip/{endpoint['id']}/registrations")
        [registration] = listed.json()["data"]
        registrations.append(
            {
                key: str(value).replace(endpoint["username"], "USER")
                for key, value in registration.items()
                if key not in ("id", "expires_at", "registered_at")
            }
        )
    assert answers[0] == answers[1]
    assert registrations[0] == registrations[1]
    assert len(parsed) == 4  # the general service's four REGISTERs, and none of the fast one's
