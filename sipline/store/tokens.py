"""API tokens: shown once at creation, stored as SHA-256 hashes, checked by hash."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sipline.domain.times import iso8601
from sipline.secrets import hash_token, new_token

from .prepared import Prepared
from .schema import api_tokens

SCOPES = (
    "voice",
    "messaging",
    "fax",
    "video",
    "chat",
    "pubsub",
    "numbers",
    "storage",
    "tasking",
    "management",
)


@dataclass(frozen=True)
class TokenRecord:
    id: str
    project_id: str
    scopes: tuple[str, ...]


def create(conn: Connection, project_id: str, scopes: list[str]) -> tuple[str, TokenRecord]:
    token = new_token()
    record = TokenRecord(str(uuid.uuid4()), project_id, tuple(scopes))
    conn.execute(
        api_tokens.insert().values(
            id=record.id,
            project_id=project_id,
            token_hash=hash_token(token),
            scopes=list(scopes),
            created_at=time.time(),
        )
    )
    return token, record


_FIND = Prepared(
    sa.select(api_tokens.c.id, api_tokens.c.project_id, api_tokens.c.scopes).where(
        api_tokens.c.token_hash == sa.bindparam("token_hash"), api_tokens.c.revoked_at.is_(None)
    )
)


def find(conn: Connection, token: str) -> TokenRecord | None:
    row = _FIND.first(conn, token_hash=hash_token(token))
    return TokenRecord(row["id"], row["project_id"], tuple(row["scopes"])) if row else None


def revoke(conn: Connection, token_or_id: str) -> bool:
    """Revoke by token value or by token id; True when a live token was revoked."""
    match = sa.or_(api_tokens.c.token_hash == hash_token(token_or_id), api_tokens.c.id == token_or_id)
    result = conn.execute(
        api_tokens.update().where(match, api_tokens.c.revoked_at.is_(None)).values(revoked_at=time.time())
    )
    return result.rowcount > 0


def list_for_project(conn: Connection, project_id: str) -> list[dict[str, Any]]:
    """Every token of a project, oldest first: id, scopes, dates; never the token (only its hash is kept)."""
    rows = conn.execute(
        sa.select(api_tokens.c.id, api_tokens.c.scopes, api_tokens.c.created_at, api_tokens.c.revoked_at)
        .where(api_tokens.c.project_id == project_id)
        .order_by(api_tokens.c.created_at)
    )
    return [
        {
            "id": token_id,
            "scopes": list(scopes),
            "created": iso8601(created),
            "revoked": iso8601(revoked) if revoked is not None else None,
        }
        for token_id, scopes, created, revoked in rows
    ]
