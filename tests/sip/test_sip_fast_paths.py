"""The parser's shortcuts give what the full path gives, and derived values follow their headers.

`message._split_head` and `message._parse_clean_head` read the usual well-formed head without the
line-by-line checks; `routing.stamp_top_via` tells `parse_via` the stamped Via it formatted;
`Headers.derived` keeps the top Via and CSeq until the headers change. Each claim is checked here
against the code it stands in for, on generated input, well-formed and not.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.sip import (
    SipParseError,
    SipRequest,
    SipResponse,
    make_response,
    parse_message,
    parse_name_addr,
    parse_uri,
    read_cseq,
    server_key,
    top_via,
)
from sipline.sip import message as message_module
from sipline.sip.headers import COMPACT_FORMS, Headers, _parse_via, parse_via
from sipline.sip.message import _HEAD_END_RE, _LINE_RE, _parse_clean_head, _parse_header_lines, _split_head
from sipline.sip.routing import format_via, stamp_top_via, stamp_via

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

NAMES = st.sampled_from(
    [
        "Via",
        "via",
        "VIA",
        "From",
        "To",
        "Call-ID",
        "call-id",
        "CSeq",
        "Contact",
        "Max-Forwards",
        "Content-Length",
        "X-Custom",
        "x-custom",
        "Allow",
        "Route",
        "Authorization",
        "Via ",
        "To\t",
        *COMPACT_FORMS,
        *(letter.upper() for letter in COMPACT_FORMS),
    ]
)
# Printable text plus what strip() treats specially (SP, HT, NBSP, em space) and a quoted-pair.
VALUE_CHARS = st.sampled_from([*"abcXYZ019 ;,=:<>@\"'./-_+~%*!`", " ", "\t", "\xa0", "\u2003", "é", "\\\\"])
VALUES = st.lists(VALUE_CHARS, max_size=30).map("".join)
START_LINES = st.sampled_from(
    [
        "REGISTER sip:example.com SIP/2.0",
        "INVITE sip:bob@example.com SIP/2.0",
        "SIP/2.0 200 OK",
        "SIP/2.0 100 ",
        "OPTIONS sip:x\x01y SIP/2.0",  # a control character in the start line is the start line's business
    ]
)


@st.composite
def heads(draw: st.DrawFn) -> str:
    """A header section with CRLF line ends, sometimes spoiled by one odd line."""
    lines = [draw(START_LINES)]
    for _ in range(draw(st.integers(0, 14))):
        lines.append(f"{draw(NAMES)}:{draw(VALUES)}")
    if draw(st.booleans()):
        odd = draw(
            st.sampled_from(
                [" folded continuation", "\tfolded", "no colon here", "bad name: x", ": empty name", "X: a\x01b",
                 "X: a\\\x01b", "X: \x7f", "X:", "X-\x0b: y", "Via: a\rb"]
            )
        )  # fmt: skip
        lines.insert(draw(st.integers(1, len(lines))), odd)
    return "\r\n".join(lines)


def _crlf_only(head: str) -> bool:
    """`_parse_clean_head`'s precondition, which `_split_head` establishes."""
    return head.count("\r") == head.count("\n") == head.count("\r\n")


def _fields(headers: Headers) -> tuple[list[tuple[str, str]], list[str]]:
    return headers.items(), list(headers._keys)


@PROPERTY
@given(heads())
def test_clean_head_gives_what_the_line_by_line_path_gives(head):
    lines = _LINE_RE.split(head)
    full, error = _parse_header_lines(lines[1:])
    clean = _parse_clean_head(head) if _crlf_only(head) else None
    if clean is None:
        return  # the full path decides, whatever it finds
    start_line, headers = clean
    assert error is None
    assert start_line == lines[0]
    assert _fields(headers) == _fields(full)


@PROPERTY
@given(heads())
def test_clean_head_is_taken_for_every_well_formed_head(head):
    lines = _LINE_RE.split(head)
    _, error = _parse_header_lines(lines[1:])
    has_control = any((ord(c) < 32 and c not in "\r\n") or c == "\x7f" for c in "".join(lines[1:]))
    folded = any(line[:1] in (" ", "\t") for line in lines[1:])
    if error is None and not has_control and not folded and _crlf_only(head):
        assert _parse_clean_head(head) is not None


