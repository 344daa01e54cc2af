"""Each endpoint's media policy, applied to the SDP a B2BUA passes between its legs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sipline.domain.endpoint import effective_encryption
from sipline.sip.message import SipRequest, SipResponse
from sipline.sip.sdp import MediaPolicy, Refusal, SdpError, SessionDescription, filter_sdp, parse_sdp, serialize_sdp

SDP = "application/sdp"


def policy(endpoint: Mapping[str, Any]) -> MediaPolicy:
    """An endpoint's effective codecs, ciphers and encryption: its own, else its profile's (the
    record carries its profile's columns)."""
    return MediaPolicy(
        codecs=tuple(endpoint.get("codecs") or endpoint["default_codecs"]),
        ciphers=tuple(endpoint.get("ciphers") or endpoint["default_ciphers"]),
        encryption=effective_encryption(endpoint, endpoint),
    )


def sdp_of(message: SipRequest | SipResponse) -> SessionDescription | None:
    """The message's SDP; None without a body. SdpError for a body that is not SDP (the caller
    answers 415 or 400: see `refusal_for`)."""
    if not message.body:
        return None
    content_type = (message.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type != SDP:
        raise UnsupportedBody(content_type or "(none)")
    return parse_sdp(message.body)


class UnsupportedBody(SdpError):
    """A body of another type than application/sdp where SDP was expected (415)."""


def convey(sdp: SessionDescription | None, sender: MediaPolicy, receiver: MediaPolicy) -> bytes | Refusal | None:
    """The SDP `sender` sent, as `receiver` may get it; None when there was none."""
    if sdp is None:
        return None
    filtered = filter_sdp(sdp, sender, receiver)
    return filtered if isinstance(filtered, Refusal) else serialize_sdp(filtered)
