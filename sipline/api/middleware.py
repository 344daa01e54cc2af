"""X-Request-Id on every response: the client's own when it is sane, else a fresh one.

A `before_send` hook rather than middleware: Litestar runs it for every response, including the
404s and 405s its router produces before any middleware is reached.
"""

from __future__ import annotations

import re
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

_SANE = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")


async def add_request_id(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    request_id = b""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SANE.fullmatch(value):
            request_id = value
            break
    headers = MutableScopeHeaders.from_message(message)
    headers["x-request-id"] = (request_id or uuid.uuid4().hex.encode()).decode()
