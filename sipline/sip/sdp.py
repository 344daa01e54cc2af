"""SDP (RFC 4566) and the media policy a B2BUA applies to it without touching media (RFC 3264).

sipline does not transcode: an offer toward a device keeps only the codecs both endpoints allow,
in the offer's order, plus telephone-event (RFC 4733) and comfort noise (CN, RFC 3389); a media
line with nothing left is rejected with port 0 (RFC 3264 §6, never removed: the answer must keep
the offer's m-lines); nothing usable left at all is a 488. SRTP is SDES (RFC 4568): `RTP/SAVP`
or `RTP/SAVPF` with `a=crypto` lines, kept only for the suites both endpoints allow.

Codec names are the API's (sipline.domain.values.CODECS, but this module does not import it):
OPUS, G722, PCMU, PCMA, VP8, H264, matched case-insensitively against rtpmap encoding names and
the static payload types 0 (PCMU), 8 (PCMA), 9 (G722), 13 (CN).

Everything the filter does not decide on is kept as received: the session-level lines (o= among
them), c=, b=, ICE, DTLS fingerprint and setup, rtcp-mux, direction, ssrc lines. It changes only
m= lines (port, formats), the rtpmap/fmtp/rtcp-fb lines of the formats it drops, the a=crypto
lines of suites not allowed, and `a=bundle-only` of a section it rejects.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

__all__ = [
    "MAX_MEDIA_SECTIONS",
    "MAX_SDP_SIZE",
    "Media",
    "MediaPolicy",
    "Refusal",
    "SdpError",
    "SessionDescription",
    "filter_sdp",
    "is_active",
    "is_secure",
    "parse_sdp",
    "serialize_sdp",
]

MAX_SDP_SIZE = 65536
MAX_MEDIA_SECTIONS = 64


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


# --- Parsing -------------------------------------------------------------------------------------

_TOKEN = r"[A-Za-z0-9!#$%&'*+\-.^_`{|}~]+"
_LINE = re.compile(r"[A-Za-z]=.*")
_M_LINE = re.compile(rf"m=({_TOKEN}) ([0-9]+)(?:/([0-9]+))? ({_TOKEN}(?:/{_TOKEN})*)((?: {_TOKEN})+)")
# C0 controls but HTAB, DEL and C1 controls; CR is allowed only as part of a line end.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body (CRLF or LF line ends); SdpError for anything that is not SDP: no v=0
    first, a malformed m= line, a port out of range, non-UTF-8 text, more than 64 media sections.

    Also refused: a body over 64 KiB, a line that is not `<letter>=<value>` (an empty line too,
    except at the very end), control characters other than HTAB. The final line end may be missing.
    m= lines follow RFC 4566's grammar strictly (single spaces, decimal numbers without leading
    zeros, RTP formats 0-127), so that `serialize_sdp` gives back the bytes that came in.
    """
    if len(body) > MAX_SDP_SIZE:
        raise SdpError(f"SDP body larger than {MAX_SDP_SIZE} bytes")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP body is not UTF-8") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    while lines and not lines[-1]:  # the final line end, and blank lines some stacks add after it
        lines.pop()
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    session: list[str] = []
    media: list[Media] = []
    current: tuple[str, list[str]] | None = None  # the m= line being collected, and its lines
    for number, line in enumerate(lines, 1):
        if _CONTROL.search(line):
            raise SdpError(f"SDP line {number} contains a control character")
        if not _LINE.fullmatch(line):
            raise SdpError(f"SDP line {number} is not <type>=<value>")
        if line.startswith("m="):
            if current is not None:
                media.append(_media(*current))
            if len(media) >= MAX_MEDIA_SECTIONS:
                raise SdpError(f"more than {MAX_MEDIA_SECTIONS} media sections")
            current = (line, [])
        elif current is not None:
            current[1].append(line)
        else:
            session.append(line)
    if current is not None:
        media.append(_media(*current))
    return SessionDescription(tuple(session), tuple(media))


def _media(m_line: str, lines: list[str]) -> Media:
    match = _M_LINE.fullmatch(m_line)
    if match is None:
        raise SdpError(f"malformed media line {_quote(m_line)}")
    kind, port_text, count_text, proto, format_text = match.groups()
    port = _number(port_text, m_line)
    if port > 65535:
        raise SdpError(f"port out of range in {_quote(m_line)}")
    count = None if count_text is None else _number(count_text, m_line)
    if count == 0:
        raise SdpError(f"port count 0 in {_quote(m_line)}")
    formats = tuple(format_text.split(" ")[1:])
    if _is_rtp(proto) and not all(_is_payload_type(fmt) for fmt in formats):
        raise SdpError(f"RTP formats must be payload types 0-127 in {_quote(m_line)}")
    return Media(kind, port, count, proto, formats, tuple(lines))


