"""SIP messages: bytes to `SipRequest`/`SipResponse` and back (RFC 3261 §7, §8.2.6, §18.3).

`parse_message` has datagram semantics: one message per call, trailing bytes beyond Content-Length
ignored. Streams are cut into single messages by `framing.StreamFramer` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sipline.sip.errors import SipParseError
from sipline.sip.headers import (
    _FIELD_NAMES,
    Headers,
    NameAddr,
    SipUri,
    Via,
    check_uri,
    field_names,
    generate_branch,
    generate_tag,
    is_token,
    parse_name_addr,
    parse_uri,
    parse_via,
)

__all__ = [
    "MAX_MESSAGE_SIZE",
    "REASON_PHRASES",
    "Headers",
    "NameAddr",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "SipUri",
    "Via",
    "generate_branch",
    "generate_tag",
    "make_response",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "serialize",
]

MAX_MESSAGE_SIZE = 65536
SIP_VERSION = "SIP/2.0"
_MAX_CSEQ = 2**32 - 1

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    429: "Too Many Requests",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


@dataclass
class SipRequest:
    method: str
    uri: str
    headers: Headers
    body: bytes = b""
    version: str = SIP_VERSION


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = field(default=SIP_VERSION)


# --- parsing --------------------------------------------------------------------------------

# CRLF is the rule; bare LF is tolerated because some UDP senders use it and nothing is lost.
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_LINE_RE = re.compile(r"\r?\n")
_REQUEST_LINE_RE = re.compile(r"(?P<method>[A-Za-z0-9\-.!%*_+`'~]+) (?P<uri>\S+) (?i:SIP)/2\.0")
# Loose shape used only to decide whether a bad message deserves a 400 rather than silence.
_REQUEST_LIKE_RE = re.compile(
    r"(?P<method>[A-Za-z0-9\-.!%*_+`'~]+)\s+(?P<uri>\S+).*?\s(?P<version>(?i:SIP)/\d+\.\d+)\s*"
)
_STATUS_LINE_RE = re.compile(r"(?i:SIP)/2\.0 (?P<status>[1-6][0-9][0-9])(?: (?P<reason>.*))?", re.S)
_CSEQ_RE = re.compile(r"(?P<number>[0-9]{1,10})\s+(?P<method>[A-Za-z0-9\-.!%*_+`'~]+)")
_DIGITS_RE = re.compile(r"[0-9]{1,10}")

_MANDATORY = ("Via", "From", "To", "Call-ID", "CSeq")
# RFC 3261 §7.3.1: these may appear once only; a second copy makes the message ambiguous.
_SINGLETONS = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Length", "Content-Type")
# (name, lookup key): all are known names, so the key is the lowercase (see Headers.lookup_keys).
_MANDATORY_KEYS = tuple((name, name.lower()) for name in _MANDATORY)
_SINGLETON_KEYS = tuple((name, name.lower()) for name in _SINGLETONS)


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse one datagram's worth of SIP; the only exception raised is `SipParseError`."""
    try:
        return _parse(bytes(data))
    except SipParseError:
        raise
    except (ValueError, TypeError, IndexError, UnicodeError) as exc:
        # Safety net: a parser bug must still look like bad input to the transport, never a crash.
        raise SipParseError(f"malformed message ({type(exc).__name__})") from None


