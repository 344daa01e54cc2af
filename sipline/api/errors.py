"""Every error leaves through here, in SignalWire's shapes; nothing a client sends becomes a 500."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from sipline.domain.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    SiplineError,
    Unauthorized,
    ValidationFailed,
)

log = logging.getLogger("sipline.api")

_TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Invalid Attribute",
}


def problems_body(status: int, problems: list[Problem]) -> dict[str, Any]:
    items = []
    for p in problems:
        item = {"detail": p.detail, "status": str(status), "title": p.title, "code": p.code}
        if p.attribute is not None:
            item["attribute"] = p.attribute
        items.append(item)
    return {"errors": items}


def unauthorized() -> Response[Any]:
    return Response({"error": "Unauthorized"}, status_code=401, headers={"WWW-Authenticate": 'Basic realm="sipline"'})


def not_found() -> Response[Any]:
    return Response({"error": "Not Found"}, status_code=404)


def _single(status: int, detail: str, code: str) -> Response[Any]:
    title = _TITLES.get(status, "Error")
    return Response(problems_body(status, [Problem(None, detail, title, code)]), status_code=status)


def on_sipline_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, SiplineError)
    if isinstance(exc, ValidationFailed):
        return Response(problems_body(422, exc.problems), status_code=422)
    if isinstance(exc, Conflict):
        return Response(problems_body(422, [exc.problem]), status_code=422)
    if isinstance(exc, Unauthorized):
        return unauthorized()
    if isinstance(exc, NotFound):
        return not_found()
    if isinstance(exc, Forbidden):
        return _single(403, exc.detail, "forbidden")
    return _single(exc.status, exc.detail, _TITLES.get(exc.status, "error").lower().replace(" ", "_"))


def on_http_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own errors (unknown route, bad query parameter, body too large) in our shapes."""
    assert isinstance(exc, HTTPException)
    if isinstance(exc, NotFoundException):
        return not_found()
    if isinstance(exc, NotAuthorizedException):
        return unauthorized()
    if isinstance(exc, ValidationException):
        problems = []
        for extra in exc.extra if isinstance(exc.extra, list) else []:
            key = str(extra.get("key", "")) if isinstance(extra, dict) else ""
            message = str(extra.get("message", "is invalid")) if isinstance(extra, dict) else str(extra)
            problems.append(Problem(key or None, f"{key} {message}".strip()))
        return Response(problems_body(422, problems or [Problem(None, "invalid request")]), status_code=422)
    status = exc.status_code
    if status >= 500:
        return on_unexpected(_, exc)
    response = _single(status, str(exc.detail), _TITLES.get(status, "error").lower().replace(" ", "_"))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response({"error": "Internal Server Error"}, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS = {
    SiplineError: on_sipline_error,
    HTTPException: on_http_error,
    Exception: on_unexpected,
}