def _number(text: str, m_line: str) -> int:
    if len(text) > 5 or (len(text) > 1 and text.startswith("0")):
        raise SdpError(f"malformed number in {_quote(m_line)}")
    return int(text)


def _is_payload_type(fmt: str) -> bool:
    return fmt.isdecimal() and fmt.isascii() and len(fmt) <= 3 and str(int(fmt)) == fmt and int(fmt) <= 127


def _quote(line: str) -> str:
    return repr(line[:80])


def serialize_sdp(sdp: SessionDescription) -> bytes:
    """Lines joined with CRLF, ending in CRLF."""
    lines = list(sdp.session)
    for media in sdp.media:
        port = f"{media.port}" if media.port_count is None else f"{media.port}/{media.port_count}"
        lines.append(" ".join([f"m={media.kind}", port, media.proto, *media.formats]))
        lines.extend(media.lines)
    return "".join(line + "\r\n" for line in lines).encode("utf-8")


# --- What a section is ---------------------------------------------------------------------------


def _proto_parts(proto: str) -> list[str]:
    return proto.upper().split("/")


def _is_rtp(proto: str) -> bool:
    return "RTP" in _proto_parts(proto)


def _is_sdes_profile(proto: str) -> bool:
    """RTP/SAVP or RTP/SAVPF (RFC 4568): SRTP whose keys travel in a=crypto lines."""
    return _proto_parts(proto) in (["RTP", "SAVP"], ["RTP", "SAVPF"])


def _attribute(line: str, name: str) -> str | None:
    """The value of `a=<name>:<value>` (attribute names matched case-insensitively), else None."""
    prefix = f"a={name}:"
    return line[len(prefix) :] if line.startswith("a=") and line[: len(prefix)].lower() == prefix else None


def _has_flag(lines: tuple[str, ...], name: str) -> bool:
    return any(line.startswith("a=") and line.lower() == f"a={name}" for line in lines)


def _crypto_suite(line: str) -> str | None:
    """The suite of an `a=crypto:<tag> <suite> <key-params>...` line (RFC 4568 §9.1), else None."""
    value = _attribute(line, "crypto")
    if value is None:
        return None
    fields = value.split()
    if len(fields) < 3 or not fields[0].isdecimal() or len(fields[0]) > 9:
        return None
    return fields[1].upper()


def is_active(media: Media) -> bool:
    """A section that carries media: a port other than 0, or port 0 with `a=bundle-only` (RFC 8843
    §6: an offered section that shares the transport of another one, not a rejected one)."""
    return media.port != 0 or _has_flag(media.lines, "bundle-only")


def is_secure(media: Media, session: tuple[str, ...] = ()) -> bool:
    """SRTP with SDES keys, or DTLS-SRTP.

    SDES: `RTP/SAVP` or `RTP/SAVPF` with at least one well-formed `a=crypto` line. DTLS-SRTP: an
    SRTP profile over (D)TLS (`UDP/TLS/RTP/SAVP[F]`, `TCP/DTLS/RTP/SAVPF`, or the pre-RFC 5764
    `RTP/SAVPF` some WebRTC stacks still send) with an `a=fingerprint`, which RFC 8122 §5 allows at
    session level too: pass the session-level lines as `session` for that.
    """
    parts = _proto_parts(media.proto)
    if "RTP" not in parts or parts[-1] not in ("SAVP", "SAVPF"):
        return False
    if _is_sdes_profile(media.proto) and any(_crypto_suite(line) is not None for line in media.lines):
        return True
    return any(_attribute(line, "fingerprint") is not None for line in (*media.lines, *session))


def _is_encrypted(media: Media, session: tuple[str, ...]) -> bool:
    """SRTP for RTP sections; for the others (T.38 over udptl, data channels, MSRP), a (D)TLS transport."""
    if _is_rtp(media.proto):
        return is_secure(media, session)
    return bool({"TLS", "DTLS"} & set(_proto_parts(media.proto)))


# --- Formats -------------------------------------------------------------------------------------

