import pytest

from sipline.sip import (
    MAX_MESSAGE_SIZE,
    Headers,
    SipParseError,
    SipRequest,
    SipResponse,
    generate_branch,
    generate_tag,
    make_response,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
    serialize,
)

REGISTER = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:alice@example.com>;tag=111\r\n"
    b"To: <sip:alice@example.com>\r\n"
    b"Call-ID: reg-1@192.0.2.10\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:alice@192.0.2.10:5060>\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def parse_request(data: bytes) -> SipRequest:
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    return msg


def replace_header(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new)


# --- Headers ------------------------------------------------------------------------------


def test_compact_headers_are_expanded():
    headers = Headers(
        [
            ("i", "x"),
            ("m", "<sip:a@b>"),
            ("f", "F"),
            ("t", "T"),
            ("v", "SIP/2.0/UDP h"),
            ("l", "0"),
            ("c", "text/plain"),
            ("k", "path"),
            ("e", "gzip"),
            ("s", "hi"),
            ("o", "reg"),
            ("u", "talk"),
            ("r", "<sip:c@d>"),
            ("b", "<sip:e@f>"),
            ("x", "90"),
        ]
    )
    assert [name for name, _ in headers.items()] == [
        "Call-ID",
        "Contact",
        "From",
        "To",
        "Via",
        "Content-Length",
        "Content-Type",
        "Supported",
        "Content-Encoding",
        "Subject",
        "Event",
        "Allow-Events",
        "Refer-To",
        "Referred-By",
        "Session-Expires",
    ]


def test_header_names_are_case_insensitive():
    headers = Headers([("cAlL-iD", "abc")])
    assert headers.get("CALL-ID") == "abc"
    assert headers.get("i") == "abc"
    assert "call-id" in headers
    assert headers.items() == [("Call-ID", "abc")]


def test_get_all_splits_list_headers_outside_quotes_and_brackets():
    headers = Headers([("Contact", '"Doe, John" <sip:a@b;x=1,2>, <sip:c@d>'), ("Contact", "sip:e@f")])
    assert headers.get_all("Contact") == ['"Doe, John" <sip:a@b;x=1,2>', "<sip:c@d>", "sip:e@f"]
    assert headers.get("Contact") == '"Doe, John" <sip:a@b;x=1,2>'


def test_get_all_does_not_split_authorization_or_date():
    value = 'Digest username="a", realm="b", nonce="c", uri="sip:b", response="d"'
    headers = Headers([("Authorization", value), ("Date", "Sat, 13 Nov 2010 23:29:00 GMT")])
    assert headers.get_all("Authorization") == [value]
    assert headers.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]


def test_unknown_header_values_are_not_split():
    headers = Headers([("X-Thing", "a, b")])
    assert headers.get_all("X-Thing") == ["a, b"]


def test_set_replaces_all_values_in_place():
    headers = Headers([("Via", "1"), ("Route", "r"), ("Via", "2")])
    headers.set("v", "3")
    assert headers.items() == [("Via", "3"), ("Route", "r")]


def test_remove_deletes_every_value():
    headers = Headers([("Via", "1"), ("Route", "r"), ("Via", "2")])
    headers.remove("VIA")
    assert headers.items() == [("Route", "r")]
    assert "Via" not in headers


def test_header_value_with_line_break_is_refused():
    with pytest.raises(ValueError):
        Headers().add("Subject", "hi\r\nVia: injected")


# --- parse_message ------------------------------------------------------------------------


def test_register_parses_into_request():
    msg = parse_request(REGISTER)
    assert (msg.method, msg.uri, msg.version, msg.body) == ("REGISTER", "sip:example.com", "SIP/2.0", b"")
    assert msg.headers.get("CSeq") == "1 REGISTER"


def test_leading_crlfs_are_skipped():
    assert parse_request(b"\r\n\r\n" + REGISTER).method == "REGISTER"


