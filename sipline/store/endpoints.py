"""SIP endpoint rows: fetch, insert, update, delete, and keyset pages for the list route."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from sipline.domain.endpoint import STORED
from sipline.domain.errors import Conflict, Problem

from .db import savepoint
from .prepared import Prepared
from .schema import PROFILE_COLUMNS, projects, sip_bindings, sip_endpoints

_T = sip_endpoints
_RECORD_COLUMNS = [_T.c.seq, _T.c.id, _T.c.password_sealed, *(_T.c[name] for name in STORED)]

USERNAME_TAKEN = Problem("username", "username has already been taken", "Invalid Attribute", "taken")


# Hot statements are built once: building a 30-column SELECT costs more than running it.
_SELECT_RECORDS = sa.select(*_RECORD_COLUMNS)
_BY_ID_QUERY = _SELECT_RECORDS.where(
    _T.c.id == sa.bindparam("endpoint_id"), _T.c.project_id == sa.bindparam("project_id")
)
_BY_ID = Prepared(_BY_ID_QUERY)
# A GET needs the project's defaults as well: one statement instead of two.
_PROFILE_COLUMNS = [projects.c[name] for name in PROFILE_COLUMNS]
_WITH_PROFILE = Prepared(
    _BY_ID_QUERY.add_columns(*_PROFILE_COLUMNS).join_from(_T, projects, projects.c.id == _T.c.project_id)
)
_BY_ID_LOCKED = Prepared(_BY_ID_QUERY.with_for_update())
# An endpoint as the call engine needs it, found by user name: its record, its digest credentials
# and its project's profile (the caller authenticating, or the endpoint being called).
_BY_USERNAME_WITH_PROFILE = Prepared(
    sa.select(*_RECORD_COLUMNS, _T.c.ha1_md5, _T.c.ha1_sha256, *_PROFILE_COLUMNS)
    .join_from(_T, projects, projects.c.id == _T.c.project_id)
    .where(_T.c.project_id == sa.bindparam("project_id"), _T.c.username == sa.bindparam("username"))
)
_NAME_TAKEN = (
    sa.select(_T.c.seq)
    .where(_T.c.project_id == sa.bindparam("project_id"), _T.c.username == sa.bindparam("username"))
    .where(_T.c.id != sa.bindparam("except_id"))
    .limit(1)
)
# What the registrar needs to authenticate a REGISTER (AUTH_COLUMNS), with the row locked
# (PostgreSQL): REGISTERs for one endpoint are serialised across nodes, and a password change counts
# at once. (Or read without the lock with the bindings, for a write that checks these columns
# unchanged instead: bindings.with_auth_record, bindings.refresh_if_unchanged.)
AUTH_COLUMNS = ("id", "username", "encryption", "ha1_md5", "ha1_sha256")
_AUTH_LOCKED = Prepared(
    sa.select(*(_T.c[name] for name in AUTH_COLUMNS))
    .where(_T.c.project_id == sa.bindparam("project_id"), _T.c.username == sa.bindparam("username"))
    .with_for_update()
)
_CREDENTIAL_COLUMNS = ("password_sealed", "ha1_md5", "ha1_sha256")
_JSON_PARAMS = frozenset(f"v_{c.key}" for c in _T.columns if isinstance(c.type, sa.JSON))


def _writes(statement: Any, columns: tuple[str, ...]) -> Prepared:
    """INSERT or UPDATE of `columns`, each bound as v_<column> (a bind may not share a column's name)."""
    return Prepared(statement.values({name: sa.bindparam(f"v_{name}") for name in columns}), json_params=_JSON_PARAMS)


_UPDATE_WHERE = _T.update().where(_T.c.id == sa.bindparam("where_id"))
_INSERT = _writes(_T.insert(), (*STORED, *_CREDENTIAL_COLUMNS, "id", "project_id", "created_at", "updated_at"))
# One UPDATE per set of changed columns, built on first use: a partial update writes only what
# changed, so SQLite leaves untouched indexes (and the search index's trigger) alone.
_UPDATES: dict[tuple[str, ...], Prepared] = {}


def _record(row: sa.Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)


def get(conn: Connection, project_id: str, endpoint_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    query = _BY_ID_LOCKED if for_update else _BY_ID
    return query.first(conn, endpoint_id=endpoint_id, project_id=project_id)


def get_with_profile(conn: Connection, project_id: str, endpoint_id: str) -> dict[str, Any] | None:
    """The endpoint's record merged with its project's profile columns (default_*, domain_identifier)."""
    return _WITH_PROFILE.first(conn, endpoint_id=endpoint_id, project_id=project_id)


def find_with_profile(conn: Connection, project_id: str, username: str) -> dict[str, Any] | None:
    """The endpoint named `username` in the project, with its credentials and its profile's columns."""
    return _BY_USERNAME_WITH_PROFILE.first(conn, project_id=project_id, username=username)


def auth_record_for_update(conn: Connection, project_id: str, username: str) -> dict[str, Any] | None:
    return _AUTH_LOCKED.first(conn, project_id=project_id, username=username)


def username_taken(conn: Connection, project_id: str, username: str, except_id: str | None = None) -> bool:
    params = {"project_id": project_id, "username": username, "except_id": except_id or ""}
    return conn.execute(_NAME_TAKEN, params).first() is not None


def _bound(values: dict[str, Any]) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in values.items()}


def _write(conn: Connection, statement: Prepared, params: dict[str, Any]) -> None:
    """Run a write whose only possible conflict is the (project, username) uniqueness."""
    try:
        with savepoint(conn):
            statement.run(conn, **params)
    except IntegrityError:
        raise Conflict(USERNAME_TAKEN) from None


def insert(conn: Connection, project_id: str, record: dict[str, Any], credentials: dict[str, str]) -> str:
    endpoint_id = str(uuid.uuid4())
    now = time.time()
    values = {name: record.get(name) for name in STORED}
    values |= {**credentials, "id": endpoint_id, "project_id": project_id, "created_at": now, "updated_at": now}
    _write(conn, _INSERT, _bound(values))
    return endpoint_id


def update(conn: Connection, endpoint_id: str, changes: dict[str, Any]) -> None:
    """Write the changed stored columns (and credential columns) of a row the caller has locked."""
    if not changes:
        return
    values = {**changes, "updated_at": time.time()}
    columns = tuple(sorted(values))
    statement = _UPDATES.get(columns)
    if statement is None:
        statement = _UPDATES.setdefault(columns, _writes(_UPDATE_WHERE, columns))
    _write(conn, statement, {**_bound(values), "where_id": endpoint_id})


def delete(conn: Connection, project_id: str, endpoint_id: str) -> bool:
    # Bindings go explicitly as well: a SQLite connection opened elsewhere may lack foreign_keys=ON.
    owned = sa.select(_T.c.id).where(_T.c.id == endpoint_id, _T.c.project_id == project_id)
    conn.execute(sip_bindings.delete().where(sip_bindings.c.endpoint_id.in_(owned)))
    result = conn.execute(_T.delete().where(_T.c.id == endpoint_id, _T.c.project_id == project_id))
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
    """Case-insensitive substring match (PostgreSQL's planner serves it from the pg_trgm index)."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


_TRIGRAM_CAP = 1000
_TRIGRAM_QUERY = sa.text(
    "SELECT rowid FROM sip_endpoints_search WHERE sip_endpoints_search MATCH :match"
    " AND rowid > :after AND rowid < :before ORDER BY rowid LIMIT :limit"
)


def _trigram_candidates(conn: Connection, q: PageQuery) -> list[int] | None:
    """SQLite: the seqs the FTS5 trigram index (migration 0002) says may match, if few enough.

    SQLite's planner would scan the project's rows and probe the index for each; fetching up to
    _TRIGRAM_CAP candidates first turns a 100,000-row scan into as many rowid lookups. A needle
    with more candidates is common, and the scan in seq order then meets a page's worth soon.
    """
    terms = [(name, needle) for name, needle in (("username", q.username), ("caller_id", q.caller_id)) if needle]
    if conn.dialect.name != "sqlite" or not terms or any(len(needle) < 3 for _, needle in terms):
        return None
    # A quoted phrase matches where its trigrams occur in that column, in order; the ILIKE decides.
    match = " AND ".join(f'{name} : "{needle.replace(chr(34), chr(34) * 2)}"' for name, needle in terms)
    after = q.after if q.after is not None else -1
    before = q.before if q.before is not None else 2**62
    params = {"match": match, "after": after, "before": before, "limit": _TRIGRAM_CAP + 1}
    seqs = conn.execute(_TRIGRAM_QUERY, params).scalars().all()
    return None if len(seqs) > _TRIGRAM_CAP else list(seqs)


def page(conn: Connection, q: PageQuery) -> Page:
    """One page in seq order. Keyset, not offset: rows created or deleted meanwhile shift nothing."""
    if "\x00" in (q.username or "") + (q.caller_id or ""):
        # No stored value holds a NUL (control characters are refused), and PostgreSQL cannot
        # even compare one: the answer is known without asking.
        return Page([], has_more=False, has_less=q.after is not None)
    where: list[sa.ColumnElement[bool]] = []
    if q.username:
        where.append(_contains(_T.c.username, q.username))
    if q.caller_id:
        where.append(_contains(_T.c.caller_id, q.caller_id))
    candidates = _trigram_candidates(conn, q)
    if candidates is None:
        where.append(_T.c.project_id == q.project_id)
    else:
        # Unary + keeps SQLite from driving the query by the project index instead of the candidates.
        where.append(sa.literal_column("+sip_endpoints.project_id") == q.project_id)
        where.append(_T.c.seq.in_(candidates))
    if q.before is not None:
        where.append(_T.c.seq < q.before)
        order = _T.c.seq.desc()
    else:
        if q.after is not None:
            where.append(_T.c.seq > q.after)
        order = _T.c.seq.asc()
    result = conn.execute(_SELECT_RECORDS.where(*where).order_by(order).limit(q.size + 1))
    rows = [_record(r) for r in result]
    more = len(rows) > q.size
    rows = rows[: q.size]
    if q.before is not None:
        rows.reverse()
        return Page(rows, has_more=True, has_less=more)
    # Coming from an earlier page means there is one to go back to.
    has_less = q.after is not None
    return Page(rows, has_more=more, has_less=has_less)
