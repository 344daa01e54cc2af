"""SIP metrics move when their events happen: REGISTER outcomes, failed authentications and blocks,
messages in and out, shed requests, live bindings, calls; and no label carries what a client chose."""

from __future__ import annotations

import httpx
from sqlalchemy.exc import OperationalError

from sipline.api.app import create_app
from sipline.runtime import Runtime
from sipline.sip.message import SipResponse, parse_message
from sipline.sipserver.service import SipService
from tests.conftest import new_project
from tests.scrape import Samples, moved, off_vocabulary, parse, scrape, value
from tests.sip_server.conftest import Clock, with_settings
from tests.sip_server.sip_phone import Phone, RecordingFlow, digest_authorization, exchange
from tests.sip_server.world import World, answered_call

REGISTERS = "sipline_sip_registers_total"


async def _phone(runtime: Runtime, client: httpx.AsyncClient, service: SipService, **fields: object) -> Phone:
    project = await new_project(runtime, client)
    endpoint = await project.create(**fields)
    domain = (await project.request("GET", "/sip_profile")).json()["domain"]
    return Phone(service, domain, endpoint["username"], "s3cret-pass")


async def _served(client: httpx.AsyncClient) -> Samples:
    """Through the /metrics route, which adds the live bindings read from the database."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return parse(response.text)


async def test_register_outcomes_are_counted_once_each(runtime, sip_client, service):
    phone = await _phone(runtime, sip_client, service)
    before = scrape()
    assert (await phone.register()).status == 200  # challenged, then registered
    assert (await phone.register()).status == 200  # challenged, then refreshed
    phone.contact = f"sip:{phone.username}@127.0.0.1:40002"
    assert (await phone.register()).status == 200  # challenged, then a second contact: registered
    assert (await phone.register(expires=0, contact="*")).status == 200  # challenged, then unregistered
    assert (await phone.register(expires=5)).status == 423  # challenged, then refused (too brief)
    after = scrape()
    assert moved(before, after, REGISTERS, outcome="challenged") == 5
    assert moved(before, after, REGISTERS, outcome="registered") == 2
    assert moved(before, after, REGISTERS, outcome="refreshed") == 1
    assert moved(before, after, REGISTERS, outcome="unregistered") == 1
    assert moved(before, after, REGISTERS, outcome="refused") == 1
    assert moved(before, after, REGISTERS, outcome="error") == 0
    # Every message came in over the (recording) UDP flow, and the REGISTERs went to the database.
    assert moved(before, after, "sipline_sip_messages_received_total", transport="udp", kind="request") == 10
    assert moved(before, after, "sipline_sip_messages_received_total", transport="udp", kind="response") == 0
    assert moved(before, after, "sipline_db_operation_duration_seconds_count", operation="write") >= 5


async def test_refusals_and_store_errors_are_counted_as_such(runtime, sip_client, service, monkeypatch):
    phone = await _phone(runtime, sip_client, service)
    before = scrape()
    lost = Phone(service, "no-such-project.sip.localhost", phone.username, phone.password)
    assert (await lost.send(lost.register_bytes())).status == 404

    async def unavailable(*args: object, **kwargs: object) -> SipResponse:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("the database is down"))

    monkeypatch.setattr(service.registrar, "register", unavailable)
    assert (await phone.send(phone.register_bytes())).status == 503
    after = scrape()
    assert moved(before, after, REGISTERS, outcome="refused") == 1
    assert moved(before, after, REGISTERS, outcome="error") == 1


async def test_failed_authentications_blocks_and_throttled_requests(runtime, sip_client, clock: Clock):
    strict = SipService(
        with_settings(runtime, sip_auth_failure_limit=2, sip_auth_source_failure_limit=3),
        clock=clock,
        domain_cache_ttl=0,
    )
    phone = await _phone(runtime, sip_client, strict)
    phone.source = ("127.0.0.21", 40000)
    before = scrape()
    assert (await phone.register(password="guess")).status == 401
    assert (await phone.register(password="guess")).status == 401
    assert (await phone.register(password="guess")).status == 401  # the third: the user name is blocked
    scanner = Phone(strict, phone.domain, "nobody-here", "guess", source=phone.source)
    assert (await scanner.register()).status == 401  # the fourth: the address is
    assert (await phone.send(phone.register_bytes())).status == 403
    after = scrape()
    assert moved(before, after, "sipline_sip_auth_failures_total", reason="wrong_password") == 3
    assert moved(before, after, "sipline_sip_auth_failures_total", reason="unknown_user") == 1
    assert moved(before, after, "sipline_sip_auth_blocks_total", scope="user") == 1
    assert moved(before, after, "sipline_sip_auth_blocks_total", scope="source") == 1
    assert moved(before, after, "sipline_sip_auth_throttled_requests_total") == 1
    assert moved(before, after, REGISTERS, outcome="refused") == 1


async def test_new_requests_dropped_while_busy_are_counted_as_shed(runtime, sip_client, service):
    phone = await _phone(runtime, sip_client, service)
    before = scrape()
    assert service.receive(phone.register_bytes(), RecordingFlow(), busy=True) is None
    after = scrape()
    assert moved(before, after, "sipline_sip_requests_shed_total") == 1
    assert moved(before, after, "sipline_sip_messages_received_total", transport="udp", kind="request") == 1
    assert moved(before, after, REGISTERS, outcome="challenged") == 0


async def test_new_requests_are_dropped_while_the_store_is_saturated(runtime, sip_client, service, monkeypatch):
    phone = await _phone(runtime, sip_client, service)
    # Saturation itself is PostgreSQL's pool (tests/store/test_postgres_pool.py); here, what the service does with it.
    monkeypatch.setattr(type(runtime.db), "saturated", property(lambda _db: True))
    before = scrape()
    assert await exchange(service, phone.register_bytes(), RecordingFlow()) == []  # not even challenged
    assert moved(before, scrape(), "sipline_sip_requests_shed_total") == 1
    monkeypatch.undo()
    assert (await phone.register()).status == 200  # sent again once the store has room, it is answered


async def test_over_tcp_a_request_shed_while_the_store_is_saturated_is_answered_503(
    runtime, sip_client, service, monkeypatch
):
    phone = await _phone(runtime, sip_client, service)
    monkeypatch.setattr(type(runtime.db), "saturated", property(lambda _db: True))
    before = scrape()
    sent = await exchange(service, phone.register_bytes(), RecordingFlow("tcp"))  # nothing is sent again over TCP
    assert moved(before, scrape(), "sipline_sip_requests_shed_total") == 1
    (answer,) = [parse_message(data) for data in sent]
    assert isinstance(answer, SipResponse)
    assert (answer.status, answer.headers.get("Retry-After")) == (503, "5")


async def test_a_request_answering_a_challenge_is_served_while_the_store_is_saturated(
    runtime, sip_client, service, monkeypatch
):
    phone = await _phone(runtime, sip_client, service)
    challenge = await phone.challenge()
    monkeypatch.setattr(type(runtime.db), "saturated", property(lambda _db: True))
    before = scrape()
    auth = digest_authorization(challenge, phone.username, phone.password, f"sip:{phone.domain}")
    assert (await phone.send(phone.register_bytes(authorization=auth))).status == 200  # work already started
    assert moved(before, scrape(), "sipline_sip_requests_shed_total") == 0


async def test_live_bindings_are_read_from_the_database_by_transport(runtime, sip_client, service):
    phone = await _phone(runtime, sip_client, service)
    before = await _served(sip_client)
    assert (await phone.register()).status == 200
    phone.transport, phone.source = "tcp", ("127.0.0.1", 40100)
    assert (await phone.register()).status == 200
    registered = await _served(sip_client)
    assert moved(before, registered, "sipline_sip_bindings", transport="udp") == 1
    assert moved(before, registered, "sipline_sip_bindings", transport="tcp") == 1
    assert (await phone.register(expires=0, contact="*")).status == 200
    gone = await _served(sip_client)
    assert moved(before, gone, "sipline_sip_bindings", transport="udp") == 0
    assert moved(before, gone, "sipline_sip_bindings", transport="tcp") == 0


async def test_user_names_addresses_and_garbage_never_become_label_values(runtime, sip_client, service):
    phone = await _phone(runtime, sip_client, service)
    for username in ('"; DROP TABLE', "alice@evil", "\u00e9t\u00e9", "x" * 300, "transport=udp"):
        await phone.register(username=username)
    garbage = (b"GARBAGE / SIP/2.0\r\n\r\n", b"\x00\xff" * 40, b"SIP/2.0 200 OK\r\n\r\n", b"BREW sip:x SIP/2.0\r\n\r\n")
    for odd in garbage:
        service.receive(odd, RecordingFlow("udp", ("203.0.113.7", 5060)))
    service.receive(phone.register_bytes(), RecordingFlow("sctp"), busy=True)  # a transport we do not know
    samples = await _served(sip_client)
    assert value(samples, "sipline_sip_messages_received_total", transport="other", kind="request") >= 1
    routes = {route.path_format for route in create_app(runtime).routes}
    assert off_vocabulary(samples, routes) == []


async def test_a_call_counts_as_active_while_answered_then_by_its_final_status(world: World):
    a, b = await world.project.create(), await world.project.create()
    async with world.ua(a) as alice, world.ua(b) as bob:
        assert (await bob.register()).status == 200
        before = scrape()
        caller, _, _ = await answered_call(alice, bob)
        up = scrape()
        assert moved(before, up, "sipline_calls_active") == 1
        alice.in_dialog(caller, "BYE")
        assert (await alice.next(status=200, call_id=caller.call_id)).status == 200
        ended = scrape()
        bye = await bob.request("BYE")
        bob.send(bob.reply(bye, 200, "OK"))
    assert moved(before, ended, "sipline_calls_active") == 0
    assert moved(before, ended, "sipline_calls_total", status="completed") == 1
    # Real UDP this time: sipline sent requests (the INVITE, BYE) and responses (100, 180, 200...).
    assert moved(before, ended, "sipline_sip_messages_sent_total", transport="udp", kind="request") >= 2
    assert moved(before, ended, "sipline_sip_messages_sent_total", transport="udp", kind="response") >= 3
    assert moved(before, ended, "sipline_sip_messages_received_total", transport="udp", kind="response") >= 2


async def test_calls_never_answered_are_counted_by_status_and_never_active(world: World):
    a = await world.project.create()
    async with world.ua(a) as alice:
        before = scrape()
        leg = await alice.invite("nobody-by-that-name")
        final = await alice.response(leg.call_id)
        assert final.status == 404
        alice.ack_failure(leg, final)
        after = scrape()
    assert moved(before, after, "sipline_calls_total", status="failed") == 1
    assert moved(before, after, "sipline_calls_active") == 0