def test_folded_header_lines_are_unfolded():
    data = replace_header(REGISTER, b"Max-Forwards: 70\r\n", b"Subject: one\r\n two\r\n\tthree\r\n")
    assert parse_request(data).headers.get("Subject") == "one two three"


def test_whitespace_around_header_colon_is_ignored():
    data = replace_header(REGISTER, b"Max-Forwards: 70", b"Max-Forwards \t:   70  ")
    assert parse_request(data).headers.get("Max-Forwards") == "70"


def test_bare_lf_line_ends_are_tolerated():
    assert parse_request(REGISTER.replace(b"\r\n", b"\n")).method == "REGISTER"


def test_body_is_cut_at_content_length_and_trailing_bytes_ignored():
    data = replace_header(REGISTER, b"Content-Length: 0", b"Content-Length: 5") + b"hello, trailing junk"
    assert parse_request(data).body == b"hello"


def test_missing_content_length_takes_rest_of_datagram_as_body():
    data = replace_header(REGISTER, b"Content-Length: 0\r\n", b"") + b"body"
    assert parse_request(data).body == b"body"


def test_content_length_larger_than_data_is_refused():
    data = replace_header(REGISTER, b"Content-Length: 0", b"Content-Length: 10") + b"short"
    with pytest.raises(SipParseError, match="Content-Length"):
        parse_message(data)


def test_oversized_message_is_refused():
    with pytest.raises(SipParseError, match="larger"):
        parse_message(REGISTER + b"x" * MAX_MESSAGE_SIZE)


@pytest.mark.parametrize("header", [b"Via", b"From", b"To", b"Call-ID", b"CSeq"])
def test_missing_mandatory_header_is_refused(header):
    lines = [line for line in REGISTER.split(b"\r\n") if not line.startswith(header + b":")]
    with pytest.raises(SipParseError, match="missing"):
        parse_message(b"\r\n".join(lines))


def test_missing_max_forwards_is_tolerated():
    assert parse_request(replace_header(REGISTER, b"Max-Forwards: 70\r\n", b"")).method == "REGISTER"


def test_max_forwards_above_255_is_refused():
    with pytest.raises(SipParseError, match="Max-Forwards"):
        parse_message(replace_header(REGISTER, b"Max-Forwards: 70", b"Max-Forwards: 256"))


@pytest.mark.parametrize("cseq", [b"4294967296 REGISTER", b"-1 REGISTER", b"one REGISTER", b"1", b"1 REGISTER x"])
def test_cseq_must_be_32_bit_number_and_method(cseq):
    with pytest.raises(SipParseError, match="CSeq"):
        parse_message(replace_header(REGISTER, b"1 REGISTER", cseq))


def test_largest_32_bit_cseq_is_accepted():
    assert parse_request(replace_header(REGISTER, b"1 REGISTER", b"4294967295 REGISTER"))


def test_cseq_method_must_match_request_method():
    with pytest.raises(SipParseError, match="CSeq method"):
        parse_message(replace_header(REGISTER, b"1 REGISTER", b"1 INVITE"))


def test_non_utf8_header_section_is_refused():
    with pytest.raises(SipParseError, match="UTF-8"):
        parse_message(replace_header(REGISTER, b"Max-Forwards: 70", b"X-Bin: \xff\xfe"))


def test_binary_garbage_is_refused_without_partial():
    with pytest.raises(SipParseError) as caught:
        parse_message(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n")
    assert caught.value.partial is None


def test_header_line_without_colon_is_refused_but_answerable():
    with pytest.raises(SipParseError) as caught:
        parse_message(replace_header(REGISTER, b"Max-Forwards: 70", b"this is not a header"))
    assert caught.value.partial is not None
    assert caught.value.partial.headers.get("Call-ID") == "reg-1@192.0.2.10"


def test_partial_request_carries_only_the_headers_a_400_needs():
    with pytest.raises(SipParseError) as caught:
        parse_message(replace_header(REGISTER, b"1 REGISTER", b"1 INVITE"))
    partial = caught.value.partial
    assert partial is not None
    assert [name for name, _ in partial.headers.items()] == ["Via", "From", "To", "Call-ID", "CSeq"]


def test_message_without_blank_line_is_refused():
    with pytest.raises(SipParseError, match="empty line"):
        parse_message(REGISTER.rstrip(b"\r\n"))


def test_response_parses():
    data = replace_header(REGISTER, b"REGISTER sip:example.com SIP/2.0", b"SIP/2.0 401 Unauthorized")
    msg = parse_message(data)
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason) == (401, "Unauthorized")


