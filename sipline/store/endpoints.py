"""SIP endpoint rows: fetch, insert, update, delete, and keyset pages for the list route."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sipline.domain.endpoint import STORED
from sipline.domain.errors import Conflict, Problem

from .schema import sip_bindings, sip_endpoints

_T = sip_endpoints
_RECORD_COLUMNS = [_T.c.seq, _T.c.id, _T.c.password_sealed, *(_T.c[name] for name in STORED)]

USERNAME_TAKEN = Problem("username", "username has already been taken", "Invalid Attribute", "taken")


def _record(row: sa.Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)


async def get(
    conn: AsyncConnection, project_id: str, endpoint_id: str, *, for_update: bool = False
) -> dict[str, Any] | None:
    query = sa.select(*_RECORD_COLUMNS).where(_T.c.id == endpoint_id, _T.c.project_id == project_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _record(row) if row else None


async def username_taken(conn: AsyncConnection, project_id: str, username: str, except_id: str | None = None) -> bool:
    query = sa.select(_T.c.seq).where(_T.c.project_id == project_id, _T.c.username == username)
    if except_id:
        query = query.where(_T.c.id != except_id)
    return (await conn.execute(query.limit(1))).first() is not None


def _stored_values(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record.get(name) for name in STORED}


async def insert(conn: AsyncConnection, project_id: str, record: dict[str, Any], credentials: dict[str, str]) -> str:
    endpoint_id = str(uuid.uuid4())
    now = time.time()
    values = {
        **_stored_values(record),
        **credentials,
        "id": endpoint_id,
        "project_id": project_id,
        "created_at": now,
        "updated_at": now,
    }
    try:
        async with conn.begin_nested():
            await conn.execute(_T.insert().values(values))
    except IntegrityError:
        raise Conflict(USERNAME_TAKEN) from None
    return endpoint_id


async def update(
    conn: AsyncConnection, endpoint_id: str, record: dict[str, Any], credentials: dict[str, str] | None
) -> None:
    values = {**_stored_values(record), **(credentials or {}), "updated_at": time.time()}
    try:
        async with conn.begin_nested():
            await conn.execute(_T.update().where(_T.c.id == endpoint_id).values(values))
    except IntegrityError:
        raise Conflict(USERNAME_TAKEN) from None


async def delete(conn: AsyncConnection, project_id: str, endpoint_id: str) -> bool:
    # Bindings go explicitly as well: a SQLite connection opened elsewhere may lack foreign_keys=ON.
    owned = sa.select(_T.c.id).where(_T.c.id == endpoint_id, _T.c.project_id == project_id)
    await conn.execute(sip_bindings.delete().where(sip_bindings.c.endpoint_id.in_(owned)))
    result = await conn.execute(_T.delete().where(_T.c.id == endpoint_id, _T.c.project_id == project_id))
    return result.rowcount > 0


@dataclass(frozen=True)
class PageQuery:
    project_id: str
    size: int
    username: str | None = None
    caller_id: str | None = None
    after: int | None = None  # seq of the last row of the previous page (forward)
    before: int | None = None  # seq of the first row of the next page (backward, for links.prev)


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    has_more: bool  # more rows beyond this page in the direction of travel
    has_less: bool  # rows exist before this page


def _contains(column: sa.ColumnElement[Any], needle: str) -> sa.ColumnElement[bool]:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


async def page(conn: AsyncConnection, q: PageQuery) -> Page:
    """One page in seq order. Keyset, not offset: rows created or deleted meanwhile shift nothing."""
    where: list[sa.ColumnElement[bool]] = [_T.c.project_id == q.project_id]
    if q.username:
        where.append(_contains(_T.c.username, q.username))
    if q.caller_id:
        where.append(_contains(_T.c.caller_id, q.caller_id))
    if q.before is not None:
        where.append(_T.c.seq < q.before)
        order = _T.c.seq.desc()
    else:
        if q.after is not None:
            where.append(_T.c.seq > q.after)
        order = _T.c.seq.asc()
    result = await conn.execute(sa.select(*_RECORD_COLUMNS).where(*where).order_by(order).limit(q.size + 1))
    rows = [_record(r) for r in result]
    more = len(rows) > q.size
    rows = rows[: q.size]
    if q.before is not None:
        rows.reverse()
        return Page(rows, has_more=True, has_less=more)
    # Coming from an earlier page means there is one to go back to.
    has_less = q.after is not None
    return Page(rows, has_more=more, has_less=has_less)
