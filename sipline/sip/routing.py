"""Where a response goes (RFC 3261 §18.2.1-§18.2.2, RFC 3581): the top Via, stamped with the source.

On receipt the server notes in the top Via where the request really came from (`received`, and
`rport` when the client asked for it); the response copies that Via, and a UDP response goes to
the stamped address. Streams answer on the connection the request arrived on.
"""

from __future__ import annotations

import re

from sipline.sip.errors import SipParseError
from sipline.sip.headers import Via, parse_via, quote, remember_via, split_outside
from sipline.sip.message import SipRequest

DEFAULT_PORT = 5060
_TOKEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]+")


def _bare(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def format_via(via: Via) -> str:
    text = f"{via.protocol} {via.host}" + (f":{via.port}" if via.port is not None else "")
    for name, value in via.params.items():
        if value is None:
            text += f";{name}"
        else:
            text += f";{name}={value if _TOKEN_VALUE_RE.fullmatch(value) else quote(value)}"
    return text


def stamp_via(via: Via, source: tuple[str, int]) -> Via:
    """RFC 3261 §18.2.1 `received` when the sent-by host is not the source; RFC 3581 `rport` filled."""
    host, port = source
    if "rport" in via.params:
        # RFC 3581 §4: with rport, received is always added
        params = via.params.with_changes(rport=str(port), received=host)
    elif _bare(via.host) != host:
        params = via.params.with_changes(received=host)
    else:
        return via
    return Via(via.protocol, via.transport, via.host, via.port, params)


def stamp_top_via(request: SipRequest, source: tuple[str, int]) -> Via:
    """Rewrite the request's top Via in place (the response copies it) and return it."""
    index = request.headers.position("Via")
    if index is None:
        raise SipParseError("missing Via")
    parts = split_outside(request.headers.items()[index][1], ",")
    if not parts:
        raise SipParseError("malformed Via")
    top = parse_via(parts[0])
    stamped = stamp_via(top, source)
    if stamped is not top:
        parts[0] = format_via(stamped)
        request.headers.replace_value(index, ", ".join(p.strip() for p in parts))
        # The transaction layer reads the new top Via next: parsing format_via(v) gives v back
        # (tests/sip checks the round trip), so hand it over rather than parse it again.
        remember_via(parts[0], stamped)
    return stamped


def udp_reply_address(rport: bool, via_port: int | None, source: tuple[str, int]) -> tuple[str, int]:
    """Where a UDP response goes, given the top Via's rport (asked for or not) and sent-by port:
    the source port when rport was asked for, else the Via port.

    The address is always the source's (that is what `received` says); `maddr` is not honoured,
    so a forged Via cannot turn the server into a reflector towards a third party.
    """
    return source if rport else (source[0], via_port or DEFAULT_PORT)
