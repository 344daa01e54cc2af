"""Cutting a TCP/TLS byte stream into single SIP messages (RFC 3261 §18.3, RFC 5626 §4.4.1).

`StreamFramer.feed` returns, in arrival order, complete raw messages (hand each to `parse_message`)
and `PING` markers for RFC 5626 double-CRLF keep-alives, which the transport answers with `PONG`:

    for item in framer.feed(data):
        if item == PING:
            write(PONG)
        else:
            handle(parse_message(item))

A message can never equal `PING` (it needs a start line), so the marker is unambiguous.
"""

from __future__ import annotations

import re

from sipline.sip.errors import SipParseError
from sipline.sip.message import MAX_MESSAGE_SIZE

PING = b"\r\n\r\n"
PONG = b"\r\n"

_HEAD_END = b"\r\n\r\n"
# Header lines end in CRLF; `$` in MULTILINE mode stops before LF only, hence the explicit \r?.
_CONTENT_LENGTH_RE = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*\r?$", re.I | re.M)


class StreamFramer:
    """Sans-IO framer for one connection; after it raises, the connection must be closed."""

    def __init__(self, max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned as a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        items: list[bytes] = []
        while True:
            if self._skip_keepalives(items):
                break
            end = self._buffer.find(_HEAD_END)
            if end < 0:
                if len(self._buffer) > self.max_size:
                    raise SipParseError("header section larger than the message size limit")
                break
            total = end + len(_HEAD_END) + self._content_length(bytes(self._buffer[:end]))
            if total > self.max_size:
                raise SipParseError("message larger than the size limit")
            if len(self._buffer) < total:
                break
            items.append(bytes(self._buffer[:total]))
            del self._buffer[:total]
        return items

    def _skip_keepalives(self, items: list[bytes]) -> bool:
        """Consume CRLFs between messages; True when more bytes are needed to decide."""
        while self._buffer[:2] == b"\r\n":
            if self._buffer[:4] == PING:
                items.append(PING)
                del self._buffer[:4]
            elif len(self._buffer) < 4 and PING.startswith(bytes(self._buffer)):
                return True  # maybe the first half of a ping
            else:
                del self._buffer[:2]  # a stray CRLF (or a pong): ignored per RFC 3261 §7.5
        return False

    @staticmethod
    def _content_length(head: bytes) -> int:
        # Content-Length is mandatory on streams; a missing one means no body (RFC 3261 §18.3).
        values = {v.strip() for v in _CONTENT_LENGTH_RE.findall(head)}
        if not values:
            return 0
        if len(values) > 1:
            raise SipParseError("conflicting Content-Length headers")
        value = values.pop()
        if not re.fullmatch(rb"[0-9]{1,10}", value):
            raise SipParseError("Content-Length is not a non-negative integer")
        return int(value)
