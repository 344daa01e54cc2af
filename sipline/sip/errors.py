"""The one exception type the SIP core raises for bad input."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sipline.sip.message import SipRequest


class SipParseError(Exception):
    """Input that is not acceptable SIP.

    `partial` carries a best-effort request (Via, From, To, Call-ID, CSeq only) when the input looked
    like a request and those headers could be recovered, so the transport can still answer
    `400 Bad Request`; when it is None the transport drops the input silently.
    """

    def __init__(self, reason: str, partial: SipRequest | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.partial = partial
