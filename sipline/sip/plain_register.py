"""REGISTERs in their plainest shape, read from their bytes with one pattern per field.

Nearly every REGISTER a registrar sees comes from a phone (re-)registering, in the same few header
fields each time. `recognise` reads such a message without the general parser's objects (Headers,
NameAddr, SipUri, Via, Params); anything else, a compact name, a folded line, a second Via, a Route,
a parameter it does not know, any non-ASCII byte, returns None and takes the general path. The
general parser (`message.parse_message`) stays the definition of a message: whatever `recognise`
accepts, it accepts too, with the same values, and `request` gives the same request the general
path makes of it (tests/sip/test_sip_plain_register.py checks both on generated messages). Pure:
no I/O, no clock.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from sipline.sip.headers import TOKEN_RE, Headers
from sipline.sip.message import _DIGITS_RE, _MAX_CSEQ, MAX_MESSAGE_SIZE, SipRequest
from sipline.sip.routing import DEFAULT_PORT

_TOKEN = TOKEN_RE.pattern
# A host name or an IPv4 address, in lower case: the general parser lower-cases the Via host when it
# writes the Via again (`routing.format_via`), and these are written back as they came.
_HOST = r"[a-z0-9](?:[a-z0-9\-.]*[a-z0-9])?"
_USER = r"[A-Za-z0-9\-_.!~*'+]+"
_PORT = r"[0-9]{1,5}"
_DISPLAY = r'(?:"[A-Za-z0-9 \-_.]*" )?'  # a quoted display name of plain characters, if any

_REQUEST_LINE_RE = re.compile(rf"REGISTER sip:(?P<host>{_HOST}) SIP/2\.0")
_VIA_RE = re.compile(
    rf"SIP/2\.0/UDP (?P<host>{_HOST})(?::(?P<port>{_PORT}))?"
    rf"(?P<rport_first>;rport)?;branch=(?P<branch>z9hG4bK{_TOKEN})(?P<rport>;rport)?"
)
_FROM_RE = re.compile(rf"{_DISPLAY}<sip:{_USER}@{_HOST}>;tag={_TOKEN}")
_TO_RE = re.compile(rf"{_DISPLAY}<sip:(?P<user>{_USER})@(?P<host>{_HOST})>")
_CALL_ID_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}@]+")
_CSEQ_RE = re.compile(r"(?P<number>[0-9]{1,10}) REGISTER")
# Values only stored or ignored before the digest is checked: printable ASCII, no edge blanks.
_TEXT_RE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
# One Contact: the same without commas, which would make a list of several.
_CONTACT_RE = re.compile(r"[\x21-\x2b\x2d-\x7e](?:[\x20-\x2b\x2d-\x7e]*[\x21-\x2b\x2d-\x7e])?")


class PlainRegister(NamedTuple):
    """What the fast path needs of a plain REGISTER. The copied fields are the header values as
    sent; the response copies them (RFC 3261 §8.2.6). A named tuple: made twice a registration,
    and a frozen dataclass of 16 fields costs twice as much to make."""

    host: str  # of the Request-URI
    via: str
    via_host: str
    via_port: int | None
    branch: str
    rport: bool
    from_: str
    to: str
    to_user: str
    to_host: str
    call_id: str
    cseq: str
    authorization: str | None
    contact: str | None
    uri: str  # the Request-URI
    fields: tuple[tuple[str, str], ...]  # every header field as sent, in order

    def server_key(self) -> tuple[str, str, str]:
        """Its server transaction's key, as `transaction.server_key` makes it."""
        return (self.branch, f"{self.via_host}:{DEFAULT_PORT if self.via_port is None else self.via_port}", "REGISTER")


# The fields a plain REGISTER may hold, each with the pattern its value must match. Names in their
# canonical spelling only (no compact forms, no other case): anything else takes the general path.
_FIELDS: dict[str, re.Pattern[str]] = {
    "Via": _VIA_RE,
    "From": _FROM_RE,
    "To": _TO_RE,
    "Call-ID": _CALL_ID_RE,
    "CSeq": _CSEQ_RE,
    "Contact": _CONTACT_RE,
    "Authorization": _TEXT_RE,
    "Max-Forwards": _DIGITS_RE,
    "Expires": _TEXT_RE,
    "User-Agent": _TEXT_RE,
    "Allow": _TEXT_RE,
    "Supported": _TEXT_RE,
    "Content-Length": _DIGITS_RE,
}


