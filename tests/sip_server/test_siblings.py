"""Which worker a datagram read on the node's shared socket belongs to, and the hand-over channel."""

from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.sipserver.local import Local
from sipline.sipserver.siblings import Siblings, envelope, open_envelope, owner

INSTANCES = ["abcd1234w0", "abcd1234w1", "abcd1234w2"]
MARKERS = {instance.encode(): i for i, instance in enumerate(INSTANCES)}


def _request(
    method: str, call_id: str, *, to_tag: str = "", route: str = "", compact: bool = False, extra: str = ""
) -> bytes:
    lines = [
        f"{method} sip:bob@example.test SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKdevice1",
        "From: <sip:alice@example.test>;tag=a1",
        f"To: <sip:bob@example.test>{';tag=' + to_tag if to_tag else ''}",
        f"{'i' if compact else 'Call-ID'}: {call_id}",
        f"CSeq: 1 {method}",
        *([f"Route: {route}"] if route else []),
        *([extra] if extra else []),
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _response(branch: str, *, more_vias: str = "") -> bytes:
    lines = [
        "SIP/2.0 180 Ringing",
        f"v: SIP/2.0/UDP 127.0.0.1:5060;branch={branch};rport{more_vias}",
        "From: <sip:alice@example.test>;tag=a1",
        "To: <sip:bob@example.test>;tag=b1",
        "Call-ID: x@y",
        "CSeq: 1 INVITE",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_response_goes_to_the_worker_whose_branch_it_answers() -> None:
    for index, instance in enumerate(INSTANCES):
        local = Local("127.0.0.1", instance=instance)
        assert owner(_response(local.branch()), MARKERS, 3) == index
    assert owner(_response("z9hG4bK-ffffffffw9-1"), MARKERS, 3) is None  # not ours: dropped where it lands
    assert owner(_response("z9hG4bKplain"), MARKERS, 3) is None
    # only the top Via counts (a Via of ours further down is not this response's transaction)
    assert (
        owner(_response("z9hG4bKplain", more_vias=f", SIP/2.0/UDP h;branch=z9hG4bK-{INSTANCES[1]}-x"), MARKERS, 3)
        is None
    )


def test_requests_of_a_call_we_placed_go_to_the_worker_that_placed_it() -> None:
    for index, instance in enumerate(INSTANCES):
        call_id = Local("127.0.0.1", instance=instance).call_id()
        for method in ("BYE", "INVITE", "ACK", "INFO"):
            assert owner(_request(method, call_id, to_tag="x"), MARKERS, 3) == index


@given(
    st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40).filter(
        lambda call_id: call_id.partition("-")[0] not in INSTANCES
    )
)
def test_every_request_of_a_device_s_call_or_registration_goes_to_one_worker(call_id: str) -> None:
    """The INVITE, its retransmissions, its CANCEL, the ACK and the dialog's requests: one worker;
    a REGISTER with credentials and its retransmissions too; whichever form the Call-ID header takes."""
    first = owner(_request("INVITE", call_id), MARKERS, 3)
    assert first in (0, 1, 2)
    for method, tag in (("CANCEL", ""), ("ACK", "t"), ("BYE", "t"), ("OPTIONS", "t"), ("INFO", "t")):
        assert owner(_request(method, call_id, to_tag=tag), MARKERS, 3) == first
    assert owner(_request("BYE", call_id, to_tag="t", compact=True), MARKERS, 3) == first
    credentials = 'Authorization: Digest username="u", realm="r", nonce="n", uri="sip:r", response="x"'
    registered = owner(_request("REGISTER", call_id, extra=credentials), MARKERS, 3)
    assert registered in (0, 1, 2)
    assert owner(_request("REGISTER", call_id, extra=credentials.lower()), MARKERS, 3) == registered


def test_a_register_to_be_challenged_is_answered_where_it_lands() -> None:
    """Without credentials a REGISTER changes nothing (it is challenged, or refused): whichever
    worker reads it answers it, as a stateless UAS would (RFC 3261 §8.2.7), and nothing is handed
    over. With them, it goes to its Call-ID's worker, and only a Proxy-Authorization is no credential."""
    for n in range(50):
        assert owner(_request("REGISTER", f"{n}@device"), MARKERS, 3) is None
        proxy = _request("REGISTER", f"{n}@device", extra='Proxy-Authorization: Digest username="u"')
        assert owner(proxy, MARKERS, 3) is None
    answering = [
        owner(_request("REGISTER", f"{n}@device", extra="Authorization: Digest x"), MARKERS, 3) for n in range(50)
    ]
    assert set(answering) == {0, 1, 2}


def test_relay_hops_are_taken_where_they_land() -> None:
    relayed = _request("BYE", f"{INSTANCES[1]}-x@sipline", to_tag="t", route="<sip:127.0.0.1:5070;lr;sl-relay>")
    assert owner(relayed, MARKERS, 3) is None
    not_relayed = _request("BYE", f"{INSTANCES[1]}-x@sipline", to_tag="t", route="<sip:127.0.0.1:5070;lr>")
    assert owner(not_relayed, MARKERS, 3) == 1


def test_what_cannot_be_read_stays_where_it_landed() -> None:
    assert owner(b"garbage", MARKERS, 3) is None
    assert owner(b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n\r\n", MARKERS, 3) is None


def test_calls_spread_over_the_workers() -> None:
    counts = [0, 0, 0]
    for n in range(3000):
        found = owner(_request("INVITE", f"{n}@device"), MARKERS, 3)
        assert found is not None
        counts[found] += 1
    assert min(counts) > 800


@pytest.mark.parametrize("source", [("192.0.2.7", 5060), ("2001:db8::1", 5070)])
@pytest.mark.parametrize("relayed", [False, True])
def test_an_envelope_carries_the_datagram_its_source_and_socket(source: tuple[str, int], relayed: bool) -> None:
    data = b"INVITE sip:x SIP/2.0\r\n\r\n\n\x00binary"
    assert open_envelope(envelope(data, source, relayed)) == (data, source, relayed)


@pytest.mark.parametrize("payload", [b"", b"junk", b"s host\n", b"s host port\nx", b"\n\n"])
def test_a_malformed_envelope_is_refused(payload: bytes) -> None:
    assert open_envelope(payload) is None


async def test_a_datagram_handed_over_reaches_its_worker_with_its_source() -> None:
    channels = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        sender = Siblings(0, "abcd1234", INSTANCES[:2], channels)
        receiver = Siblings(1, "abcd1234", INSTANCES[:2], channels)
        got: asyncio.Queue[tuple[bytes, tuple[str, int], bool]] = asyncio.Queue()
        receiver.listen(lambda data, source, relayed: got.put_nowait((data, source, relayed)))
        sender.hand_over(1, b"SIP/2.0 200 OK\r\n\r\n", ("192.0.2.9", 5099), False)
        assert await asyncio.wait_for(got.get(), 5) == (b"SIP/2.0 200 OK\r\n\r\n", ("192.0.2.9", 5099), False)
        receiver.close()
    finally:
        for a, b in channels:
            a.close()
            b.close()


async def test_what_a_busy_worker_s_channel_cannot_take_waits_and_arrives_in_order() -> None:
    channels = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM) for _ in range(2)]
    try:
        sender = Siblings(0, "abcd1234", INSTANCES[:2], channels)
        receiver = Siblings(1, "abcd1234", INSTANCES[:2], channels)
        # Worker 1 reads nothing meanwhile (a long collection, say): far more than the channel
        # holds is handed over to it, as at 1,000 calls/s, where the excess used to be lost.
        sent = [f"SIP/2.0 200 OK\r\nX-Seq: {i}\r\n\r\n".encode() + b"x" * 1000 for i in range(3000)]
        for data in sent:
            sender.hand_over(1, data, ("192.0.2.9", 5099), False)
        got: list[bytes] = []
        done = asyncio.Event()

        def handler(data: bytes, source: tuple[str, int], relayed: bool) -> None:
            got.append(data)
            if len(got) == len(sent):
                done.set()

        receiver.listen(handler)
        await asyncio.wait_for(done.wait(), 10)
        assert got == sent
        receiver.close()
        sender.close()
    finally:
        for a, b in channels:
            a.close()
            b.close()


def test_a_request_in_one_of_our_dialogs_goes_to_the_worker_whose_tag_it_carries() -> None:
    tag = Local("127.0.0.1", instance=INSTANCES[2]).tag()
    request = _request("BYE", "device-call-id@phone", to_tag=tag)
    assert owner(request, MARKERS, 3) == 2
    assert owner(request, MARKERS, 3, hashed=False) == 2
    # what names no worker of ours has none, unless hashed (a TCP connection's requests stay put)
    assert owner(_request("BYE", "device-call-id@phone", to_tag="foreign"), MARKERS, 3, hashed=False) is None