@PROPERTY
@given(st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\n\n", b":", b" "]), max_size=24))
def test_split_head_finds_the_end_the_regex_finds(parts):
    data = b"".join(parts)
    match = _HEAD_END_RE.search(data)
    if match is None:
        with pytest.raises(SipParseError):
            _split_head(data)
        return
    head, rest, crlf_only = _split_head(data)
    assert (head, rest) == (data[: match.start()], data[match.end() :])
    if crlf_only:
        assert head.count(b"\r") == head.count(b"\n") == head.count(b"\r\n")


def _without_shortcuts(data: bytes) -> object:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(message_module, "_parse_clean_head", lambda head: None)
        return _outcome(data)


def _outcome(data: bytes) -> object:
    try:
        msg = parse_message(data)
    except SipParseError as exc:
        partial = exc.partial
        if partial is None:
            return ("refused", exc.reason)
        return ("refused", exc.reason, partial.method, partial.uri, partial.headers.items())
    fields = _fields(msg.headers)
    if isinstance(msg, SipRequest):
        return ("request", msg.method, msg.uri, msg.body, fields)
    assert isinstance(msg, SipResponse)
    return ("response", msg.status, msg.reason, msg.body, fields)


WELL_FORMED = [
    "REGISTER sip:example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK776;rport",
    "v: SIP/2.0/TCP [2001:db8::1];branch=z9hG4bK1, SIP/2.0/UDP h",
    "Max-Forwards: 70",
    'From: "Alice" <sip:alice@example.com>;tag=1928',
    "To: <sip:alice@example.com>",
    "Call-ID: a84b4c76e66710@pc33",
    "CSeq: 2 REGISTER",
    "Contact: <sip:alice@192.0.2.10:5070>;expires=3600",
    "X-Note: \\\x01 escaped",
]


@PROPERTY
@given(
    st.permutations(WELL_FORMED[1:]),
    st.integers(0, len(WELL_FORMED) - 1),
    st.sampled_from(["", "X-Extra : y", " folded", "Bad Name: x", "X: a\x01", "To: <sip:b@c>", "CSeq: 3 INVITE"]),
    st.sampled_from(["\r\n", "\n"]),
    st.sampled_from([b"", b"body", b"\r\nx"]),
)
def test_parse_message_with_and_without_shortcuts_agree(lines, cut, extra, newline, body):
    """Same message or same refusal (reason and partial request) on near-well-formed messages."""
    lines = [WELL_FORMED[0], *lines[:cut], *([extra] if extra else []), *lines[cut:]]
    data = (newline.join(lines) + newline + newline).encode() + body
    assert _outcome(data) == _without_shortcuts(data)


@PROPERTY
@given(heads(), st.sampled_from([b"", b"hello"]))
def test_parse_message_with_and_without_shortcuts_agree_on_generated_heads(head, body):
    data = head.encode() + b"\r\n\r\n" + body
    assert _outcome(data) == _without_shortcuts(data)


# --- the stamped top Via -----------------------------------------------------------------------

PARAM_VALUES = st.one_of(
    st.none(),
    st.sampled_from(["z9hG4bK1", "abc", "5060", "[2001:db8::1]", "1.2.3.4"]),
    st.text(st.sampled_from(list('ab ;,="\\<>é')), min_size=1, max_size=8).map(
        lambda v: '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    ),
)


@st.composite
def vias(draw: st.DrawFn) -> str:
    protocol = draw(st.sampled_from(["SIP/2.0/UDP", "sip/2.0/tcp", "SIP / 2.0 / TLS", "SIP/2.0/WSS"]))
    host = draw(st.sampled_from(["192.0.2.10", "Example.COM", "[2001:DB8::1]", "h", "a.b."]))
    port = draw(st.sampled_from(["", ":5060", ":05070", " : 6000"]))
    text = f"{protocol} {host}{port}"
    for name in draw(st.lists(st.sampled_from(["branch", "rport", "received", "ttl", "X", "maddr"]), max_size=4)):
        value = draw(PARAM_VALUES)
        text += f" ; {name}" if value is None else f";{name}={value}"
    return text


@PROPERTY
@given(vias(), st.sampled_from([("192.0.2.10", 5060), ("203.0.113.7", 40000), ("2001:db8::1", 1)]))
def test_a_formatted_stamped_via_parses_back_to_itself(text, source):
    try:
        via = _parse_via(text)
    except SipParseError:
        return
    stamped = stamp_via(via, source)
    assert _parse_via(format_via(stamped)) == stamped


def _register(via: str = "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bKabc;rport") -> SipRequest:
    data = (
        "REGISTER sip:example.com SIP/2.0\r\n"
        f"Via: {via}\r\n"
        "From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\n"
        "Call-ID: c1\r\nCSeq: 7 REGISTER\r\nContact: <sip:a@192.0.2.10:5070>\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


def test_server_key_follows_the_stamped_via():
    request = _register()
    assert server_key(request) == ("z9hG4bKabc", "192.0.2.10:5070", "REGISTER")
    stamped = stamp_top_via(request, ("203.0.113.7", 40000))
    assert top_via(request) == stamped == parse_via(request.headers.get("Via") or "")
    assert top_via(request).params["received"] == "203.0.113.7"  # type: ignore[union-attr]
    assert server_key(request) == ("z9hG4bKabc", "192.0.2.10:5070", "REGISTER")


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h.add("Via", "SIP/2.0/UDP other;branch=z9hG4bKzzz"),  # not the top one: same key
        lambda h: h.set("Via", "SIP/2.0/UDP other;branch=z9hG4bKnew"),
        lambda h: h.set("CSeq", "8 REGISTER"),
        lambda h: h.remove("Via"),
        lambda h: h.remove("CSeq"),
        lambda h: h.replace_value(0, "SIP/2.0/TCP x:1;branch=z9hG4bKrep"),
        lambda h: h.add_parsed("CSeq", "9 REGISTER"),
    ],
)
def test_derived_values_follow_every_change_of_the_headers(change):
    request = _register()
    assert read_cseq(request.headers) == (7, "REGISTER") and server_key(request) is not None
    change(request.headers)
    fresh = SipRequest(request.method, request.uri, Headers(request.headers.items()))
    assert read_cseq(request.headers) == read_cseq(fresh.headers)
    assert top_via(request) == top_via(fresh)
    assert server_key(request) == server_key(fresh)


def test_a_copy_has_values_of_its_own():
    headers = _register().headers
    assert read_cseq(headers) == (7, "REGISTER")
    copy = headers.copy()
    copy.set("CSeq", "8 REGISTER")
    assert read_cseq(copy) == (8, "REGISTER") and read_cseq(headers) == (7, "REGISTER")
    assert copy != headers and Headers(headers.items()) == headers


# --- responses and parameters --------------------------------------------------------------------


def _reference_response_headers(request: SipRequest, to_tag: str | None) -> list[tuple[str, str]]:
    """What make_response copied before `Headers.pick`: a walk over every field, each added again."""
    out = Headers()
    copied: dict[str, str] = {}
    for name, value in request.headers.items():
        if name == "Via":
            out.add(name, value)
        elif name in ("From", "To", "Call-ID", "CSeq") and name not in copied:
            copied[name] = value
    for name in ("From", "To", "Call-ID", "CSeq"):
        if name in copied:
            value = copied[name]
            if name == "To" and to_tag is not None and "tag" not in parse_name_addr(value).params:
                value = f"{value};tag={to_tag}"
            out.add(name, value)
    return out.items()


@PROPERTY
@given(
    st.permutations(WELL_FORMED[1:]),
    st.sampled_from(["", "To: <sip:b@c>;tag=x", "Via: SIP/2.0/UDP p;branch=z9hG4bKp", "i: other", "CSeq: 2 REGISTER"]),
    st.sampled_from([None, "t1"]),
)
def test_make_response_copies_what_it_copied_before(lines, extra, to_tag):
    data = ("\r\n".join([WELL_FORMED[0], *lines, *([extra] if extra else [])]) + "\r\n\r\n").encode()
    try:
        request = parse_message(data)
    except SipParseError:
        return  # a second To, Call-ID or CSeq
    assert isinstance(request, SipRequest)
    response = make_response(request, 200, to_tag=to_tag, headers=[("Contact", "<sip:x@y>")])
    assert response.headers.items() == [*_reference_response_headers(request, to_tag), ("Contact", "<sip:x@y>")]


@PROPERTY
@given(vias())
def test_params_answer_as_a_mapping_does(text):
    try:
        params = _parse_via(text).params
    except SipParseError:
        return
    assert dict(params.items()) == {name: params[name] for name in params}
    assert list(params.keys()) == list(params) and list(params.values()) == [params[n] for n in params]
    for name in ("branch", "rport", "nope"):
        assert params.get(name) == Mapping.get(params, name)  # the mixin it replaces
        assert params.get(name, "d") == Mapping.get(params, name, "d")


CONTACT_CHARS = st.sampled_from([*"abAB09:@;=.-_+~%?&,<>\"' \t", "sip:", "sips:", "tel:", "é", "\\"])


@st.composite
def contact_values(draw: st.DrawFn) -> str:
    """Contact values, name-addr and addr-spec, valid and not."""
    scheme = draw(st.sampled_from(["sip:", "sips:", "SIP:", "tel:", ""]))
    user_host = draw(st.sampled_from(["alice@example.com", "a@192.0.2.1:5070", "Bob@[2001:db8::1]", "h", ""]))
    tail = draw(st.sampled_from(["", ";transport=udp", ";ob", "?x=y", ';lr;x="q"']))
    noise = draw(st.one_of(st.just(""), st.lists(CONTACT_CHARS, max_size=6).map("".join)))
    uri = scheme + user_host + tail + noise
    display = draw(st.sampled_from(["", '"Alice" ', "Bob ", '"a\\"b" ']))
    params = draw(st.sampled_from(["", ";expires=60", ";q=0.5", " ;x", ';+sip.instance="<urn:a>"']))
    return draw(st.sampled_from([f"{display}<{uri}>{params}", f"{uri}{params}", f"<{uri}>", uri]))


@PROPERTY
@given(contact_values())
def test_a_stored_contact_sent_again_in_angle_brackets_reads_as_the_parser_reads_it(value):
    """sip.registrar reads `<S>`, S a live binding's contact, without parsing it: S was the URI of
    a Contact that parsed (name-addr and URI), and `<S>` must then parse to S without parameters."""
    try:
        stored = parse_name_addr(value).uri
        parse_uri(stored)
    except SipParseError:
        return
    again = parse_name_addr(f"<{stored}>")
    assert (again.display, again.uri, dict(again.params)) == (None, stored, {})
