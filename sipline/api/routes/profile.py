"""/sip_profile: the project's SIP domain and the defaults its endpoints follow."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, put
from litestar.di import NamedDependency
from sqlalchemy import Connection

from sipline.api import models
from sipline.api.bodies import parse_body
from sipline.api.deps import Principal
from sipline.api.openapi import documented_body
from sipline.domain import profile as rules
from sipline.domain.errors import ValidationFailed
from sipline.runtime import Runtime
from sipline.store import projects
from sipline.store.credentials import Credentials

PATH = "/api/relay/rest/sip_profile"


def _shape(project: dict[str, Any], runtime: Runtime) -> models.SipProfile:
    return msgspec.convert(rules.view(project, runtime.settings.sip_domain), models.SipProfile)


def _update(conn: Connection, credentials: Credentials, project_id: str, raw: dict[str, Any]) -> dict[str, Any]:
    current = projects.require(conn, project_id, for_update=True)
    new = rules.change(current, raw)
    changed = new["domain_identifier"] != current["domain_identifier"]
    if changed and projects.domain_identifier_taken(conn, new["domain_identifier"], except_id=current["id"]):
        raise ValidationFailed([projects.DOMAIN_TAKEN])
    projects.update_profile(conn, current, new, credentials)
    return new


@get(
    PATH,
    operation_id="retrieve_sip_profile",
    summary="Get SIP profile",
    tags=["SIP Profile"],
    responses=models.error_responses(401, 403),
)
async def get_profile(runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> models.SipProfile:
    project = await runtime.db.read(projects.require, principal.project_id)
    return _shape(project, runtime)


@put(
    PATH,
    status_code=201,
    operation_id="update_sip_profile",
    summary="Update SIP profile",
    tags=["SIP Profile"],
    operation_class=documented_body(models.UpdateSipProfileRequest),
    responses=models.error_responses(400, 401, 403, 413, 415, 422),
)
async def update_profile(
    request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]
) -> models.SipProfile:
    raw = parse_body(request.headers.get("content-type"), await request.body())
    new = await runtime.db.write(_update, runtime.credentials, principal.project_id, raw)
    return _shape(new, runtime)
