"""Which requests are shed under overload: the rule, read off the raw bytes before any parsing.

One rule for every place that sheds: the UDP reader drops such a request unread (stale, or the
store saturated), and the service drops it, or answers 503 over TCP and TLS, when it comes on
another way (`SipService.receive`).
"""

from __future__ import annotations

import re

_CONTINUES = frozenset((b"ACK", b"CANCEL", b"BYE", b"PRACK"))
_ANSWERED = re.compile(rb"\r\n(?:proxy-)?authorization[ \t]*:", re.IGNORECASE)
_TO_TAG = re.compile(rb"\r\n(?:to|t)[ \t]*:[^\r\n]*;[ \t]*tag[ \t]*=", re.IGNORECASE)


def starts_work(data: bytes) -> bool:
    """A request that starts new work: out of any dialog, not answering a challenge, not ending
    anything (a first REGISTER, a new INVITE, a ping). Responses and the rest finish work."""
    if data.startswith(b"SIP/"):
        return False
    method = data[: data.find(b" ")]
    if method in _CONTINUES:
        return False
    head = data[: data.find(b"\r\n\r\n")]
    return _ANSWERED.search(head) is None and _TO_TAG.search(head) is None
