"""API tokens: shown once at creation, stored as SHA-256 hashes, checked by hash."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sipline.secrets import hash_token, new_token

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


async def create(conn: AsyncConnection, project_id: str, scopes: list[str]) -> tuple[str, TokenRecord]:
    token = new_token()
    record = TokenRecord(str(uuid.uuid4()), project_id, tuple(scopes))
    await conn.execute(
        api_tokens.insert().values(
            id=record.id,
            project_id=project_id,
            token_hash=hash_token(token),
            scopes=list(scopes),
            created_at=time.time(),
        )
    )
    return token, record


async def find(conn: AsyncConnection, token: str) -> TokenRecord | None:
    row = (
        await conn.execute(
            sa.select(api_tokens.c.id, api_tokens.c.project_id, api_tokens.c.scopes).where(
                api_tokens.c.token_hash == hash_token(token), api_tokens.c.revoked_at.is_(None)
            )
        )
    ).first()
    return TokenRecord(row.id, row.project_id, tuple(row.scopes)) if row else None


async def revoke(conn: AsyncConnection, token_or_id: str) -> bool:
    """Revoke by token value or by token id; True when a live token was revoked."""
    match = sa.or_(api_tokens.c.token_hash == hash_token(token_or_id), api_tokens.c.id == token_or_id)
    result = await conn.execute(
        api_tokens.update().where(match, api_tokens.c.revoked_at.is_(None)).values(revoked_at=time.time())
    )
    return result.rowcount > 0
