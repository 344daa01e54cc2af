"""Request bodies as SignalWire accepts them: JSON, or a form with Rails-style arrays (codecs[]=PCMU)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec

from sipline.domain.errors import BadRequest, UnsupportedMediaType

MAX_BODY_SIZE = 64 * 1024

_decode_json = msgspec.json.Decoder().decode


def parse_body(content_type: str | None, body: bytes) -> dict[str, Any]:
    """Decode a body to a mapping of field to raw value. Types are checked later, by the domain."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not body.strip():
        return {}
    if media == "application/x-www-form-urlencoded" and not body.lstrip().startswith(b"{"):
        return _form(body)
    # JSON, or no media type, or curl's default form type carrying JSON (`curl -d '{...}'`).
    if media in ("application/json", "", "application/x-www-form-urlencoded") or media.endswith("+json"):
        return _json(body)
    raise UnsupportedMediaType(
        f"unsupported content type {media[:80]!r}: send application/json or application/x-www-form-urlencoded"
    )


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = _decode_json(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON body: {str(exc)[:200]}") from None
    if not isinstance(value, dict):
        raise BadRequest("the JSON body must be an object")
    return value


def _form(body: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("malformed form body") from None
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            items = out.setdefault(key[:-2], [])
            if not isinstance(items, list):
                raise BadRequest(f"{key[:-2][:64]} is given both as a value and as an array")
            if value != "":  # `codecs[]=` alone is how a form says "empty array"
                items.append(value)
        elif key in out:
            raise BadRequest(f"{key[:64]} is given more than once")
        else:
            out[key] = value
    return out
