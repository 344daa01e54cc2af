"""Responses whose JSON body msgspec has encoded already, sent as they are.

Litestar's path for a returned value (a Response object, the value encoded through its serializer,
header objects, then an ASGIResponse) costs more than the indexed read behind a GET. A handler on a
hot path encodes its msgspec Struct itself (`encoded`) and returns `Encoded`, which Litestar hands
on untouched: the same bytes and the same headers (content-type, content-length) in the same two
ASGI messages. Annotated `Encoded[SomeStruct]`, a handler still documents SomeStruct in the OpenAPI
document, as Litestar documents any `Response[T]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from litestar import Response
from litestar.response.base import ASGIResponse

if TYPE_CHECKING:
    from litestar import Litestar, Request
    from litestar.types import Receive, Scope, Send

T = TypeVar("T")

_encode = msgspec.json.Encoder().encode
_JSON = (b"content-type", b"application/json")


def encoded(value: Any) -> bytes:
    """JSON, as Litestar would have encoded the same msgspec Struct or builtin values."""
    return _encode(value)


class _Sent(ASGIResponse):
    __slots__ = ("_body", "_start")

    def __init__(self, status: int, body: bytes) -> None:  # no super().__init__: nothing else is read
        self._start = {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", b"%d" % len(body))],
        }
        self._body = {"type": "http.response.body", "body": body, "more_body": False}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(self._start)  # type: ignore[arg-type]
        await send(self._body)  # type: ignore[arg-type]


class Encoded(Response[T]):
    """A JSON body and, optionally, a status; the handler's own status code otherwise."""

    __slots__ = ("body",)

    def __init__(self, body: bytes, status_code: int | None = None) -> None:  # as _Sent: nothing else is read
        self.body = body
        self.status_code = status_code

    def to_asgi_response(
        self, app: Litestar | None, request: Request[Any, Any, Any], *, status_code: int | None = None, **_: Any
    ) -> ASGIResponse:
        return _Sent(self.status_code or status_code or 200, self.body)
