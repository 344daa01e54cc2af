"""API tokens: shown once at creation, stored as SHA-256 hashes, checked by hash."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
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
    forget_verified()
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


# ------------------------------------------------------------------------------ verified tokens

# How long a verified token is trusted where no commit marker exists (PostgreSQL): a revocation by
# another process or node takes effect here within this many seconds.
VERIFIED_TTL = 1.0
_revocations = 0  # bumped by every revocation in this process: every cached verdict is dropped
_revoked_at = -1e9  # time.monotonic() of the last one


def forget_verified() -> None:
    """Drop every verdict that VerifiedTokens caches in this process (called by `revoke`; call it
    from anything else that deletes tokens or projects), and keep none for a while: the revoking
    transaction has not committed yet, and a lookup meanwhile would still find the token."""
    global _revocations, _revoked_at
    _revocations += 1
    _revoked_at = time.monotonic()


class VerifiedTokens:
    """Verdicts of `find` this process reached lately, so that a request with a known token skips
    the database. Keyed by the SHA-256 of the whole credential (the Authorization header, project
    id and token together): no token is kept in memory. Only found tokens are kept.

    A verdict stands while nothing can have changed it:
    - a revocation in this process (`revoke`, `forget_verified`) drops every verdict at once,
      and none is kept for `ttl` seconds after it, while the revoking transaction commits;
    - a commit by any other connection (another process such as `sipline tokens revoke`, another
      node or worker on the same SQLite file, a project deleted there) changes `others_commits()`
      (SQLite's data_version) and drops every verdict at once;
    - where there is no such marker (PostgreSQL: `others_commits()` is None), a verdict lives at
      most `ttl` seconds, which bounds how long a revocation on another node takes to apply here.
    """

    def __init__(self, others_commits: Callable[[], int | None], ttl: float = VERIFIED_TTL, size: int = 10_000) -> None:
        self._others_commits = others_commits
        self._ttl = ttl
        self._size = size
        self._verdicts: dict[bytes, tuple[TokenRecord, float]] = {}
        self._seen: tuple[int, int | None] = (-1, None)

    @staticmethod
    def key(credential: bytes) -> bytes:
        return hashlib.sha256(credential).digest()

    def _current(self) -> None:
        seen = (_revocations, self._others_commits())
        if seen != self._seen:
            self._verdicts.clear()
            self._seen = seen

    def get(self, key: bytes) -> TokenRecord | None:
        self._current()
        hit = self._verdicts.get(key)
        if hit is None:
            return None
        if time.monotonic() >= hit[1]:
            del self._verdicts[key]
            return None
        return hit[0]

    def put(self, key: bytes, record: TokenRecord, seen: tuple[int, int | None]) -> None:
        """Keep a verdict reached by a lookup that started when `snapshot()` returned `seen`: if
        anything changed since, the lookup may predate it, and the verdict is not kept."""
        self._current()
        if seen != self._seen or time.monotonic() < _revoked_at + self._ttl:
            return
        if len(self._verdicts) >= self._size:
            self._verdicts.clear()
        self._verdicts[key] = (record, time.monotonic() + self._ttl)

    def snapshot(self) -> tuple[int, int | None]:
        self._current()
        return self._seen
