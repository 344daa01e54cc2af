"""CPU of the sans-IO SIP core's per-message work: parse, server key, respond, serialise.

    .venv/bin/python bench/sip_core.py [N]      # N operations of each kind (default 20000)

Prints µs per operation (process CPU time, best of 3 rounds) for a REGISTER with Authorization,
an INVITE with SDP and a 200 OK to an INVITE (a B2BUA parses and builds such messages ~16 times
per call). Each message differs in its branch, tags and Call-ID (a pool of 4096 is cycled through),
as real traffic does, so the parser's small caches of recent URIs and Vias hit only where they
would in service. Single-threaded, no I/O: run it before and after a change to sipline/sip.

Against another checkout's sipline/sip (it needs nothing but the standard library): run from outside
the repository, with -S so that the editable install does not win over PYTHONPATH:

    git archive main sipline | tar -x -C /tmp/base
    cd /tmp && PYTHONPATH=/tmp/base .venv/bin/python -S /path/to/bench/sip_core.py
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from sipline.sip.message import SipRequest, SipResponse, make_response, parse_message, serialize
from sipline.sip.transaction import client_key, read_cseq, server_key

REGISTER = (  # {i}: a different branch, tag, Call-ID and nonce per message
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK776asdhds{i};rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@example.com>;tag=1928301774{i}\r\n"
    "To: <sip:alice@example.com>\r\n"
    "Call-ID: a84b4c76e66710{i}@pc33.example.com\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Contact: <sip:alice@192.0.2.10:5070;transport=udp>;expires=3600\r\n"
    'Authorization: Digest username="alice", realm="example.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093.{i}", uri="sip:example.com", '
    'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cseq=2\r\n'
    "Expires: 3600\r\n"
    "User-Agent: Zoiper rv2.10.20.2\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)

_SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKnashds{i};rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=1928301774{i}\r\n'
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: 3848276298220188511{i}@pc33.example.com\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.10:5070>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    "Supported: replaces, timer\r\n"
    "User-Agent: Zoiper rv2.10.20.2\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(_SDP)}\r\n"
    "\r\n"
)

OK = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK74bf9{i};received=203.0.113.5;rport=5060\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl{i}\r\n'
    "To: <sip:bob@example.com>;tag=8321234356{i}\r\n"
    "Call-ID: 3848276298220188511{i}@203.0.113.5\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:bob@198.51.100.7:5060>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(_SDP)}\r\n"
    "\r\n"
)
POOL = 4096


def _pool(template: str, body: bytes = b"") -> list[bytes]:
    return [template.format(i=i).encode() + body for i in range(POOL)]


def _time(fn: Callable[[int], object], n: int) -> float:
    """Best of 3 rounds of n calls, in µs of process CPU per call."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for i in range(n):
            fn(i % POOL)
        best = min(best, time.process_time() - start)
    return best / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    registers, invites, oks = _pool(REGISTER), _pool(INVITE, _SDP), _pool(OK, _SDP)
    parsed_registers = [_request(parse_message(data)) for data in registers]
    parsed_invites = [_request(parse_message(data)) for data in invites]
    parsed_oks = [parse_message(data) for data in oks]
    cases: list[tuple[str, Callable[[int], object]]] = [
        ("parse REGISTER", lambda i: parse_message(registers[i])),
        ("parse INVITE+SDP", lambda i: parse_message(invites[i])),
        ("parse 200 OK+SDP", lambda i: parse_message(oks[i])),
        # The service asks a new request for its server key 3 times, and its CSeq.
        ("parse REGISTER + server_key x3 + read_cseq", lambda i: _keys(_request(parse_message(registers[i])))),
        ("parse 200 OK + client_key", lambda i: client_key(_response(parse_message(oks[i])))),
        (
            "make_response 401 REGISTER",
            lambda i: make_response(parsed_registers[i], 401, headers=[("WWW-Authenticate", "x")]),
        ),
        ("make_response 200 INVITE (to_tag)", lambda i: make_response(parsed_invites[i], 200, to_tag="t", body=_SDP)),
        ("serialize REGISTER", lambda i: serialize(parsed_registers[i])),
        ("serialize INVITE+SDP", lambda i: serialize(parsed_invites[i])),
        ("serialize 200 OK+SDP", lambda i: serialize(parsed_oks[i])),
        (
            "respond: make_response 200 + serialize",
            lambda i: serialize(make_response(parsed_registers[i], 200, headers=[("Contact", "<sip:a@b>;expires=60")])),
        ),
    ]
    total = 0.0
    for name, fn in cases:
        us = _time(fn, n)
        total += us
        print(f"{name:45s} {us:8.2f} µs")
    print(f"{'sum':45s} {total:8.2f} µs")


def _request(message: SipRequest | SipResponse) -> SipRequest:
    assert isinstance(message, SipRequest)
    return message


def _response(message: SipRequest | SipResponse) -> SipResponse:
    assert isinstance(message, SipResponse)
    return message


def _keys(request: SipRequest) -> object:
    server_key(request)
    server_key(request)
    server_key(request)
    return read_cseq(request.headers)


if __name__ == "__main__":
    main()