# RFC 3551 §6: the static payload types, used when a format has no rtpmap line.
_STATIC = {
    0: "PCMU",
    3: "GSM",
    4: "G723",
    5: "DVI4",
    6: "DVI4",
    7: "LPC",
    8: "PCMA",
    9: "G722",
    10: "L16",
    11: "L16",
    12: "QCELP",
    13: "CN",
    14: "MPA",
    15: "G728",
    16: "DVI4",
    17: "DVI4",
    18: "G729",
    25: "CELB",
    26: "JPEG",
    28: "NV",
    31: "H261",
    32: "MPV",
    33: "MP2T",
    34: "H263",
}
_ALWAYS = frozenset({"TELEPHONE-EVENT", "CN"})  # kept in every active section (RFC 4733, RFC 3389)
_RETRANSMISSION = "RTX"  # RFC 4588: repairs the format its fmtp `apt=` names
_REDUNDANCY = frozenset({"RED", "ULPFEC", "FLEXFEC-03"})  # RFC 2198, RFC 5109, RFC 8627
# The kind of the vocabulary's codecs, so a refusal lists only the allowed codecs that could apply.
_KIND = {"OPUS": "audio", "G722": "audio", "PCMU": "audio", "PCMA": "audio", "VP8": "video", "H264": "video"}
_FORMAT_ATTRIBUTES = ("rtpmap", "fmtp", "rtcp-fb")


@dataclass(frozen=True)
class _Format:
    payload_type: str
    encoding: str | None  # upper-cased encoding name, None when unknown
    references: frozenset[str] | None  # the formats a rtx/red/fec format depends on, when it says

    @property
    def is_dependent(self) -> bool:
        return self.encoding == _RETRANSMISSION or self.encoding in _REDUNDANCY

    @property
    def is_codec(self) -> bool:
        return not self.is_dependent and self.encoding not in _ALWAYS

    @property
    def name(self) -> str:
        return self.encoding or f"payload type {self.payload_type}"


def _format_value(line: str, attribute: str) -> tuple[str, str] | None:
    """`a=<attribute>:<format> <rest>` as (format, rest), else None."""
    value = _attribute(line, attribute)
    if value is None:
        return None
    fmt, _, rest = value.partition(" ")
    return fmt, rest.strip()


def _formats(media: Media) -> list[_Format]:
    encodings: dict[str, str] = {}
    parameters: dict[str, str] = {}
    for line in media.lines:
        if (rtpmap := _format_value(line, "rtpmap")) is not None:
            encodings.setdefault(rtpmap[0], rtpmap[1].split("/")[0].strip().upper())
        elif (fmtp := _format_value(line, "fmtp")) is not None:
            parameters.setdefault(*fmtp)
    result = []
    for pt in media.formats:
        encoding = encodings.get(pt) or (_STATIC.get(int(pt)) if pt.isdecimal() else None)
        result.append(_Format(pt, encoding, _references(encoding, parameters.get(pt, ""))))
    return result


def _references(encoding: str | None, parameters: str) -> frozenset[str] | None:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "apt":
            return frozenset({value.strip()})
    if encoding == "RED" and re.fullmatch(r"[0-9]+(?:/[0-9]+)*", parameters):
        return frozenset(parameters.split("/"))  # RFC 2198 §5: the redundant encodings, in order
    return None


def _kept_formats(formats: list[_Format], codecs: tuple[str, ...]) -> set[str]:
    """The payload types to keep: allowed codecs, telephone-event and CN, then the redundancy and
    retransmission formats whose formats are kept (red/fec without a reference: when any codec is)."""
    kept = {f.payload_type for f in formats if f.is_codec and f.encoding in codecs}
    if not kept:
        return kept
    kept |= {f.payload_type for f in formats if f.encoding in _ALWAYS}
    for dependents in (_REDUNDANCY, {_RETRANSMISSION}):
        for f in formats:
            if f.encoding in dependents and (
                f.references <= kept if f.references is not None else f.encoding != _RETRANSMISSION
            ):
                kept.add(f.payload_type)
    return kept


def _without_format_lines(lines: tuple[str, ...], dropped: set[str]) -> tuple[str, ...]:
    def belongs_to_dropped(line: str) -> bool:
        for attribute in _FORMAT_ATTRIBUTES:
            value = _format_value(line, attribute)
            if value is not None:
                return value[0] in dropped  # `a=rtcp-fb:*` names no format: kept
        return False

    return tuple(line for line in lines if not belongs_to_dropped(line))


# --- The filter ----------------------------------------------------------------------------------

