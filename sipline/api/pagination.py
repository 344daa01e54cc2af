"""Opaque page tokens and the links of a list response.

A token is a position in the keyset order (base64url JSON), so following links.next visits every
row once even while rows are created and deleted; page_number is echoed for SignalWire clients.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import urlencode

import msgspec

from sipline.domain.errors import Problem, ValidationFailed

# Row positions are 63-bit integers in both databases; anything else in a token is tampering.
Position = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class Cursor(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    after: Position | None = None
    before: Position | None = None


_BAD_TOKEN = Problem("page_token", "page_token is not valid: use the links of a previous page")


def encode_token(cursor: Cursor) -> str:
    raw = msgspec.json.encode(cursor)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor = msgspec.json.decode(raw, type=Cursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValidationFailed([_BAD_TOKEN]) from None
    if (cursor.after is None) == (cursor.before is None):
        raise ValidationFailed([_BAD_TOKEN])
    return cursor


def link(path: str, params: dict[str, str | int | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{path}?{query}" if query else path
