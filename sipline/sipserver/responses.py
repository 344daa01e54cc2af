"""Responses the server builds itself: one place for the Server header and the To tag."""

from __future__ import annotations

from sipline import __version__
from sipline.sip.headers import generate_tag
from sipline.sip.message import SipRequest, SipResponse, make_response
from sipline.store.db import RETRY_AFTER

SERVER = f"sipline/{__version__}"


def respond(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    headers: list[tuple[str, str]] | None = None,
    to_tag: str | None = None,
    body: bytes = b"",
) -> SipResponse:
    """A response to `request` (RFC 3261 §8.2.6) with our Server header; a fresh To tag unless given."""
    return make_response(
        request,
        status,
        reason,
        to_tag=to_tag or generate_tag(),
        headers=[*(headers or []), ("Server", SERVER)],
        body=body,
    )


def warning(text: str) -> tuple[str, str]:
    """A Warning header (RFC 3261 §20.43, code 399: miscellaneous) that says why, for people."""
    return ("Warning", '399 sipline "' + text.replace('"', "'").replace("\\", "/")[:200] + '"')


# With a 503 from us: the store cannot serve now (down, or saturated). Without it, a client must
# take the 503 as a 500 (RFC 3261 §21.5.4) rather than try again.
RETRY_LATER = ("Retry-After", str(RETRY_AFTER))


def unavailable(request: SipRequest) -> SipResponse:
    """503 with Retry-After: the store cannot serve now; try again later."""
    return respond(request, 503, headers=[RETRY_LATER])