@pytest.mark.parametrize("line", [b"SIP/2.0 99 Low", b"SIP/2.0 700 High", b"SIP/2.0 20 OK", b"SIP/3.0 200 OK"])
def test_malformed_status_line_is_refused(line):
    with pytest.raises(SipParseError):
        parse_message(replace_header(REGISTER, b"REGISTER sip:example.com SIP/2.0", line))


# --- serialize / make_response ------------------------------------------------------------


def test_serialize_round_trips_and_sets_content_length():
    msg = parse_request(REGISTER)
    msg.body = b"abc"
    wire = serialize(msg)
    assert b"Content-Length: 3\r\n\r\nabc" in wire
    assert wire.count(b"Content-Length") == 1
    again = parse_request(wire)
    msg.headers.set("Content-Length", "3")
    assert (again.headers, again.body) == (msg.headers, b"abc")


def test_serialize_adds_content_length_when_missing():
    response = SipResponse(200, "OK", Headers([("Call-ID", "x")]))
    assert serialize(response) == b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"


def test_make_response_copies_vias_from_to_call_id_cseq():
    msg = parse_request(replace_header(REGISTER, b"Max-Forwards: 70", b"Via: SIP/2.0/TCP proxy.example.com"))
    response = make_response(msg, 200)
    assert response.reason == "OK"
    assert response.headers.items() == [
        ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKabc;rport"),
        ("Via", "SIP/2.0/TCP proxy.example.com"),
        ("From", "<sip:alice@example.com>;tag=111"),
        ("To", "<sip:alice@example.com>"),
        ("Call-ID", "reg-1@192.0.2.10"),
        ("CSeq", "1 REGISTER"),
    ]


def test_make_response_adds_to_tag_only_when_absent():
    msg = parse_request(REGISTER)
    assert make_response(msg, 200, to_tag="xyz").headers.get("To") == "<sip:alice@example.com>;tag=xyz"
    tagged = parse_request(
        replace_header(REGISTER, b"To: <sip:alice@example.com>", b"To: <sip:alice@example.com>;tag=a")
    )
    assert make_response(tagged, 200, to_tag="xyz").headers.get("To") == "<sip:alice@example.com>;tag=a"


def test_make_response_appends_extra_headers_and_body():
    response = make_response(parse_request(REGISTER), 423, headers=[("Min-Expires", "60")], body=b"x")
    assert response.reason == "Interval Too Brief"
    assert response.headers.get("Min-Expires") == "60"
    assert response.body == b"x"


def test_generated_tags_and_branches_are_unique_and_branches_carry_magic_cookie():
    assert generate_tag() != generate_tag()
    branch = generate_branch()
    assert branch.startswith("z9hG4bK") and branch != generate_branch()


# --- URI, name-addr, Via ------------------------------------------------------------------


def test_parse_uri_splits_all_components():
    uri = parse_uri("SIPS:Alice:secret@AtLanta.COM:5061;Transport=TCP;lr?Subject=hi")
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == ("sips", "Alice", "secret", "atlanta.com", 5061)
    assert uri.params == {"transport": "TCP", "lr": None}
    assert uri.headers == "Subject=hi"


def test_parse_uri_keeps_ipv6_brackets():
    uri = parse_uri("sip:[2001:DB8::1]:5070")
    assert (uri.host, uri.port, uri.user) == ("[2001:db8::1]", 5070, None)


