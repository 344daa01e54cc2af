"""/endpoints/sip: SignalWire's SIP endpoint resource. Parse, call the domain, shape the response."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Request, Router, delete, get, post, route
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter
from sqlalchemy import Connection

from sipline.api import models
from sipline.api.bodies import parse_body
from sipline.api.deps import Principal
from sipline.api.openapi import documented_body
from sipline.api.pagination import Cursor, decode_token, encode_token, link
from sipline.api.responses import Encoded, encoded
from sipline.domain import endpoint as rules
from sipline.domain.errors import NotFound, Problem, ValidationFailed
from sipline.runtime import Runtime
from sipline.store import endpoints as store
from sipline.store import projects
from sipline.store.credentials import Credentials

PATH = "/api/relay/rest/endpoints/sip"


def parse_endpoint_id(raw: str) -> str:
    """A malformed id is just an id that does not exist: 404, as SignalWire answers."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound() from None


def _shape(record: dict[str, Any], profile: dict[str, Any]) -> models.SipEndpoint:
    return msgspec.convert(rules.view(record, record["id"], profile), models.SipEndpoint)


def _response(record: dict[str, Any], profile: dict[str, Any]) -> Encoded[models.SipEndpoint]:
    return Encoded(encoded(_shape(record, profile)))