def _parse(data: bytes) -> SipRequest | SipResponse:
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError(f"message larger than {MAX_MESSAGE_SIZE} bytes")
    data = data.lstrip(b"\r\n")  # RFC 3261 §7.5: ignore CRLFs before the start line
    head_bytes, rest, crlf_only = _split_head(data)
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not UTF-8") from None
    clean = _parse_clean_head(head) if crlf_only else None
    if clean is not None:
        start_line, headers = clean
        header_error = None
    else:
        lines = _LINE_RE.split(head)
        start_line = lines[0]
        headers, header_error = _parse_header_lines(lines[1:])

    if start_line.startswith(("SIP/", "sip/")):
        if header_error:
            raise SipParseError(header_error)
        return _parse_response(start_line, headers, rest)

    def fail(reason: str) -> SipParseError:
        return SipParseError(reason, _partial_request(start_line, headers))

    if header_error:
        raise fail(header_error)
    line = _REQUEST_LINE_RE.fullmatch(start_line)
    if line is None:
        loose = _REQUEST_LIKE_RE.fullmatch(start_line)
        if loose and loose["version"].upper() != SIP_VERSION:
            raise fail(f"unsupported SIP version {loose['version']!r}")
        raise fail("malformed request line")
    method, uri = line["method"], line["uri"]
    try:
        check_uri(uri)
        if uri[:4].lower() in ("sip:", "sips") and parse_uri(uri).headers is not None:
            raise SipParseError("headers are not allowed in a Request-URI")
        cseq_method = _check_common_headers(headers)
        if cseq_method != method:
            raise SipParseError("CSeq method does not match the request method")
        max_forwards = headers.get("Max-Forwards")
        if max_forwards is not None and not (_DIGITS_RE.fullmatch(max_forwards) and int(max_forwards) <= 255):
            raise SipParseError("Max-Forwards must be an integer from 0 to 255")
        body = _body(headers, rest)
    except SipParseError as exc:
        raise fail(exc.reason) from None
    return SipRequest(method, uri, headers, body, SIP_VERSION)


def _split_head(data: bytes) -> tuple[bytes, bytes, bool]:
    """(header section, what follows its empty line, whether all its line ends are CRLF)."""
    # The usual case without the regex (slow to scan with): the first CRLF CRLF, and only CRLF
    # line ends before it. `_HEAD_END_RE` would match there too: a match further left needs a
    # bare CR or LF, or a CRLF CRLF further left. Anything else: the regex, and the full path.
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head = data[:end]
        crlf = head.count(b"\r\n")
        if head.count(b"\n") == crlf and head.count(b"\r") == crlf:
            return head, data[end + 4 :], True
    match = _HEAD_END_RE.search(data)
    if match is None:
        raise SipParseError("no empty line after the header fields")
    return data[: match.start()], data[match.end() :], False


# A raw control character not escaped as a quoted-pair (RFC 4475's intmeth escapes NUL, BEL, DEL).
_CONTROL_RE = re.compile(r"(?<!\\)[\x00-\x08\x0a-\x1f\x7f]")
# Any control character but CR and LF, escaped or not: searched once over a whole header section.
_ANY_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _parse_clean_head(head: str) -> tuple[str, Headers] | None:
    """(start line, headers) of the usual well-formed head in one pass; None for anything else.
    `head`'s line ends must all be CRLF (no bare CR or LF).

    Why: nearly every message has no folded lines, no control characters and well-formed header
    lines; checking that once over the whole head is cheaper than per field. When this returns a
    value, `_parse_header_lines` would give the same Headers and no error (tests/sip checks it on
    generated messages); None sends the head there, which says what is wrong.
    """
    if "\r\n " in head or "\r\n\t" in head:
        return None  # a folded line
    lines = head.split("\r\n")
    start_line = lines[0]
    if _ANY_CONTROL_RE.search(head, len(start_line)):
        return None  # in a name or a value (even escaped as a quoted-pair)
    fields: list[tuple[str, str]] = []
    keys: list[str] = []
    for index in range(1, len(lines)):
        name, colon, value = lines[index].partition(":")
        names = _FIELD_NAMES.get(name) or field_names(name)  # the first: field_names' cache, inline
        if names is None or not colon:
            return None  # a malformed line
        fields.append((names[0], value.strip()))
        keys.append(names[1])
    return start_line, Headers.from_parsed(fields, keys)


def _parse_header_lines(lines: list[str]) -> tuple[Headers, str | None]:
    """Unfold and collect header fields; keep going past a bad line so a 400 can still be built."""
    fields: list[list[str]] = []
    error: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t"):
            if fields:
                fields[-1][1] = (fields[-1][1] + " " + line.strip(" \t")).strip(" \t")
            else:
                error = error or "continuation line before any header field"
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not is_token(name):
            error = error or f"malformed header line {line[:40]!r}"
            fields.append(["", ""])  # swallow its continuation lines too
            continue
        fields.append([name, value.strip(" \t")])
    headers = Headers()
    for name, value in fields:
        if not name:
            continue
        if "\r" in value:
            error = error or "bare CR in a header field"
            continue
        if _CONTROL_RE.search(value):
            # RFC 3261's grammar has no raw control characters in field values (HTAB aside) outside
            # quoted-pairs; they would only reach logs and the database.
            error = error or "control character in a header field"
            continue
        headers.add_parsed(name, value)  # the name matched TOKEN_RE above; no CR, no LF
    return headers, error