def recognise(data: bytes) -> PlainRegister | None:
    """The plain REGISTER in this datagram, or None: then the general path reads it."""
    if len(data) > MAX_MESSAGE_SIZE or not data.startswith(b"REGISTER sip:"):
        return None
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    try:
        head = data[:end].decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = head.split("\r\n")  # no line holds a CR or LF: none of the patterns below admits one
    line = _REQUEST_LINE_RE.fullmatch(lines[0])
    if line is None:
        return None
    fields: dict[str, re.Match[str]] = {}
    in_order: list[tuple[str, str]] = []
    for text in lines[1:]:
        name, colon, value = text.partition(": ")
        pattern = _FIELDS.get(name)
        if pattern is None or not colon or name in fields:
            return None  # unknown, malformed, or a field given twice (a second Via, a second Contact)
        match = pattern.fullmatch(value)
        if match is None:
            return None
        fields[name] = match
        in_order.append((name, value))
    via, to, cseq = fields.get("Via"), fields.get("To"), fields.get("CSeq")
    if via is None or to is None or cseq is None or "From" not in fields or "Call-ID" not in fields:
        return None
    length = fields.get("Content-Length")
    if int(cseq["number"]) > _MAX_CSEQ or (length[0] != "0" if length else len(data) > end + 4):
        return None  # a body (without Content-Length, a datagram's body is whatever follows)
    if "Max-Forwards" in fields and int(fields["Max-Forwards"][0]) > 255:
        return None
    port = None if via["port"] is None else int(via["port"])
    if (port is not None and port > 65535) or (via["rport_first"] and via["rport"]):
        return None
    authorization, contact = fields.get("Authorization"), fields.get("Contact")
    return PlainRegister(
        host=line["host"],
        via=via[0],
        via_host=via["host"],
        via_port=port,
        branch=via["branch"],
        rport=bool(via["rport_first"] or via["rport"]),
        from_=fields["From"][0],
        to=to[0],
        to_user=to["user"],
        to_host=to["host"],
        call_id=fields["Call-ID"][0],
        cseq=cseq[0],
        authorization=None if authorization is None else authorization[0],
        contact=None if contact is None else contact[0],
        uri=lines[0][len("REGISTER ") : -len(" SIP/2.0")],
        fields=tuple(in_order),
    )


def stamped_via(register: PlainRegister, source_host: str, source_port: int) -> str:
    """The Via as the general path stamps it (`routing.stamp_via`, written by `format_via`): with
    rport, its value filled and `received` added; else `received` when the sent-by host is not the
    source. `source_host` is an IPv4 address (a token: written unquoted)."""
    if register.rport:  # ";rport" stands once in the Via, before or after the branch, as itself
        return f"{register.via.replace(';rport', f';rport={source_port}', 1)};received={source_host}"
    if register.via_host != source_host:
        return f"{register.via};received={source_host}"
    return register.via


def request(register: PlainRegister, via: str) -> SipRequest:
    """The request `message.parse_message` makes of it, its Via stamped to `via` (`stamped_via`)."""
    fields = [("Via", via) if name == "Via" else (name, value) for name, value in register.fields]
    return SipRequest("REGISTER", register.uri, Headers.from_parsed(fields, [name.lower() for name, _ in fields]))


def response(status_line: str, register: PlainRegister, via: str, to_tag: str, extra: list[str]) -> bytes:
    """The response's bytes as `message.serialize` writes `make_response`'s: Via, From, To with our
    tag, Call-ID, CSeq, then `extra` ("Name: value" lines), then Content-Length."""
    lines = [
        status_line,
        f"Via: {via}",
        f"From: {register.from_}",
        f"To: {register.to};tag={to_tag}",
        f"Call-ID: {register.call_id}",
        f"CSeq: {register.cseq}",
        *extra,
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
