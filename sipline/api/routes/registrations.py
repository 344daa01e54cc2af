"""GET /endpoints/sip/{id}/registrations: an endpoint's current SIP bindings (a sipline extension)."""

from __future__ import annotations

import time

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy import Connection

from sipline.api.deps import Principal
from sipline.api.routes.endpoints import parse_endpoint_id
from sipline.domain.errors import NotFound
from sipline.domain.times import iso8601
from sipline.runtime import Runtime
from sipline.store import bindings, endpoints


class Registration(msgspec.Struct):
    contact: str
    transport: str
    source_address: str
    source_port: int
    user_agent: str | None
    expires_at: str  # ISO 8601, UTC
    registered_at: str


class RegistrationList(msgspec.Struct):
    data: list[Registration]


def _live_bindings(conn: Connection, project_id: str, endpoint_id: str, now: float) -> list[bindings.StoredBinding]:
    if endpoints.get(conn, project_id, endpoint_id) is None:
        raise NotFound()
    return bindings.list_for_endpoint(conn, endpoint_id, now=now)


@get(
    "/api/relay/rest/endpoints/sip/{id:str}/registrations",
    operation_id="list_sip_endpoint_registrations",
    summary="List an endpoint's current SIP registrations",
    tags=["sipline extensions"],
)
async def list_registrations(
    id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]
) -> RegistrationList:
    current = await runtime.db.read(_live_bindings, principal.project_id, parse_endpoint_id(id), time.time())
    return RegistrationList(
        data=[
            Registration(
                contact=s.binding.contact,
                transport=s.origin.transport,
                source_address=s.origin.source_host,
                source_port=s.origin.source_port,
                user_agent=s.origin.user_agent,
                expires_at=iso8601(s.binding.expires_at),
                registered_at=iso8601(s.binding.registered_at),
            )
            for s in current
        ]
    )
