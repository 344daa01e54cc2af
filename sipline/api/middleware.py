"""X-Request-Id on every response: the client's own when it is sane, else a fresh one.

A `before_send` hook rather than middleware: Litestar runs it for every response, including the
404s and 405s its router produces before any middleware is reached. It appends to the raw header
list: Litestar's header wrappers cost more than the rest of the hook.
"""

from __future__ import annotations

import os
import re
from typing import cast

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
    headers = cast(list[tuple[bytes, bytes]], message.setdefault("headers", []))
    headers.append((b"x-request-id", request_id or os.urandom(16).hex().encode()))
