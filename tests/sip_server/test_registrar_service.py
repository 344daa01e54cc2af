"""REGISTER through the service glue: digest against the endpoint's own credentials, bindings in the store."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

import httpx
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from sipline.runtime import Runtime
from sipline.sip.message import SipResponse, parse_message
from sipline.sipserver.service import SipService
from sipline.store import bindings
from tests.conftest import Project, new_project
from tests.sip_server.conftest import Clock, with_settings
from tests.sip_server.sip_phone import (
    Phone,
    RecordingFlow,
    challenges,
    digest_authorization,
    exchange,
    proxy_challenges,
)


async def _setup(
    runtime: Runtime, client: httpx.AsyncClient, service: SipService, **fields: object
) -> tuple[Project, dict, Phone]:
    project = await new_project(runtime, client)
    endpoint = await project.create(**fields)
    domain = (await project.request("GET", "/sip_profile")).json()["domain"]
    phone = Phone(service, domain, endpoint["username"], str(fields.get("password", "s3cret-pass")))
    return project, endpoint, phone


async def _registrations(project: Project, endpoint_id: str) -> list[dict]:
    response = await project.request("GET", f"/endpoints/sip/{endpoint_id}/registrations")
    assert response.status_code == 200, response.text
    return response.json()["data"]


async def test_unauthenticated_register_is_challenged_with_md5_alone_by_default(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    response = await phone.send(phone.register_bytes())
    assert response.status == 401
    [offered] = challenges(response)
    assert (offered["algorithm"], offered["realm"], offered["qop"]) == ("MD5", phone.domain, "auth")


async def test_sha256_opt_in_is_offered_first_then_md5_with_one_nonce(runtime, sip_client, sha256_service):
    _, _, phone = await _setup(runtime, sip_client, sha256_service)
    response = await phone.send(phone.register_bytes())
    assert response.status == 401
    offered = challenges(response)
    assert [c["algorithm"] for c in offered] == ["SHA-256", "MD5"]
    assert {c["realm"] for c in offered} == {phone.domain}
    assert offered[0]["nonce"] == offered[1]["nonce"]
    assert all(c["qop"] == "auth" for c in offered)


async def test_right_password_registers_and_registrations_route_lists_the_binding(runtime, sip_client, service):
    project, endpoint, phone = await _setup(runtime, sip_client, service)
    response = await phone.register()
    assert response.status == 200, response.reason
    assert response.headers.get("Contact").startswith(f"<{phone.contact_uri}>;expires=")
    [registration] = await _registrations(project, endpoint["id"])
    assert registration["contact"] == phone.contact_uri
    assert registration["transport"] == "udp"
    assert (registration["source_address"], registration["source_port"]) == phone.source
    assert registration["user_agent"] == "test-phone/1.0"
    assert registration["expires_at"].endswith("Z") and registration["registered_at"].endswith("Z")


async def test_sha256_digest_is_accepted_when_offered(runtime, sip_client, sha256_service):
    project, endpoint, phone = await _setup(runtime, sip_client, sha256_service)
    assert (await phone.register(algorithm="SHA-256")).status == 200
    assert len(await _registrations(project, endpoint["id"])) == 1


async def test_wrong_password_gets_a_fresh_challenge_and_binds_nothing(runtime, sip_client, service):
    project, endpoint, phone = await _setup(runtime, sip_client, service)
    response = await phone.register(password="not-the-password")
    assert response.status == 401
    assert [c["algorithm"] for c in challenges(response)] == ["MD5"]
    assert await _registrations(project, endpoint["id"]) == []


async def test_unknown_username_is_challenged_like_a_wrong_password(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    assert (await phone.register(username="nobody-here")).status == 401


async def test_expired_nonce_with_right_password_gets_stale_challenge(runtime, sip_client, service, clock: Clock):
    _, _, phone = await _setup(runtime, sip_client, service)
    challenge = await phone.challenge()
    clock.advance(service.auth.nonces.ttl + 10)
    auth = digest_authorization(challenge, phone.username, phone.password, f"sip:{phone.domain}")
    response = await phone.send(phone.register_bytes(authorization=auth))
    assert response.status == 401
    assert all("stale=true" in v for v in response.headers.get_all("WWW-Authenticate"))


async def test_replayed_nonce_count_is_refused(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    challenge = await phone.challenge()
    auth = digest_authorization(challenge, phone.username, phone.password, f"sip:{phone.domain}", nc=1)
    assert (await phone.send(phone.register_bytes(authorization=auth))).status == 200
    # Same nonce, same nc, new transaction: a captured request played again.
    assert (await phone.send(phone.register_bytes(authorization=auth))).status == 401
    next_auth = digest_authorization(challenge, phone.username, phone.password, f"sip:{phone.domain}", nc=2)
    assert (await phone.send(phone.register_bytes(authorization=next_auth))).status == 200


async def test_registering_someone_elses_aor_is_forbidden(runtime, sip_client, service):
    project, _, phone = await _setup(runtime, sip_client, service)
    other = await project.create()
    response = await phone.register(to_user=other["username"])
    assert response.status == 403
    assert "To user" in response.reason


async def test_unknown_domain_gets_404(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    phone.domain = "no-such-project.sip.localhost"
    assert (await phone.send(phone.register_bytes())).status == 404
    phone.domain = "example.com"
    assert (await phone.send(phone.register_bytes())).status == 404


async def test_encryption_required_refuses_udp_with_a_reason_and_admits_tls(runtime, sip_client, service):
    project, endpoint, phone = await _setup(runtime, sip_client, service, encryption="required")
    response = await phone.register()
    assert response.status == 403
    assert "Encryption Required" in response.reason and "TLS" in response.reason
    phone.transport = "tls"
    assert (await phone.register()).status == 200
    [registration] = await _registrations(project, endpoint["id"])
    assert registration["transport"] == "tls"


async def test_profile_default_encryption_applies_to_endpoints_left_on_default(runtime, sip_client, service):
    project, _, phone = await _setup(runtime, sip_client, service)
    response = await project.request("PUT", "/sip_profile", json={"default_encryption": "required"})
    assert response.status_code == 201, response.text
    assert (await phone.register()).status == 403
    optional = await project.create(encryption="optional")
    phone.username = optional["username"]
    assert (await phone.register()).status == 200


async def test_password_change_refuses_the_old_password(runtime, sip_client, service):
    project, endpoint, phone = await _setup(runtime, sip_client, service)
    assert (await phone.register()).status == 200
    response = await project.request("PUT", f"/endpoints/sip/{endpoint['id']}", json={"password": "brand-new-pass"})
    assert response.status_code == 201
    assert (await phone.register()).status == 401
    assert (await phone.register(password="brand-new-pass")).status == 200


async def test_deleting_an_endpoint_removes_its_bindings_and_refuses_its_registers(runtime, sip_client, service):
    project, endpoint, phone = await _setup(runtime, sip_client, service)
    assert (await phone.register()).status == 200
    assert len(await runtime.db.read(bindings.list_for_endpoint, endpoint["id"])) == 1
    assert (await project.request("DELETE", f"/endpoints/sip/{endpoint['id']}")).status_code == 204
    assert await runtime.db.read(bindings.list_for_endpoint, endpoint["id"]) == []
    assert (await phone.register()).status == 401
    assert (await project.request("GET", f"/endpoints/sip/{endpoint['id']}/registrations")).status_code == 404


async def test_unregister_with_expires_zero_removes_the_binding(runtime, sip_client, service):
    project, endpoint, phone = await _setup(runtime, sip_client, service)
    assert (await phone.register()).status == 200
    assert (await phone.register(expires=0)).status == 200
    assert await _registrations(project, endpoint["id"]) == []


async def test_too_short_expiry_gets_423_with_min_expires(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    response = await phone.register(expires=5)
    assert response.status == 423
    assert response.headers.get("Min-Expires") == str(service.registrar.policy.min_expires)


async def test_expired_bindings_are_not_listed_and_are_purged(runtime, sip_client, service, clock: Clock):
    project, endpoint, phone = await _setup(runtime, sip_client, service)
    clock.advance(-120)  # registered two minutes ago for one minute: expired by now
    assert (await phone.register(expires=60)).status == 200
    assert await _registrations(project, endpoint["id"]) == []
    assert await runtime.db.write(bindings.purge_expired, time.time()) >= 1
    assert await runtime.db.read(bindings.list_for_endpoint, endpoint["id"]) == []


async def test_registrations_route_hides_other_projects_endpoints(runtime, sip_client, service):
    _, endpoint, _ = await _setup(runtime, sip_client, service)
    stranger = await new_project(runtime, sip_client)
    assert (await stranger.request("GET", f"/endpoints/sip/{endpoint['id']}/registrations")).status_code == 404
    assert (await stranger.request("GET", "/endpoints/sip/not-a-uuid/registrations")).status_code == 404
    response = await sip_client.get(f"/api/relay/rest/endpoints/sip/{endpoint['id']}/registrations")
    assert response.status_code == 401


async def test_concurrent_registers_of_one_endpoint_keep_every_contact(runtime, sip_client, service):
    project, endpoint, phone = await _setup(runtime, sip_client, service)
    phones = [
        Phone(service, phone.domain, phone.username, phone.password, source=("127.0.0.1", 41000 + i)) for i in range(8)
    ]
    results = await asyncio.gather(*(p.register() for p in phones))
    assert [r.status for r in results] == [200] * 8
    contacts = {r["contact"] for r in await _registrations(project, endpoint["id"])}
    assert contacts == {p.contact_uri for p in phones}


async def test_repeated_failures_block_that_user_from_that_address_only(runtime, sip_client, service):
    project, _, phone = await _setup(runtime, sip_client, service)
    neighbour_endpoint = await project.create()
    neighbour = Phone(service, phone.domain, neighbour_endpoint["username"], "s3cret-pass", source=("127.0.0.9", 40001))
    phone.source = ("127.0.0.9", 40000)
    for _ in range(service.auth.throttle.policy.limit + 1):
        assert (await phone.register(password="guess")).status == 401
    response = await phone.send(phone.register_bytes())
    assert response.status == 403
    assert "failed authentications" in response.reason
    # The right password does not help while blocked...
    assert (await phone.send(phone.register_bytes())).status == 403
    # ...but another phone behind the same address (an office NAT) still registers,
    assert (await neighbour.register()).status == 200
    # and so does the same user from another address.
    phone.source = ("127.0.0.10", 40000)
    assert (await phone.register()).status == 200


async def test_many_failures_from_one_address_across_user_names_block_the_address(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    phone.source = ("127.0.0.11", 40000)
    limit = service.auth.throttle.policy.source_limit
    for attempt in range(limit + 1):  # a scanner: a new user name each time
        assert (await phone.register(username=f"scan{attempt}")).status == 401
    blocked = await phone.send(phone.register_bytes())
    assert blocked.status == 403 and "failed authentications" in blocked.reason
    # Even a known user name is refused from that address, before any challenge.
    assert (await phone.send(phone.register_bytes(to_user=phone.username))).status == 403


async def test_trusted_networks_are_never_throttled(runtime, sip_client, clock):
    trusting = SipService(
        with_settings(runtime, sip_trusted_networks="127.0.0.0/24", sip_auth_failure_limit=2),
        clock=clock,
        domain_cache_ttl=0,
    )
    _, _, phone = await _setup(runtime, sip_client, trusting)
    phone.source = ("127.0.0.12", 40000)
    for _ in range(5):
        assert (await phone.register(password="guess")).status == 401
    assert (await phone.register()).status == 200


async def test_options_to_the_server_itself_is_a_keepalive_answered_without_credentials(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    data = phone.register_bytes(request_uri="sip:127.0.0.1").replace(b"REGISTER", b"OPTIONS")
    response = await phone.send(data)
    assert response.status == 200
    assert "INVITE" in response.headers.get_all("Allow") and "REGISTER" in response.headers.get_all("Allow")


async def test_other_requests_out_of_a_dialog_need_credentials_then_get_405(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    for method, expected in (("OPTIONS", 200), ("MESSAGE", 405), ("SUBSCRIBE", 405)):
        data = phone.register_bytes().replace(b"REGISTER", method.encode())
        challenged = await phone.send(data)
        assert challenged.status == 407, method
        [challenge] = proxy_challenges(challenged)
        auth = digest_authorization(challenge, phone.username, phone.password, f"sip:{phone.domain}", method=method)
        data = phone.register_bytes(proxy_authorization=auth).replace(b"REGISTER", method.encode())
        response = await phone.send(data)
        assert response.status == expected, (method, response.status, response.reason)
        if expected == 405:
            assert "INVITE" in response.headers.get_all("Allow")


async def test_ack_and_stray_responses_are_never_answered(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    assert await exchange(service, phone.register_bytes().replace(b"REGISTER", b"ACK"), phone.flow) == []
    response = b"SIP/2.0 200 OK\r\n" + phone.register_bytes().split(b"\r\n", 1)[1]
    assert await exchange(service, response, phone.flow) == []


async def test_malformed_request_with_routable_headers_gets_400_and_noise_is_dropped(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    broken = phone.register_bytes().replace(b"Max-Forwards: 70", b"Max-Forwards: lots")
    response = await phone.send(broken)
    assert response.status == 400
    assert "Max-Forwards" in response.headers.get("Warning")
    # The answer echoes what it can, even a CSeq it could not parse.
    [reply] = await exchange(service, phone.register_bytes().replace(b"CSeq: 2 ", b"CSeq: two "), phone.flow)
    assert reply.startswith(b"SIP/2.0 400 ")
    for noise in (b"", b"\x00\xff" * 100, b"hello", b"REGISTER sip:x SIP/2.0\r\n\r\n", b"\r\n\r\n"):
        assert await exchange(service, noise, phone.flow) == []


async def test_response_via_carries_received_and_rport_of_the_source(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    data = phone.register_bytes().replace(b"Via: SIP/2.0/UDP 127.0.0.1:40000", b"Via: SIP/2.0/UDP 10.9.9.9:5060")
    [reply] = await exchange(service, data, RecordingFlow("udp", ("127.0.0.1", 40123)))
    response = parse_message(reply)
    assert isinstance(response, SipResponse)
    via = response.headers.get("Via")
    assert ";rport=40123" in via and ";received=127.0.0.1" in via


async def test_udp_retransmission_gets_the_same_answer_without_a_second_registration(runtime, sip_client, service):
    project, endpoint, phone = await _setup(runtime, sip_client, service)
    challenge = await phone.challenge()
    auth = digest_authorization(challenge, phone.username, phone.password, f"sip:{phone.domain}")
    data = phone.register_bytes(authorization=auth, branch="z9hG4bK-retransmitted")
    flow = phone.flow
    [first] = await exchange(service, data, flow)
    [again] = await exchange(service, data, flow)
    assert again == first
    assert parse_message(first).status == 200  # type: ignore[union-attr]
    assert len(await _registrations(project, endpoint["id"])) == 1


def test_digest_helper_matches_rfc_2617_example():
    # Guards the test's own digest code against the RFC's worked example (RFC 2617 §3.5).
    challenge = {"realm": "testrealm@host.com", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "algorithm": "MD5"}
    ha1 = hashlib.md5(b"Mufasa:testrealm@host.com:Circle Of Life").hexdigest()
    ha2 = hashlib.md5(b"GET:/dir/index.html").hexdigest()
    expected = hashlib.md5(f"{ha1}:{challenge['nonce']}:00000001:0a4f113b:auth:{ha2}".encode()).hexdigest()
    assert expected == "6629fae49393a05397450978507c4ef1"


async def test_control_characters_in_the_digest_username_are_refused_not_an_error(runtime, sip_client, service):
    # Raw, they make the Authorization line malformed (400); escaped, no endpoint has such a name (401).
    _, _, phone = await _setup(runtime, sip_client, service)
    for username in ("a\x00b", "\x01", phone.username + "\x7f", "a\\\x00b"):
        response = await phone.register(username=username)
        assert response.status in (400, 401), (response.status, response.reason)


async def test_an_escaped_nul_in_a_stored_header_gets_400_not_an_error(runtime, sip_client, service):
    _, _, phone = await _setup(runtime, sip_client, service)
    phone.user_agent = "phone (quoted \\\x00 nul)"
    response = await phone.send(phone.register_bytes())
    assert response.status == 400 and "NUL" in response.reason


async def test_a_store_that_cannot_serve_is_503_and_a_fault_of_ours_is_500(
    runtime, sip_client, service, caplog, monkeypatch: pytest.MonkeyPatch
):
    # As the API answers: the device may retry the first later; the second is logged as a fault.
    _, _, phone = await _setup(runtime, sip_client, service)
    caplog.set_level(logging.WARNING, logger="sipline")
    for error, status in (
        (OperationalError("SELECT", {}, ConnectionRefusedError("the database is down")), 503),
        (IntegrityError("UPDATE", {}, Exception("a constraint our code broke")), 500),
    ):
        caplog.clear()

        def fail(*args: object, error: Exception = error) -> None:
            raise error

        monkeypatch.setattr(bindings, "list_for_endpoint", fail)
        response = await phone.register()
        assert response.status == status, (response.status, response.reason)
        assert response.headers.get("Retry-After") == ("5" if status == 503 else None)
        tracebacks = [record for record in caplog.records if record.exc_info]
        assert len(tracebacks) == (status == 500), caplog.text
    monkeypatch.undo()
    assert (await phone.register()).status == 200


async def test_registrations_failures_and_blocks_are_logged_without_the_password(runtime, sip_client, service, caplog):
    caplog.set_level(logging.INFO, logger="sipline")
    _, _, phone = await _setup(runtime, sip_client, service)
    phone.source = ("127.0.0.13", 40000)
    assert (await phone.register()).status == 200
    assert (await phone.register(password="wrong-guess")).status == 401
    assert (await phone.register(expires=0)).status == 200
    text = caplog.text
    assert (
        f"SIP registered {phone.username}@{phone.domain} contact <{phone.contact_uri}> from udp:127.0.0.13:40000"
        in text
    )
    assert f"wrong password for {phone.username!r}@{phone.domain} from 127.0.0.13:40000" in text
    assert f"SIP unregistered {phone.username}@{phone.domain} contact <{phone.contact_uri}>" in text
    assert "wrong-guess" not in text and phone.password not in text
