"""Injected values: the runtime, and the caller's project from HTTP Basic project_id:token."""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency

from sipline.domain.errors import Forbidden, Unauthorized
from sipline.runtime import Runtime
from sipline.store import tokens

REQUIRED_SCOPE = "voice"


@dataclass(frozen=True)
class Principal:
    project_id: str
    token_id: str


def runtime(state: State) -> Runtime:
    rt: Runtime = state.runtime
    return rt


def _basic_credentials(header: str | None) -> tuple[str, str]:
    if not header or not header[:6].lower() == "basic ":
        raise Unauthorized()
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized() from None
    user, sep, password = decoded.partition(":")
    if not sep or not password:
        raise Unauthorized()
    try:
        project_id = str(uuid.UUID(user))
    except ValueError:
        raise Unauthorized() from None
    return project_id, password


def _authorization(request: Request[Any, Any, Any]) -> bytes | None:
    """The raw Authorization header: read from the scope, which costs less than request.headers."""
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            return value
    return None


async def principal(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Principal:
    # Depending on `runtime` puts the two in sequence: Litestar resolves independent dependencies
    # in a task group, which costs more than either of them.
    header = _authorization(request)
    verified: tokens.VerifiedTokens = request.app.state.verified_tokens
    key = verified.key(header) if header else None
    record = verified.get(key) if key else None
    if record is None:
        project_id, token = _basic_credentials(header.decode("latin-1") if header else None)
        seen = verified.snapshot()
        record = await runtime.db.read(tokens.find, token)
        # The token is looked up by its hash; the project is compared in constant time all the same.
        if record is None or not hmac.compare_digest(record.project_id.encode(), project_id.encode()):
            raise Unauthorized()
        if key:
            verified.put(key, record, seen)
    if REQUIRED_SCOPE not in record.scopes:
        raise Forbidden(f"this API token lacks the {REQUIRED_SCOPE} scope")
    return Principal(project_id=record.project_id, token_id=record.id)
