"""Projects and their SIP profile (one profile per project, kept on the project row)."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from sipline.domain.errors import Conflict, NotFound, Problem
from sipline.domain.values import DEFAULT_CIPHERS, DEFAULT_CODECS, DEFAULT_ENCRYPTION

from .credentials import Credentials
from .prepared import Prepared
from .schema import PROFILE_COLUMNS, projects, sip_endpoints

DOMAIN_TAKEN = Problem("domain_identifier", "domain_identifier has already been taken", code="taken")


_GET_QUERY = sa.select(projects).where(projects.c.id == sa.bindparam("project_id"))
_GET = Prepared(_GET_QUERY)
_GET_FOR_SHARE = Prepared(_GET_QUERY.with_for_update(read=True))
_GET_FOR_UPDATE = Prepared(_GET_QUERY.with_for_update())


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug or "project"


def new_signing_key() -> str:
    """A project's signing key: 160 random bits, with a prefix that says what it is when it leaks."""
    return "PSK_" + secrets.token_hex(20)


def domain_identifier_taken(conn: Connection, domain_identifier: str, except_id: str | None = None) -> bool:
    query = sa.select(projects.c.id).where(projects.c.domain_identifier == domain_identifier)
    if except_id:
        query = query.where(projects.c.id != except_id)
    return (conn.execute(query.limit(1))).first() is not None


def create(conn: Connection, name: str, domain_identifier: str | None = None) -> dict[str, Any]:
    if domain_identifier is None:
        domain_identifier = _slug(name)
        while domain_identifier_taken(conn, domain_identifier):
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
        "signing_key": new_signing_key(),
    }
    conn.execute(projects.insert().values(**row))
    return row


def rotate_signing_key(conn: Connection, project_id: str) -> str:
    """Give the project a new signing key and return it; the old one stops signing at once."""
    key = new_signing_key()
    done = conn.execute(projects.update().where(projects.c.id == project_id).values(signing_key=key))
    if done.rowcount != 1:
        raise NotFound()
    return key


def list_all(conn: Connection) -> list[dict[str, Any]]:
    result = conn.execute(sa.select(projects).order_by(projects.c.created_at))
    return [dict(r._mapping) for r in result]


def get(
    conn: Connection, project_id: str, *, for_update: bool = False, for_share: bool = False
) -> dict[str, Any] | None:
    """A project row; locked (PostgreSQL) exclusively or shared when asked."""
    query = _GET_FOR_UPDATE if for_update else _GET_FOR_SHARE if for_share else _GET
    return query.first(conn, project_id=project_id)


def require(conn: Connection, project_id: str, *, for_update: bool = False, for_share: bool = False) -> dict[str, Any]:
    """The caller's own project (from its token), or NotFound if it was deleted under a live token."""
    project = get(conn, project_id, for_update=for_update, for_share=for_share)
    if project is None:
        raise NotFound()
    return project


def find_by_domain_identifier(conn: Connection, domain_identifier: str) -> dict[str, Any] | None:
    row = (conn.execute(sa.select(projects).where(projects.c.domain_identifier == domain_identifier))).first()
    return dict(row._mapping) if row else None


def update_profile(conn: Connection, current: dict[str, Any], new: dict[str, Any], credentials: Credentials) -> None:
    """Store a changed profile; a new domain means new realms, so every HA1 is derived again."""
    try:
        with conn.begin_nested():
            conn.execute(
                projects.update().where(projects.c.id == current["id"]).values({c: new[c] for c in PROFILE_COLUMNS})
            )
    except IntegrityError:  # lost a race for the same domain_identifier
        raise Conflict(DOMAIN_TAKEN) from None
    if new["domain_identifier"] == current["domain_identifier"]:
        return
    rows = conn.execute(
        sa.select(sip_endpoints.c.seq, sip_endpoints.c.username, sip_endpoints.c.password_sealed).where(
            sip_endpoints.c.project_id == current["id"]
        )
    )
    for seq, username, sealed in rows.all():
        conn.execute(
            sip_endpoints.update()
            .where(sip_endpoints.c.seq == seq)
            .values(credentials.rederive(sealed, username, new["domain_identifier"]))
        )
