"""SDP (RFC 4566) and the media policy a B2BUA applies to it without touching media (RFC 3264).

sipline does not transcode: an offer toward a device keeps only the codecs both endpoints allow,
in the offer's order, plus telephone-event (RFC 4733) and comfort noise (CN, RFC 3389); a media
line with nothing left is rejected with port 0 (RFC 3264 §6, never removed: the answer must keep
the offer's m-lines); nothing usable left at all is a 488. SRTP is SDES (RFC 4568): `RTP/SAVP`
or `RTP/SAVPF` with `a=crypto` lines, kept only for the suites both endpoints allow.

Codec names are the API's (sipline.domain.values.CODECS, but this module does not import it):
OPUS, G722, PCMU, PCMA, VP8, H264, matched case-insensitively against rtpmap encoding names and
the static payload types 0 (PCMU), 8 (PCMA), 9 (G722), 13 (CN).
"""

from __future__ import annotations

from dataclasses import dataclass


class SdpError(ValueError):
    """A body that is not usable SDP (answered 400 by the caller)."""


@dataclass(frozen=True)
class Media:
    """One media section: `m=<kind> <port>[/<count>] <proto> <formats...>` and its lines, in order."""

    kind: str  # audio, video, ...
    port: int
    port_count: int | None
    proto: str  # RTP/AVP, RTP/SAVP, RTP/SAVPF, UDP/TLS/RTP/SAVPF, ...
    formats: tuple[str, ...]  # payload types (RTP) or other format tokens
    lines: tuple[str, ...]  # every other line of the section (c=, b=, a=...), as received


@dataclass(frozen=True)
class SessionDescription:
    session: tuple[str, ...]  # the session-level lines (v=, o=, s=, c=, t=, a=...), as received
    media: tuple[Media, ...]


@dataclass(frozen=True)
class MediaPolicy:
    """What one endpoint allows: its effective codecs and ciphers (the profile's when its own are
    empty) and its effective encryption ("required" or "optional")."""

    codecs: tuple[str, ...]
    ciphers: tuple[str, ...]
    encryption: str


@dataclass(frozen=True)
class Refusal:
    """Why an SDP cannot be passed on: answer the request with `status` (488) and this reason."""

    status: int
    reason: str


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body (CRLF or LF line ends); SdpError for anything that is not SDP: no v=0
    first, a malformed m= line, a port out of range, non-UTF-8 text, more than 64 media sections."""
    raise NotImplementedError


def serialize_sdp(sdp: SessionDescription) -> bytes:
    """Lines joined with CRLF, ending in CRLF."""
    raise NotImplementedError


def filter_sdp(sdp: SessionDescription, sender: MediaPolicy, receiver: MediaPolicy) -> SessionDescription | Refusal:
    """The SDP `sender` sent, as `receiver` may get it (used for offers and for answers alike).

    - Codecs: each RTP media section keeps the formats whose codec is in both policies' codecs,
      in their original order, plus telephone-event and CN; rtpmap/fmtp/rtcp-fb lines of dropped
      formats go too. A section with no codec of both left gets port 0 (its formats then keep
      one format, as RFC 3264 requires a valid m= line).
    - Encryption: a section is secure when it is SRTP (SAVP/SAVPF with `a=crypto`) or DTLS-SRTP
      (UDP/TLS/RTP/SAVP[F]). `a=crypto` lines whose suite is not in both policies' ciphers are
      removed; an SDES section left with none gets port 0. When either policy is "required",
      every section still active must be secure, else Refusal(488, "... requires SRTP").
    - Sections already rejected (port 0) and non-RTP sections (application, ...) pass unchanged.
    - No active audio or video section left: Refusal(488, "no codec in common ..." or the
      encryption reason).
    """
    raise NotImplementedError


def is_secure(media: Media) -> bool:
    """SRTP with SDES keys, or DTLS-SRTP."""
    raise NotImplementedError