_REFUSED = 488
_REQUIRES_SRTP = "the endpoint requires SRTP (RTP/SAVP with a=crypto)"
_NO_STREAM = "no active audio or video stream in the SDP"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.+\-/ ]")


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

    Details: rtx formats stay only with the format their `apt=` names; red, ulpfec and flexfec
    with the formats they name, or with any kept codec when they name none. A rejected section
    keeps its first format and that format's lines, the other lines as received (less
    `a=bundle-only` and the `a=crypto` lines of suites not allowed). Active means `is_active`:
    a port 0 section with `a=bundle-only` is filtered like any other. Under "required", an
    active non-RTP section must run over TLS or DTLS.
    """
    codecs = _common(sender.codecs, receiver.codecs)
    ciphers = _common(sender.ciphers, receiver.ciphers)
    media: list[Media] = []
    reasons: list[tuple[bool, str]] = []  # (audio or video?, why a section was rejected)
    for section in sdp.media:
        filtered, reason = _filter_media(section, sdp.session, codecs, ciphers)
        media.append(filtered)
        if reason is not None:
            reasons.append((_is_audio_or_video(section), reason))
    if not any(is_active(m) and _is_audio_or_video(m) for m in media):
        reasons.sort(key=lambda item: not item[0])  # stable: the first audio or video reason wins
        return Refusal(_REFUSED, reasons[0][1] if reasons else _NO_STREAM)
    required = "required" in (sender.encryption, receiver.encryption)
    if required and not all(_is_encrypted(m, sdp.session) for m in media if is_active(m)):
        return Refusal(_REFUSED, _REQUIRES_SRTP)
    return SessionDescription(sdp.session, tuple(media))


@functools.lru_cache(maxsize=256)  # a few policies, compared for every SDP passed on
def _common(mine: tuple[str, ...], theirs: tuple[str, ...]) -> tuple[str, ...]:
    """The names both allow (case-insensitively), upper-cased, in `mine`'s order."""
    allowed = {name.upper() for name in theirs}
    return tuple(dict.fromkeys(name.upper() for name in mine if name.upper() in allowed))


def _is_audio_or_video(media: Media) -> bool:
    return media.kind.lower() in ("audio", "video") and _is_rtp(media.proto)


def _filter_media(
    media: Media, session: tuple[str, ...], codecs: tuple[str, ...], ciphers: tuple[str, ...]
) -> tuple[Media, str | None]:
    """The section as the receiver may get it, and why it was rejected when it was."""
    if not is_active(media) or not _is_rtp(media.proto):
        return media, None
    offered_suites = [suite for line in media.lines if (suite := _crypto_suite(line)) is not None]
    keyed = replace(  # rejected or not, no keys for a suite either endpoint refuses
        media,
        lines=tuple(
            line for line in media.lines if _attribute(line, "crypto") is None or _crypto_suite(line) in ciphers
        ),
    )
    formats = _formats(media)
    kept = _kept_formats(formats, codecs)
    if not kept:
        offered = [f.name for f in formats if f.is_codec]
        allowed = [c for c in codecs if _KIND.get(c, media.kind.lower()) == media.kind.lower()]
        return _rejected(keyed), _no_common("codec", offered, allowed)
    filtered = replace(
        keyed,
        formats=tuple(pt for pt in media.formats if pt in kept),
        lines=_without_format_lines(keyed.lines, set(media.formats) - kept),
    )
    if _is_sdes_profile(media.proto) and not is_secure(filtered, session):  # no suite of both left
        return _rejected(keyed), _no_common("SRTP crypto suite", offered_suites, list(ciphers))
    return filtered, None


def _rejected(media: Media) -> Media:
    """RFC 3264 §6: port 0, and still a valid m= line: the first format and its lines."""
    first = media.formats[0]
    lines = _without_format_lines(media.lines, set(media.formats) - {first})
    lines = tuple(line for line in lines if not _has_flag((line,), "bundle-only"))
    return replace(media, port=0, port_count=None, formats=(first,), lines=lines)


def _no_common(what: str, offered: list[str], allowed: list[str]) -> str:
    """A reason fit for a Warning header's quoted text: names from the SDP are cleaned and capped."""

    def listing(names: list[str]) -> str:
        unique = list(dict.fromkeys(_SAFE_NAME.sub("?", name)[:32] for name in names))
        shown = ", ".join(unique[:8]) + (", ..." if len(unique) > 8 else "")
        return shown or "none"

    return f"no {what} in common (offered: {listing(offered)}; allowed: {listing(allowed)})"
