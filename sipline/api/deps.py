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


async def principal(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Principal:
    # Depending on `runtime` puts the two in sequence: Litestar resolves independent dependencies
    # in a task group, which costs more than either of them.
    project_id, token = _basic_credentials(request.headers.get("authorization"))
    record = await runtime.db.read(tokens.find, token)
    # The token is looked up by its hash; the project is compared in constant time all the same.
    if record is None or not hmac.compare_digest(record.project_id.encode(), project_id.encode()):
        raise Unauthorized()
    if REQUIRED_SCOPE not in record.scopes:
        raise Forbidden(f"this API token lacks the {REQUIRED_SCOPE} scope")
    return Principal(project_id=project_id, token_id=record.id)