@pytest.mark.parametrize(
    "text",
    [
        "tel:+1555",
        "sip:",
        "sip:@host",
        "sip:a@",
        "sip:a@host:99999",
        "sip:a@host:",
        "sip:a b@host",
        "sip:a@ho st",
        "sip:a%zz@host",
        "sip:a@host;;x",
        "sip:a@[::1",
        "<sip:a@b>",
    ],
)
def test_parse_uri_refuses_garbage(text):
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_name_addr_with_quoted_display_and_params():
    addr = parse_name_addr('"Alice \\"A\\"" <sip:alice@example.com;transport=tcp>;tag=9;expires=60')
    assert addr.display == 'Alice "A"'
    assert addr.uri == "sip:alice@example.com;transport=tcp"
    assert addr.params == {"tag": "9", "expires": "60"}


def test_addr_spec_params_after_semicolon_are_header_params():
    addr = parse_name_addr("sip:alice@example.com;tag=9")
    assert (addr.display, addr.uri, addr.params) == (None, "sip:alice@example.com", {"tag": "9"})


def test_name_addr_with_token_display_name():
    assert parse_name_addr("Alice  Smith <sip:a@b>").display == "Alice Smith"


@pytest.mark.parametrize(
    "text",
    [
        '"unterminated <sip:a@b>',
        "<sip:a@b",
        "Bell, Alex <sip:a@b>",
        "< sip:a@b >",
        "sip:a@b?x=y",
        "<sip:a@b>;;",
        "<sip:a@b> junk",
        "<sip:a@b>;tag=a b",
    ],
)
def test_parse_name_addr_refuses_garbage(text):
    with pytest.raises(SipParseError):
        parse_name_addr(text)


def test_parse_via_fields_and_rport_forms():
    via = parse_via("SIP/2.0/udp Host.Example.com:5062;branch=z9hG4bKx;rport;received=192.0.2.1")
    assert (via.protocol, via.transport, via.host, via.port) == ("SIP/2.0/UDP", "UDP", "host.example.com", 5062)
    assert (via.branch, via.rport, via.received) == ("z9hG4bKx", "", "192.0.2.1")
    assert parse_via("SIP/2.0/TCP h;rport=5070").rport == "5070"
    assert parse_via("SIP/2.0/TCP h").rport is None


def test_parse_via_ipv6_sent_by():
    via = parse_via("SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKy")
    assert (via.host, via.port) == ("[2001:db8::9]", 5061)


@pytest.mark.parametrize(
    "text", ["SIP/2.0 host", "SIP/2.0/UDP", "SIP/2.0/UDP host;;", "SIP/2.0/UDP ho st", "SIP/2.0/UDP host:70000"]
)
def test_parse_via_refuses_garbage(text):
    with pytest.raises(SipParseError):
        parse_via(text)


def test_control_characters_in_header_values_are_refused_with_a_routable_400() -> None:
    message = (
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKctl\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: abcd\r\n"
        b"CSeq: 1 REGISTER\r\nUser-Agent: ab\x00cd\r\nContent-Length: 0\r\n\r\n"
    )
    with pytest.raises(SipParseError) as exc:
        parse_message(message)
    assert "control character" in exc.value.reason
    assert exc.value.partial is not None  # Via, From, To and CSeq survive for the 400


def test_parsed_values_are_immutable_and_hashable_so_caches_can_share_them():
    uri = parse_uri("sip:alice@example.com;transport=tcp")
    via = parse_via("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport")
    addr = parse_name_addr('"Alice" <sip:alice@example.com>;tag=9')
    for value in (uri, via, addr):
        assert hash(value) == hash(value)
        with pytest.raises(TypeError):
            value.params["x"] = "y"  # type: ignore[index]
    assert {uri: 1}[parse_uri("sip:alice@example.com;transport=tcp")] == 1
    changed = via.params.with_changes(received="192.0.2.1")
    assert "received" in changed and "received" not in via.params
    assert parse_via("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport").params == via.params
