"""One log line and the HTTP metrics per request: method, path, status, duration and request id.

An ASGI wrapper around the whole app, so that the responses Litestar makes before any middleware
(unknown routes, wrong methods) are logged and counted too, with the X-Request-Id the app sent. The
query string and the headers (Authorization above all) are never logged. Metrics take the route
template Litestar matched, never the path itself ("unmatched" when no route matched), so a client
cannot mint series by sending odd paths.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from sipline import metrics

log = logging.getLogger("sipline.http")
_LINE = "%s %s %s %.1f ms request_id=%s"


def access_logged(app: ASGIApp) -> ASGIApp:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": 0, "request_id": ""}

        async def watching(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-request-id":
                        seen["request_id"] = value.decode("latin-1")
            await send(message)

        try:
            await app(scope, receive, watching)
        finally:
            seconds = time.perf_counter() - started
            method, path = scope.get("method", "-"), scope["path"]
            metrics.http_request(method, scope.get("path_template"), seen["status"], seconds)
            if log.isEnabledFor(logging.INFO):
                # Made and handled here rather than by log.info, which would look through the stack
                # for the caller's file and line, which no format prints. Formatting stays the handler's.
                duration = seconds * 1000
                fields = {
                    "method": method,
                    "path": path,
                    "status": seen["status"],
                    "duration_ms": round(duration, 2),
                    "request_id": seen["request_id"],
                }
                args = (method, path, seen["status"] or "-", duration, seen["request_id"] or "-")
                record = log.makeRecord(
                    log.name, logging.INFO, __file__, 0, _LINE, args, None, extra={"fields": fields}
                )
                log.handle(record)

    return wrapped
