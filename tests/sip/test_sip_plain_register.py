"""`plain_register` reads what the general parser reads, and writes what it writes.

Generated REGISTERs, most in the plain shape and many a little off it (another case, a compact name,
a second Via, a Route, spaces, a port out of range, non-ASCII): whatever `recognise` accepts,
`parse_message` accepts with the same values and makes the same request of (once stamped); the Via
it stamps is `stamp_top_via`'s, and the response it writes is `serialize(make_response(...))`'s,
byte for byte.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.sip import SipParseError, SipRequest, parse_message, parse_name_addr, parse_uri, server_key, top_via
from sipline.sip.message import make_response, serialize
from sipline.sip.plain_register import recognise, response, stamped_via
from sipline.sip.plain_register import request as plain_request
from sipline.sip.routing import stamp_top_via, udp_reply_address

PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

TOKEN = st.text("abcXYZ019-.!%*_+`'~", min_size=1, max_size=12)
OFF = st.sampled_from(["", " ", "é", ";", ",", "\t", "A", ":", "\\", '"', "<"])  # a character that may break a shape


def sometimes(draw: st.DrawFn, plain: st.SearchStrategy[str], *off: str) -> str:
    """Mostly a plain value; now and then one off the plain shape (so both kinds are well covered)."""
    return draw(st.sampled_from(off)) if off and draw(st.integers(0, 11)) == 0 else draw(plain)


HOSTS = st.sampled_from(["example.com", "acme.sip.example.com", "10.0.0.7", "127.0.0.1", "a", "h-1.b"])
USERS = st.sampled_from(["alice", "bob.smith", "u_1+x", "o'neil", "A-9"])


@st.composite
def register_heads(draw: st.DrawFn) -> tuple[bytes, tuple[str, int]]:
    """A REGISTER (mostly in the plain shape, some a little off it) and the address it came from."""
    host = sometimes(draw, HOSTS, "Example.COM", "[::1]", "example.com:5060")
    user = sometimes(draw, USERS, "a%20b", "bad user", "x@y", "")
    via_host = sometimes(draw, HOSTS, "Example.COM", "[::1]", "-x")
    port = (
        draw(st.sampled_from([None, 5060, 40000, 65535]))
        if draw(st.integers(0, 11))
        else draw(st.sampled_from([65536, 0, 99999]))
    )
    branch = "z9hG4bK" + draw(TOKEN) if draw(st.integers(0, 11)) else draw(TOKEN)
    rport = draw(st.sampled_from(["", ";rport", "first"])) if draw(st.integers(0, 11)) else "both"
    sent_by = via_host + ("" if port is None else f":{port}")
    params = {
        "": f";branch={branch}",
        ";rport": f";branch={branch};rport",
        "first": f";rport;branch={branch}",
        "both": f";rport;branch={branch};rport",
    }[rport]
    display = sometimes(draw, st.sampled_from(["", '"Alice" ', '"A b-c" ']), "Alice ", '"A \\" b" ', '"é" ')
    transport = sometimes(draw, st.just("UDP"), "TCP", "udp", "TLS")
    to_params = sometimes(draw, st.just(""), ";tag=1", ";x")
    fields = [
        ("Via", f"SIP/2.0/{transport} {sent_by}{params}"),
        ("Max-Forwards", sometimes(draw, st.sampled_from(["70", "0", "255"]), "256", "x", "-1")),
        ("From", f"{display}<sip:{user}@{host}>;tag={draw(TOKEN)}"),
        ("To", f"{display}<sip:{user}@{host}>{to_params}"),
        ("Call-ID", draw(TOKEN) + sometimes(draw, st.sampled_from(["", "@host"]), "@[::1]", " x")),
        ("CSeq", f"{draw(st.integers(0, 2**32 + 1))} {sometimes(draw, st.just('REGISTER'), 'INVITE', 'register')}"),
        (
            "Contact",
            f"<sip:{user}@{via_host}:{port or 5060}>"
            + draw(st.sampled_from(["", ";expires=60", ';+sip.instance="<urn:x>"'])),
        ),
        ("Expires", sometimes(draw, st.sampled_from(["3600", "0"]), "-1", "x")),
        ("User-Agent", sometimes(draw, st.sampled_from(["sipp", "baresip v3.10.1 (x86_64/linux)"]), "a  b", "é")),
        ("Content-Length", sometimes(draw, st.just("0"), "12", "x", "00")),
    ]
    optional = ["Max-Forwards", "Contact", "Expires", "User-Agent", "Content-Length"]
    fields = [f for f in fields if f[0] not in optional or draw(st.booleans())]
    if draw(st.booleans()):
        fields.append(
            ("Authorization", f'Digest username="{user}", realm="{host}", nonce="n", uri="sip:{host}", response="r"')
        )
    fields = draw(st.permutations(fields))
    lines = [f"REGISTER sip:{host} SIP/2.0", *(f"{name}: {value}" for name, value in fields)]
    # Bend one line a little, sometimes: another spelling of a name, an extra field, a character.
    bend = draw(st.integers(0, 11))
    at = draw(st.integers(0, len(lines) - 1))
    if bend == 1:
        lines[at] = lines[at].lower()
    elif bend == 2:
        extra = [
            "Route: <sip:x;lr>",
            "v: SIP/2.0/UDP h;branch=z9hG4bKx",
            "l: 0",
            "Via: SIP/2.0/UDP h;branch=z9hG4bKy",
            "X-Y: z",
        ]
        lines.insert(at + 1, draw(st.sampled_from(extra)))
    elif bend == 3:
        lines[at] = lines[at] + draw(OFF)
    elif bend == 4:
        lines[at] = lines[at].replace(": ", ":", 1)
    elif bend == 5:
        lines[at] = lines[at].replace(" ", "  ", 1)
    source = (draw(st.sampled_from(["127.0.0.1", "10.0.0.7", "192.0.2.1"])), draw(st.sampled_from([5060, 40000])))
    body = draw(st.sampled_from([b"", b"", b"", b"v=0\r\n"]))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, source


@PROPERTY
@given(register_heads())
def test_what_recognise_reads_the_general_parser_reads_alike(case: tuple[bytes, tuple[str, int]]) -> None:
    data, source = case
    plain = recognise(data)
    if plain is None:
        return
    request = parse_message(data)  # must not raise: recognise accepts only what it accepts
    assert isinstance(request, SipRequest) and request.method == "REGISTER"
    headers = request.headers
    assert parse_uri(request.uri).host == plain.host
    values = (plain.via, plain.from_, plain.to, plain.call_id, plain.cseq, plain.authorization, plain.contact)
    names = ("Via", "From", "To", "Call-ID", "CSeq", "Authorization", "Contact")
    assert values == tuple(headers.get(name) for name in names)
    assert len(headers.get_all("Via")) == 1
    to = parse_uri(parse_name_addr(plain.to).uri)
    assert (plain.to_user, plain.to_host) == (to.user, to.host)
    assert "tag" not in parse_name_addr(plain.to).params  # out of any dialog
    via = top_via(request)
    assert via is not None
    assert (plain.via_host, plain.via_port, plain.branch, plain.rport) == (
        via.host,
        via.port,
        via.branch,
        via.rport is not None,
    )
    assert server_key(request) == plain.server_key()
    assert udp_reply_address(plain.rport, plain.via_port, source) == udp_reply_address(
        via.rport is not None, via.port, source
    )

    stamp_top_via(request, source)
    stamped = stamped_via(plain, *source)
    assert stamped == request.headers.get("Via")
    made = plain_request(plain, stamped)  # what the fast path hands on: the same request
    assert (made.method, made.uri, made.body, made.version) == (
        request.method,
        request.uri,
        request.body,
        request.version,
    )
    assert made.headers.items() == request.headers.items()
    assert made.headers.lookup_keys() == request.headers.lookup_keys()
    extra = [("WWW-Authenticate", 'Digest realm="r", nonce="n"'), ("Server", "sipline/test")]
    expected = serialize(make_response(request, 401, to_tag="tag1", headers=extra))
    written = response("SIP/2.0 401 Unauthorized", plain, stamped, "tag1", [f"{n}: {v}" for n, v in extra])
    assert written == expected


@PROPERTY
@given(register_heads())
def test_what_the_general_parser_refuses_recognise_refuses(case: tuple[bytes, tuple[str, int]]) -> None:
    data, _ = case
    try:
        parse_message(data)
    except SipParseError:
        assert recognise(data) is None


def test_the_registrations_of_sipp_and_of_the_test_phones_are_plain() -> None:
    sipp = (
        b"REGISTER sip:acme.sip.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-3211-1-0;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:bench00001@acme.sip.example.com>;tag=3211SIPpTag001\r\n"
        b"To: <sip:bench00001@acme.sip.example.com>\r\n"
        b"Call-ID: 1-3211@127.0.0.1\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b"Contact: <sip:bench00001@127.0.0.1:5070>\r\n"
        b"Expires: 3600\r\n"
        b"User-Agent: sipp\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    plain = recognise(sipp)
    assert plain is not None
    assert (plain.host, plain.to_user, plain.branch, plain.rport) == (
        "acme.sip.example.com",
        "bench00001",
        "z9hG4bK-3211-1-0",
        True,
    )
    assert stamped_via(plain, "127.0.0.1", 5070) == (
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-3211-1-0;rport=5070;received=127.0.0.1"
    )
    assert recognise(sipp.replace(b"CSeq: 1 REGISTER", b"CSeq: 1 REGISTER\r\nRoute: <sip:x;lr>")) is None
    assert recognise(sipp.replace(b"Via:", b"v:")) is None
