"""The client for user URLs against a real HTTP server on loopback: bodies, signatures, timeouts,
redirects, limits. Whatever the server does, fetch answers Fetched or FetchFailed, never raises."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from twilio.request_validator import RequestValidator

import sipline
from sipline.webhooks import MAX_BODY, Fetched, FetchFailed, WebhookClient
from tests.webhooks.http_server import Recorded, WebhookServer, unaccepted_url

KEY = "PSK_0123456789abcdef0123456789abcdef01234567"
PARAMS = {"CallSid": "CA0123", "From": "sip:alice@acme.sip.localhost", "To": "sip:bob@acme.sip.localhost"}
DOCUMENT = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'


def _signed_for(request: Recorded, params: dict[str, str]) -> bool:
    """Both signature headers check out with Twilio's validator, for the URL the server saw."""
    validator = RequestValidator(KEY)
    return all(
        validator.validate(request.url, params, request.headers[name])
        for name in ("x-twilio-signature", "x-signalwire-signature")
    )


# --- what is sent --------------------------------------------------------------------------


async def test_get_sends_the_parameters_in_the_query_string_and_signs_the_full_url(
    server: WebhookServer, webhook_client: WebhookClient
) -> None:
    server.respond("/voice", body=DOCUMENT)
    result = await webhook_client.fetch(server.url("/voice?tenant=7"), "GET", PARAMS, signing_key=KEY)
    assert isinstance(result, Fetched), result
    [request] = server.requests
    assert request.method == "GET" and request.body == b""
    assert request.query == {"tenant": "7", **PARAMS}
    assert _signed_for(request, {})  # a GET's parameters are part of the URL


