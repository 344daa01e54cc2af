"""Every error leaves through here, in SignalWire's shapes; nothing a client sends becomes a 500.

Two APIs, two shapes: the Relay REST routes answer as SignalWire's Relay REST does
(`{"error": ...}`, `{"errors": [...]}`); the LaML routes under /api/laml/ answer as Twilio's API,
which SignalWire's compatibility API imitates: `{"code", "message", "more_info", "status"}`.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.exc import SQLAlchemyError

from sipline.domain.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    SiplineError,
    Unauthorized,
    ValidationFailed,
)
from sipline.store import db

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


_CHALLENGE = {"WWW-Authenticate": 'Basic realm="sipline"'}


def unauthorized() -> Response[Any]:
    return Response({"error": "Unauthorized"}, status_code=401, headers=_CHALLENGE)


def not_found() -> Response[Any]:
    return Response({"error": "Not Found"}, status_code=404)


def _single(status: int, detail: str, code: str) -> Response[Any]:
    title = _TITLES.get(status, "Error")
    return Response(problems_body(status, [Problem(None, detail, title, code)]), status_code=status)


LAML_PREFIX = "/api/laml/"
# Twilio's error codes; a status without its own code gets 20000 + status, as Twilio's 20404 and 20500.
_LAML_CODES = {400: 20001, 401: 20003, 405: 20004}


def laml_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    code = _LAML_CODES.get(status, 20000 + status)
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Response(body, status_code=status, headers=headers)


def _is_laml(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(LAML_PREFIX)


def _laml_not_found(request: Request[Any, Any, Any]) -> Response[Any]:
    return laml_error(404, f"The requested resource {request.url.path} was not found")


def _on_laml_error(request: Request[Any, Any, Any], exc: SiplineError) -> Response[Any]:
    if isinstance(exc, Unauthorized):
        return laml_error(401, "Authentication failed", _CHALLENGE)
    if isinstance(exc, NotFound):
        return _laml_not_found(request)
    if isinstance(exc, ValidationFailed | Conflict | BadRequest):
        return laml_error(400, exc.detail or "invalid request")  # Twilio answers bad parameters with 400
    return laml_error(exc.status, exc.detail or _TITLES.get(exc.status, "Error"))


def on_sipline_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, SiplineError)
    if _is_laml(request):
        return _on_laml_error(request, exc)
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


def _validation_problems(exc: ValidationException) -> list[Problem]:
    problems = []
    for extra in exc.extra if isinstance(exc.extra, list) else []:
        key = str(extra.get("key", "")) if isinstance(extra, dict) else ""
        message = str(extra.get("message", "is invalid")) if isinstance(extra, dict) else str(extra)
        problems.append(Problem(key or None, f"{key} {message}".strip()))
    return problems or [Problem(None, "invalid request")]


def on_http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own errors (unknown route, bad query parameter, body too large) in our shapes."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status >= 500:
        return on_unexpected(request, exc)
    if isinstance(exc, NotFoundException):
        return _laml_not_found(request) if _is_laml(request) else not_found()
    if isinstance(exc, NotAuthorizedException):
        return laml_error(401, "Authentication failed", _CHALLENGE) if _is_laml(request) else unauthorized()
    if isinstance(exc, ValidationException):
        problems = _validation_problems(exc)
        if _is_laml(request):
            return laml_error(400, "; ".join(p.detail for p in problems))
        return Response(problems_body(422, problems), status_code=422)
    if _is_laml(request):
        return laml_error(status, str(exc.detail), exc.headers)
    response = _single(status, str(exc.detail), _TITLES.get(status, "error").lower().replace(" ", "_"))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def on_store_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """503 with Retry-After while the database cannot serve (down, restarting, its pool or lock
    waited for too long): the client may try again, and the log says why in one line, with no
    traceback. Any other database error is a fault of ours: a 500, as below."""
    if not db.unavailable(exc):
        return on_unexpected(request, exc)
    log.warning("database unavailable on %s %s, answered 503: %s", request.method, request.url.path, db.reason(exc))
    headers = {"Retry-After": str(db.RETRY_AFTER)}
    if _is_laml(request):
        return laml_error(HTTP_503_SERVICE_UNAVAILABLE, "Service Unavailable", headers)
    return Response({"error": "Service Unavailable"}, status_code=HTTP_503_SERVICE_UNAVAILABLE, headers=headers)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if _is_laml(request):
        return laml_error(HTTP_500_INTERNAL_SERVER_ERROR, "Internal Server Error")
    return Response({"error": "Internal Server Error"}, status_code=HTTP_500_INTERNAL_SERVER_ERROR)


EXCEPTION_HANDLERS = {
    SiplineError: on_sipline_error,
    HTTPException: on_http_error,
    SQLAlchemyError: on_store_error,
    OSError: on_store_error,  # asyncpg's refused or reset connection comes through unwrapped
    Exception: on_unexpected,
}