def _validate(
    conn: Connection, project_id: str, current: dict[str, Any] | None, raw: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Domain validation plus the one rule that needs the database, all problems reported together."""
    name = raw.get("username")
    except_id = current["id"] if current else None
    taken = isinstance(name, str) and name and store.username_taken(conn, project_id, name, except_id)
    extra = [store.USERNAME_TAKEN] if taken else []
    try:
        record, patch = rules.change(current, raw)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.problems + extra) from None
    if extra:
        raise ValidationFailed(extra)
    return record, patch


def _list(conn: Connection, query: store.PageQuery) -> tuple[store.Page, dict[str, Any]]:
    return store.page(conn, query), projects.require(conn, query.project_id)


def _get(conn: Connection, project_id: str, endpoint_id: str) -> dict[str, Any]:
    record = store.get_with_profile(conn, project_id, endpoint_id)
    if record is None:
        raise NotFound()
    return record


def _create(
    conn: Connection, credentials: Credentials, project_id: str, raw: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    # Writers hold the project row shared (a profile update holds it exclusively): no endpoint
    # derives HA1 values for a domain that a concurrent profile update is changing.
    profile = projects.require(conn, project_id, for_share=True)
    record, patch = _validate(conn, project_id, None, raw)
    creds = credentials.columns(record["username"], patch["password"], profile["domain_identifier"])
    record["id"] = store.insert(conn, project_id, record, creds)
    return record, profile


def _update(
    conn: Connection, credentials: Credentials, project_id: str, endpoint_id: str, raw: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    profile = projects.require(conn, project_id, for_share=True)  # shared, as in _create
    current = store.get(conn, project_id, endpoint_id, for_update=True)
    if current is None:
        raise NotFound()
    record, patch = _validate(conn, project_id, current, raw)
    changes = rules.changed_fields(current, record)
    if "password" in patch:
        changes |= credentials.columns(record["username"], patch["password"], profile["domain_identifier"])
    elif "username" in changes:
        changes |= credentials.rederive(current["password_sealed"], record["username"], profile["domain_identifier"])
    store.update(conn, endpoint_id, changes)
    return record, profile


def _delete(conn: Connection, project_id: str, endpoint_id: str) -> None:
    if not store.delete(conn, project_id, endpoint_id):
        raise NotFound()


@get(
    "/",
    operation_id="list_sip_endpoints",
    summary="List SIP endpoints",
    responses=models.error_responses(401, 403, 422),
)
async def list_endpoints(
    runtime: NamedDependency[Runtime],
    principal: NamedDependency[Principal],
    filter_username: FromQuery[str | None] = None,
    filter_caller_id: FromQuery[str | None] = None,
    page_size: int = Parameter(default=50, ge=1, le=1000),
    page_number: int = Parameter(default=0, ge=0),
    page_token: FromQuery[str | None] = None,
) -> Encoded[models.SipEndpointList]:
    cursor = decode_token(page_token) if page_token else Cursor()
    if page_number > 0 and not page_token:
        raise ValidationFailed([Problem("page_token", "page_token is required when page_number > 0")])
    query = store.PageQuery(
        project_id=principal.project_id,
        size=page_size,
        username=filter_username or None,
        caller_id=filter_caller_id or None,
        after=cursor.after,
        before=cursor.before,
    )
    page, profile = await runtime.db.read(_list, query)
    params: dict[str, str | int | None] = {
        "filter_username": filter_username or None,
        "filter_caller_id": filter_caller_id or None,
        "page_size": page_size,
    }
    links = models.PaginationLinks(
        self=link(PATH, {**params, "page_number": page_number, "page_token": page_token}),
        first=link(PATH, {**params, "page_number": 0}),
    )
    if page.rows and page.has_more:
        token = encode_token(Cursor(after=page.rows[-1]["seq"]))
        links.next = link(PATH, {**params, "page_number": page_number + 1, "page_token": token})
    if page.has_less and page_number > 0:
        if page.rows:
            token = encode_token(Cursor(before=page.rows[0]["seq"]))
            links.prev = link(PATH, {**params, "page_number": page_number - 1, "page_token": token})
        else:
            links.prev = links.first
    return Encoded(encoded(models.SipEndpointList(links=links, data=[_shape(r, profile) for r in page.rows])))


@post(
    "/",
    status_code=201,
    operation_id="create_sip_endpoint",
    summary="Create SIP endpoint",
    operation_class=documented_body(models.CreateSipEndpointRequest),
    responses=models.error_responses(400, 401, 403, 413, 415, 422),
)
async def create_endpoint(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]
) -> Encoded[models.SipEndpoint]:
    raw = parse_body(request.headers.get("content-type"), await request.body())
    record, profile = await runtime.db.write(_create, runtime.credentials, principal.project_id, raw)
    return _response(record, profile)


@get(
    "/{id:str}",
    operation_id="retrieve_sip_endpoint",
    summary="Get SIP endpoint",
    responses=models.error_responses(401, 403, 404),
)
async def get_endpoint(
    id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]
) -> Encoded[models.SipEndpoint]:
    record = await runtime.db.read(_get, principal.project_id, parse_endpoint_id(id))
    return _response(record, record)  # the record carries its profile's columns


@route(
    "/{id:str}",
    http_method=["PUT", "PATCH"],
    status_code=201,
    operation_id=lambda _handler, method, _path: "update_sip_endpoint" if method == "PUT" else "patch_sip_endpoint",
    summary="Update SIP endpoint",
    operation_class=documented_body(models.UpdateSipEndpointRequest),
    responses=models.error_responses(400, 401, 403, 404, 413, 415, 422),
)
async def update_endpoint(
    id: FromPath[str],
    request: Request[Any, Any, Any],
    runtime: NamedDependency[Runtime],
    principal: NamedDependency[Principal],
) -> Encoded[models.SipEndpoint]:
    endpoint_id = parse_endpoint_id(id)
    raw = parse_body(request.headers.get("content-type"), await request.body())
    record, profile = await runtime.db.write(_update, runtime.credentials, principal.project_id, endpoint_id, raw)
    return _response(record, profile)


@delete(
    "/{id:str}",
    status_code=204,
    operation_id="delete_sip_endpoint",
    summary="Delete SIP endpoint",
    responses=models.error_responses(401, 403, 404),
)
async def delete_endpoint(
    id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]
) -> None:
    await runtime.db.write(_delete, principal.project_id, parse_endpoint_id(id))


router = Router(
    path=PATH,
    route_handlers=[list_endpoints, create_endpoint, get_endpoint, update_endpoint, delete_endpoint],
    tags=["SIP Endpoints"],
)