async def test_post_sends_a_signed_form(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/voice", body=DOCUMENT)
    result = await webhook_client.fetch(server.url("/voice"), "POST", PARAMS, signing_key=KEY)
    assert isinstance(result, Fetched), result
    [request] = server.requests
    assert request.method == "POST" and request.query == {}
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form == PARAMS
    assert _signed_for(request, PARAMS)
    assert not _signed_for(request, {**PARAMS, "To": "sip:mallory@acme.sip.localhost"})


async def test_post_sends_json_signed_as_signalwire_signs_json(
    server: WebhookServer, webhook_client: WebhookClient
) -> None:
    from sipline.webhooks import json_signature

    server.respond("/swml", body='{"version": "1.0.0", "sections": {"main": []}}', content_type="application/json")
    body = {"call": {"call_id": "c1", "from": "sip:alice@x", "headers": []}, "vars": {}}
    result = await webhook_client.fetch(server.url("/swml"), "POST", json_body=body, signing_key=KEY)
    assert isinstance(result, Fetched), result
    [request] = server.requests
    assert request.headers["content-type"] == "application/json" and request.json == body
    assert request.headers["x-signalwire-signature"] == json_signature(KEY, request.url, request.body)
    assert RequestValidator(KEY).validate(request.url, {}, request.headers["x-twilio-signature"])


async def test_every_request_names_sipline_and_its_version(
    server: WebhookServer, webhook_client: WebhookClient
) -> None:
    server.respond("/voice")
    await webhook_client.fetch(server.url("/voice"), "GET")
    assert server.requests[0].headers["user-agent"] == f"sipline/{sipline.__version__}"


async def test_an_unsigned_request_has_no_signature_headers(
    server: WebhookServer, webhook_client: WebhookClient
) -> None:
    server.respond("/voice")
    await webhook_client.fetch(server.url("/voice"), "POST", PARAMS)
    assert not {"x-twilio-signature", "x-signalwire-signature"} & set(server.requests[0].headers)


async def test_the_fragment_is_neither_sent_nor_signed(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/voice", body=DOCUMENT)
    result = await webhook_client.fetch(server.url("/voice?a=1#rt=3000&ct=500"), "POST", PARAMS, signing_key=KEY)
    assert isinstance(result, Fetched) and result.url == server.url("/voice?a=1")
    [request] = server.requests
    assert request.url == server.url("/voice?a=1") and request.query == {"a": "1"}
    assert _signed_for(request, PARAMS)


async def test_a_2xx_answer_comes_back_whole(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/voice", status=201, body=DOCUMENT, content_type="text/xml; charset=utf-8")
    result = await webhook_client.fetch(server.url("/voice"), "POST", PARAMS)
    assert result == Fetched(201, "text/xml; charset=utf-8", DOCUMENT.encode(), server.url("/voice"))
    server.respond("/empty", status=204)
    empty = await webhook_client.fetch(server.url("/empty"), "POST")
    assert isinstance(empty, Fetched) and (empty.status, empty.body) == (204, b"")


async def test_the_connection_is_reused(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/voice")
    for _ in range(3):
        assert isinstance(await webhook_client.fetch(server.url("/voice"), "GET"), Fetched)
    assert len(server.requests) == 3


# --- failures: 11200 with a reason, never an exception -------------------------------------


@pytest.mark.parametrize("status", [400, 404, 500, 503])
async def test_a_non_2xx_answer_fails_with_11200_and_the_status(
    server: WebhookServer, webhook_client: WebhookClient, status: int
) -> None:
    server.respond("/voice", status=status, body="oops")
    result = await webhook_client.fetch(server.url("/voice#tt=2000"), "POST", PARAMS)
    assert result == FetchFailed(reason=f"the server answered HTTP {status}", status=status, url=server.url("/voice"))
    assert result.code == 11200


@pytest.mark.parametrize(
    "url", ["ftp://example.com/voice", "file:///etc/passwd", "mailto:x@example.com", "voice.xml", "http://", ""]
)
async def test_urls_that_are_not_http_are_refused_without_a_request(webhook_client: WebhookClient, url: str) -> None:
    result = await webhook_client.fetch(url, "GET", PARAMS)
    assert isinstance(result, FetchFailed) and result.code == 11200 and result.status is None


async def test_a_closed_port_fails_to_connect(webhook_client: WebhookClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    result = await webhook_client.fetch(f"http://127.0.0.1:{port}/voice", "POST", PARAMS)
    assert isinstance(result, FetchFailed) and result.reason.startswith("could not connect")


async def test_garbage_instead_of_http_fails_cleanly(webhook_client: WebhookClient) -> None:
    async def babble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        writer.write(b"SIP/2.0 200 OK\r\n\x00\x01\x02 not http at all\r\n\r\n")
        await writer.drain()
        writer.close()

    babbler = await asyncio.start_server(babble, "127.0.0.1", 0)
    async with babbler:
        port = babbler.sockets[0].getsockname()[1]
        result = await webhook_client.fetch(f"http://127.0.0.1:{port}/voice", "GET")
    assert isinstance(result, FetchFailed) and result.status is None


async def test_the_callers_own_mistakes_raise(webhook_client: WebhookClient) -> None:
    with pytest.raises(ValueError, match="GET or POST"):
        await webhook_client.fetch("http://127.0.0.1:9/", "DELETE")
    with pytest.raises(ValueError, match="not both"):
        await webhook_client.fetch("http://127.0.0.1:9/", "POST", {"a": "1"}, json_body={"b": 2})
    with pytest.raises(ValueError, match="GET"):
        await webhook_client.fetch("http://127.0.0.1:9/", "GET", json_body={"b": 2})


# --- redirects -----------------------------------------------------------------------------


def _chain(server: WebhookServer, hops: int) -> None:
    """/r0 -> /r1 -> ... -> /r{hops}, which answers a document."""
    for i in range(hops):
        server.respond(f"/r{i}", redirect_to=f"/r{i + 1}")
    server.respond(f"/r{hops}", body=DOCUMENT)


async def test_three_redirects_are_followed_each_hop_signed_for_its_own_url(
    server: WebhookServer, webhook_client: WebhookClient
) -> None:
    _chain(server, 3)
    result = await webhook_client.fetch(server.url("/r0"), "GET", PARAMS, signing_key=KEY)
    assert isinstance(result, Fetched) and result.url == server.url("/r3") and result.body == DOCUMENT.encode()
    assert [r.path for r in server.requests] == ["/r0", "/r1", "/r2", "/r3"]
    assert all(_signed_for(r, {}) for r in server.requests)


async def test_a_fourth_redirect_fails_without_following_it(
    server: WebhookServer, webhook_client: WebhookClient
) -> None:
    _chain(server, 4)
    result = await webhook_client.fetch(server.url("/r0"), "GET", PARAMS)
    assert result == FetchFailed(reason="more than 3 redirects", status=302, url=server.url("/r0"))
    assert [r.path for r in server.requests] == ["/r0", "/r1", "/r2", "/r3"]


@pytest.mark.parametrize(("status", "method"), [(301, "GET"), (302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")])
async def test_a_post_redirected_goes_on_as_browsers_do(
    server: WebhookServer, webhook_client: WebhookClient, status: int, method: str
) -> None:
    server.respond("/old", status=status, redirect_to="/new")
    server.respond("/new", body=DOCUMENT)
    result = await webhook_client.fetch(server.url("/old"), "POST", PARAMS, signing_key=KEY)
    assert isinstance(result, Fetched), result
    new = server.requests_to("/new")[0]
    assert new.method == method
    assert new.form == (PARAMS if method == "POST" else {})
    assert _signed_for(new, new.form)


async def test_a_redirect_to_another_scheme_fails(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/old", redirect_to="ftp://127.0.0.1/voice.xml")
    result = await webhook_client.fetch(server.url("/old"), "GET")
    assert isinstance(result, FetchFailed) and "not http(s)" in result.reason and result.status == 302


# --- size ----------------------------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_body_over_1_mib_fails(
    server: WebhookServer, webhook_client: WebhookClient, declare_length: bool
) -> None:
    server.respond("/big", body=b"x" * (MAX_BODY + 1), declare_length=declare_length)
    result = await webhook_client.fetch(server.url("/big"), "GET")
    assert isinstance(result, FetchFailed) and "larger than 1048576 bytes" in result.reason
    assert result.status == 200


async def test_a_body_of_exactly_1_mib_is_fine(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/big", body=b"x" * MAX_BODY, declare_length=False)
    result = await webhook_client.fetch(server.url("/big"), "GET")
    assert isinstance(result, Fetched) and len(result.body) == MAX_BODY


# --- timeouts ------------------------------------------------------------------------------


async def _timed(client: WebhookClient, url: str) -> tuple[Fetched | FetchFailed, float]:
    started = time.monotonic()
    result = await client.fetch(url, "POST", PARAMS)
    return result, time.monotonic() - started


@pytest.mark.parametrize("key", ["ct", "ot"])
async def test_a_connect_timeout_from_the_fragment(webhook_client: WebhookClient, key: str) -> None:
    with unaccepted_url("/voice") as url:
        result, took = await _timed(webhook_client, f"{url}#{key}=300")
    assert isinstance(result, FetchFailed) and result.reason == "could not connect within 300 ms", result
    assert 0.25 < took < 1.5
    assert result.url == url


async def test_the_default_connect_timeout_is_2_seconds(webhook_client: WebhookClient) -> None:
    with unaccepted_url() as url:
        result, took = await _timed(webhook_client, url)
    assert isinstance(result, FetchFailed) and result.reason == "could not connect within 2000 ms", result
    assert 1.9 < took < 3.5


async def test_a_read_timeout_from_the_fragment(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/slow", body=DOCUMENT, delay=3.0)
    result, took = await _timed(webhook_client, server.url("/slow#rt=300"))
    assert isinstance(result, FetchFailed) and result.reason == "no data from the server for 300 ms", result
    assert 0.25 < took < 1.5


async def test_a_slow_answer_within_the_read_timeout_is_fine(
    server: WebhookServer, webhook_client: WebhookClient
) -> None:
    server.respond("/slow", body=DOCUMENT, delay=0.3)
    result, _ = await _timed(webhook_client, server.url("/slow#rt=2000"))
    assert isinstance(result, Fetched), result


async def test_a_trickle_that_keeps_the_read_timeout_happy_still_meets_the_total(
    server: WebhookServer, webhook_client: WebhookClient
) -> None:
    server.respond("/drip", body=DOCUMENT, trickle=0.05)  # 66 bytes: over 3 s, never 300 ms apart
    result, took = await _timed(webhook_client, server.url("/drip#rt=300&tt=600"))
    assert isinstance(result, FetchFailed) and result.reason == "no complete answer within 600 ms", result
    assert 0.55 < took < 2.0


async def test_the_total_timeout_covers_every_redirect(server: WebhookServer, webhook_client: WebhookClient) -> None:
    for i in range(3):
        server.respond(f"/r{i}", redirect_to=f"/r{i + 1}", delay=0.2)
    server.respond("/r3", body=DOCUMENT, delay=0.2)
    result, took = await _timed(webhook_client, server.url("/r0#tt=500"))  # each hop 200 ms, 800 in all
    assert isinstance(result, FetchFailed) and "within 500 ms" in result.reason, result
    assert took < 1.5


async def test_the_pool_keeps_working_after_requests_cut_short_under_contention(server: WebhookServer) -> None:
    # httpcore 1.0.9 leaks a pool slot for every request cancelled while queued in its pool
    # (encode/httpcore#1093): without the client's own slots, this pool of 2 is dead after one round.
    server.respond("/drip", body=DOCUMENT, trickle=0.05)
    server.respond("/voice", body=DOCUMENT)
    async with WebhookClient(max_connections=2) as client:
        for total in (100, 150, 200, 250):
            cut = await asyncio.gather(*(client.fetch(server.url(f"/drip#tt={total}"), "GET") for _ in range(10)))
            assert all(isinstance(r, FetchFailed) for r in cut)
        again = await asyncio.gather(*(client.fetch(server.url("/voice#tt=5000"), "GET") for _ in range(4)))
        assert all(isinstance(r, Fetched) for r in again), again


async def test_concurrent_fetches_share_the_client(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/voice", body=DOCUMENT)
    results = await asyncio.gather(*(webhook_client.fetch(server.url(f"/voice?n={i}"), "GET") for i in range(50)))
    assert all(isinstance(r, Fetched) for r in results)
    assert sorted(int(r.query["n"]) for r in server.requests) == list(range(50))