def _check_common_headers(headers: Headers) -> str:
    """Checks shared by requests and responses; returns the CSeq method."""
    keys = headers.lookup_keys()  # one list for the dozen checks below, rather than a lookup each
    for name, key in _MANDATORY_KEYS:
        if key not in keys:
            raise SipParseError(f"missing mandatory header {name}")
    for name, key in _SINGLETON_KEYS:
        if keys.count(key) > 1:
            raise SipParseError(f"header {name} appears more than once")
    if not headers.get("Call-ID"):
        raise SipParseError("empty Call-ID")
    cseq = _CSEQ_RE.fullmatch(headers.get("CSeq") or "")
    if cseq is None or int(cseq["number"]) > _MAX_CSEQ:
        raise SipParseError("CSeq must be a 32-bit sequence number and a method")
    for name in ("From", "To"):
        parse_name_addr(headers.get(name) or "")
    for value in headers.get_all("Via"):
        parse_via(value)
    return cseq["method"]


def _body(headers: Headers, rest: bytes) -> bytes:
    length = headers.get("Content-Length")
    if length is None:
        return rest  # datagram without Content-Length: the body is the rest (RFC 3261 §18.3)
    if not _DIGITS_RE.fullmatch(length):
        raise SipParseError("Content-Length is not a non-negative integer")
    size = int(length)
    if size > len(rest):
        raise SipParseError("Content-Length is larger than the data received")
    return rest[:size]


def _parse_response(start_line: str, headers: Headers, rest: bytes) -> SipResponse:
    # The reason phrase may be empty ("SIP/2.0 100 ", RFC 4475 noreason) and may be UTF-8.
    line = _STATUS_LINE_RE.fullmatch(start_line)
    if line is None:
        raise SipParseError("malformed status line")
    _check_common_headers(headers)
    return SipResponse(int(line["status"]), line["reason"] or "", headers, _body(headers, rest))


def _partial_request(start_line: str, headers: Headers) -> SipRequest | None:
    """The headers a 400 needs, if the input looked like a request and they are all there."""
    loose = _REQUEST_LIKE_RE.fullmatch(start_line)
    if loose is None or any(name not in headers for name in _MANDATORY):
        return None
    vias = [v for n, v in headers.items() if n == "Via"]
    try:
        parse_via(headers.get("Via") or "")  # the response is routed by the top Via
    except SipParseError:
        return None
    partial = Headers()
    for value in vias:
        partial.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        partial.add(name, next(v for n, v in headers.items() if n == name))
    return SipRequest(loose["method"], loose["uri"], partial)


# --- serialising and responding -------------------------------------------------------------


def serialize(msg: SipRequest | SipResponse) -> bytes:
    """Wire form; Content-Length is always rewritten to the real body length."""
    if isinstance(msg, SipRequest):
        start = f"{msg.method} {msg.uri} {msg.version}"
    else:
        start = f"{msg.version} {msg.status} {msg.reason}"
    lines = [start]
    length_written = False
    for name, value in msg.headers.items():
        if name == "Content-Length":
            if not length_written:
                lines.append(f"Content-Length: {len(msg.body)}")
                length_written = True
            continue
        lines.append(f"{name}: {value}")
    if not length_written:
        lines.append(f"Content-Length: {len(msg.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + msg.body


_COPIED = ("From", "To", "Call-ID", "CSeq")


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> SipResponse:
    """A response to `request` with Via, From, To, Call-ID and CSeq copied (RFC 3261 §8.2.6)."""
    out = request.headers.pick("Via", _COPIED)
    at = out.position("To")
    if to_tag is not None and at is not None:
        to = out.items()[at][1]
        if not _has_tag(to):
            out.replace_value(at, f"{to};tag={to_tag}")
    for name, value in headers or []:
        out.add(name, value)
    if reason is None:
        reason = REASON_PHRASES.get(status, "Unknown")
    return SipResponse(status, reason, out, body)


def _has_tag(value: str) -> bool:
    try:
        return "tag" in parse_name_addr(value).params
    except SipParseError:
        # Malformed To (we may be answering it with a 400): fall back to a textual look.
        return re.search(r";\s*tag\s*=", value, re.I) is not None
