"""Projects and their SIP profile (one profile per project, kept on the project row)."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sipline.domain.errors import Conflict, Problem
from sipline.domain.values import DEFAULT_CIPHERS, DEFAULT_CODECS, DEFAULT_ENCRYPTION

from .credentials import Credentials
from .schema import projects, sip_endpoints

DOMAIN_TAKEN = Problem("domain_identifier", "domain_identifier has already been taken", code="taken")
PROFILE_COLUMNS = (
    "domain_identifier",
    "default_codecs",
    "default_ciphers",
    "default_encryption",
    "default_send_as",
)


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "project"


async def domain_identifier_taken(conn: AsyncConnection, domain_identifier: str, except_id: str | None = None) -> bool:
    query = sa.select(projects.c.id).where(projects.c.domain_identifier == domain_identifier)
    if except_id:
        query = query.where(projects.c.id != except_id)
    return (await conn.execute(query.limit(1))).first() is not None


async def create(conn: AsyncConnection, name: str, domain_identifier: str | None = None) -> dict[str, Any]:
    if domain_identifier is None:
        domain_identifier = _slug(name)
        while await domain_identifier_taken(conn, domain_identifier):
            domain_identifier = f"{_slug(name)[:33]}-{secrets.token_hex(3)}"
    row = {
        "id": str(uuid.uuid4()),
        "name": name,
        "domain_identifier": domain_identifier,
        "default_codecs": list(DEFAULT_CODECS),
        "default_ciphers": list(DEFAULT_CIPHERS),
        "default_encryption": DEFAULT_ENCRYPTION,
        "default_send_as": None,
        "created_at": time.time(),
    }
    await conn.execute(projects.insert().values(**row))
    return row


async def list_all(conn: AsyncConnection) -> list[dict[str, Any]]:
    result = await conn.execute(sa.select(projects).order_by(projects.c.created_at))
    return [dict(r._mapping) for r in result]


async def get(conn: AsyncConnection, project_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    query = sa.select(projects).where(projects.c.id == project_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return dict(row._mapping) if row else None


async def find_by_domain_identifier(conn: AsyncConnection, domain_identifier: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(projects).where(projects.c.domain_identifier == domain_identifier))).first()
    return dict(row._mapping) if row else None


async def update_profile(
    conn: AsyncConnection, current: dict[str, Any], new: dict[str, Any], credentials: Credentials
) -> None:
    """Store a changed profile; a new domain means new realms, so every HA1 is derived again."""
    try:
        async with conn.begin_nested():
            await conn.execute(
                projects.update().where(projects.c.id == current["id"]).values({c: new[c] for c in PROFILE_COLUMNS})
            )
    except IntegrityError:  # lost a race for the same domain_identifier
        raise Conflict(DOMAIN_TAKEN) from None
    if new["domain_identifier"] == current["domain_identifier"]:
        return
    rows = await conn.execute(
        sa.select(sip_endpoints.c.seq, sip_endpoints.c.username, sip_endpoints.c.password_sealed).where(
            sip_endpoints.c.project_id == current["id"]
        )
    )
    for seq, username, sealed in rows.all():
        await conn.execute(
            sip_endpoints.update()
            .where(sip_endpoints.c.seq == seq)
            .values(credentials.rederive(sealed, username, new["domain_identifier"]))
        )
