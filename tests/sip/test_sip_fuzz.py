"""Property tests: whatever arrives, the core answers with a value or SipParseError, never a crash."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.sip import (
    PING,
    RegisterError,
    RegisterPolicy,
    RegisterSuccess,
    SipParseError,
    SipRequest,
    StreamFramer,
    parse_authorization,
    parse_message,
    process_register,
    serialize,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

SEEDS = [
    b"REGISTER sip:acme.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKr1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@acme.example>;tag=f1\r\n'
    b"To: <sip:alice@acme.example>\r\n"
    b"Call-ID: call-1@192.0.2.10\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060;transport=udp>;expires=3600;q=0.7, sip:b@h\r\n"
    b'Authorization: Digest username="alice", realm="acme.example", nonce="n", uri="sip:acme.example", '
    b'response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="c"\r\n'
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"body",
    b"SIP/2.0 401 Unauthorized\r\n"
    b"v: SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1\r\n"
    b"f: sip:a@b;tag=1\r\nt: sip:a@b;tag=2\r\ni: x\r\nCSeq: 1 INVITE\r\n"
    b'WWW-Authenticate: Digest realm="b", nonce="n", algorithm=SHA-256, qop="auth"\r\n'
    b"l: 0\r\n\r\n",
]

SIP_ALPHABET = st.sampled_from([*b'\r\n \t:;,<>"\\@=%/.?*-_0123456789abcdefSIPVRGTUD', 0x00, 0xFF, 0xC3])


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "duplicate"]))
        if op == "flip" and position < len(data):
            data[position] = draw(SIP_ALPHABET)
        elif op == "insert":
            data[position:position] = bytes(draw(st.lists(SIP_ALPHABET, max_size=8)))
        elif op == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[position:]
        elif op == "duplicate":
            data[position:position] = data[position : position + draw(st.integers(1, 64))]
    return bytes(data)


def parses_or_refuses(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        assert isinstance(exc.reason, str)
        assert exc.partial is None or isinstance(exc.partial, SipRequest)
        return
    # Whatever parsed must serialise and parse again to the same thing.
    again = parse_message(serialize(msg))
    assert type(again) is type(msg)
    assert again.body == msg.body


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_only_raise_sip_parse_error(data):
    parses_or_refuses(data)


@FUZZ
@given(mutated())
def test_mutated_messages_only_raise_sip_parse_error(data):
    parses_or_refuses(data)


@FUZZ
@given(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80),
    st.sampled_from(["Via", "From", "To", "Contact", "CSeq", "Call-ID", "Content-Length", "Max-Forwards", "Expires"]),
)
def test_arbitrary_header_values_never_crash_parser_or_registrar(value, name):
    clean = value.replace("\r", " ").replace("\n", " ")
    lines = [line for line in SEEDS[0].split(b"\r\n") if not line.lower().startswith(name.lower().encode() + b":")]
    lines.insert(1, f"{name}: {clean}".encode())
    try:
        msg = parse_message(b"\r\n".join(lines))
    except SipParseError:
        return
    assert isinstance(msg, SipRequest)
    result = process_register(msg, [], 1_700_000_000.0, RegisterPolicy())
    assert isinstance(result, RegisterSuccess | RegisterError)


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_authorization_values_never_raise(value):
    parse_authorization(value)
    parse_authorization("Digest " + value)


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=12))
def test_framer_on_arbitrary_chunks_only_raises_sip_parse_error(chunks):
    framer = StreamFramer(max_size=4096)
    try:
        for chunk in chunks:
            for item in framer.feed(chunk):
                assert item == PING or item[:2] != b"\r\n"
    except SipParseError:
        pass


@FUZZ
@given(st.lists(st.sampled_from([SEEDS[0], SEEDS[1], PING]), min_size=1, max_size=6), st.data())
def test_framer_recovers_the_same_items_however_the_stream_is_cut(items, data):
    stream = b"".join(items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = StreamFramer()
    out: list[bytes] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        out.extend(framer.feed(stream[start:end]))
    assert out == items
    assert framer.buffered == 0
