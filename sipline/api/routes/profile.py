"""/sip_profile: the project's SIP domain and the defaults its endpoints follow."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, put
from litestar.di import NamedDependency

from sipline.api import models
from sipline.api.bodies import parse_body
from sipline.api.deps import Principal
from sipline.api.openapi import documented_body
from sipline.domain import profile as rules
from sipline.domain.errors import NotFound, ValidationFailed
from sipline.runtime import Runtime
from sipline.store import projects

PATH = "/api/relay/rest/sip_profile"


def _shape(project: dict[str, Any], runtime: NamedDependency[Runtime]) -> models.SipProfile:
    return msgspec.convert(rules.view(project, runtime.settings.sip_domain), models.SipProfile)


@get(
    PATH,
    operation_id="retrieve_sip_profile",
    summary="Get SIP profile",
    tags=["SIP Profile"],
    responses=models.error_responses(401, 403),
)
async def get_profile(runtime: NamedDependency[Runtime], principal: NamedDependency[Principal]) -> models.SipProfile:
    async with runtime.db.read() as conn:
        project = await projects.get(conn, principal.project_id)
    if project is None:
        raise NotFound()
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
    async with runtime.db.write() as conn:
        current = await projects.get(conn, principal.project_id, for_update=True)
        if current is None:
            raise NotFound()
        new = rules.change(current, raw)
        if new["domain_identifier"] != current["domain_identifier"] and await projects.domain_identifier_taken(
            conn, new["domain_identifier"], except_id=current["id"]
        ):
            raise ValidationFailed([projects.DOMAIN_TAKEN])
        await projects.update_profile(conn, current, new, runtime.credentials)
    return _shape(new, runtime)
