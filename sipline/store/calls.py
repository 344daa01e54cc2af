"""Call records: written by the call engine, read by the LaML Calls resource.

One row per call leg (sipline.domain.calls). The engine creates a record when a leg starts and
updates it as the leg rings, answers and ends; `close_unfinished` settles the records a crash
left open. Lists are newest first, paged by keyset on seq, as Twilio lists calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sipline.domain.calls import UNFINISHED_STATUSES, Span

from .prepared import Prepared
from .schema import ADDRESS_PREFIX, address_prefix, calls

_T = calls
COLUMNS: tuple[str, ...] = tuple(c.key for c in _T.columns if c.key != "seq")
# What an update may change: a record keeps its identity, owner, parent and direction.
MUTABLE: frozenset[str] = frozenset(COLUMNS) - {"sid", "project_id", "parent_call_sid", "direction", "date_created"}

_SELECT = sa.select(*_T.columns)
_BY_SID = Prepared(_SELECT.where(_T.c.project_id == sa.bindparam("project_id"), _T.c.sid == sa.bindparam("sid")))
_INSERT = Prepared(_T.insert().values({name: sa.bindparam(f"v_{name}") for name in COLUMNS}))
_UPDATE_WHERE = _T.update().where(_T.c.sid == sa.bindparam("where_sid"))
# One UPDATE per set of changed columns, built on first use: the engine writes a few columns at a time.
_UPDATES: dict[tuple[str, ...], Prepared] = {}


def create(conn: Connection, record: dict[str, Any]) -> None:
    """Insert a call record. `record` holds the columns (the sid is the caller's, from
    sipline.domain.calls.new_sid); nullable ones may be left out, and date_created/date_updated
    default to now. IntegrityError if the sid exists or a required column is missing."""
    create_many(conn, [record])


def create_many(conn: Connection, records: list[dict[str, Any]]) -> None:
    """Insert call records, as `create` each, in one statement run for all of them."""
    now = time.time()
    rows = []
    for record in records:
        unknown = set(record) - set(COLUMNS)
        if unknown:
            raise ValueError(f"not columns of calls: {sorted(unknown)}")
        values = {name: record.get(name) for name in COLUMNS}
        for name in ("date_created", "date_updated"):
            if values[name] is None:
                values[name] = now
        rows.append({f"v_{name}": value for name, value in values.items()})
    _INSERT.run_many(conn, rows)


def update(conn: Connection, sid: str, changes: dict[str, Any]) -> None:
    """Change some columns of a record (status, answered_time, end_time, sip_result_code, ...);
    date_updated becomes now unless `changes` gives it."""
    update_many(conn, [(sid, changes)])


def update_many(conn: Connection, changes: list[tuple[str, dict[str, Any]]]) -> None:
    """Change records as `update` each in turn, one statement run for all that change the same
    columns (a record's changes are folded into one first, later values winning, so that
    grouping them by columns cannot reorder them)."""
    now = time.time()
    folded: dict[str, dict[str, Any]] = {}
    for sid, change in changes:
        folded.setdefault(sid, {}).update(change)
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for sid, change in folded.items():
        if not change:
            continue
        refused = set(change) - MUTABLE
        if refused:
            raise ValueError(f"calls columns that cannot be updated: {sorted(refused)}")
        values = {"date_updated": now, **change}
        row = {f"v_{name}": value for name, value in values.items()}
        row["where_sid"] = sid
        by_columns.setdefault(tuple(sorted(values)), []).append(row)
    for columns, rows in by_columns.items():
        statement = _UPDATES.get(columns)
        if statement is None:
            update_ = _UPDATE_WHERE.values({name: sa.bindparam(f"v_{name}") for name in columns})
            statement = _UPDATES.setdefault(columns, Prepared(update_))
        statement.run_many(conn, rows)


def get(conn: Connection, project_id: str, sid: str) -> dict[str, Any] | None:
    return _BY_SID.first(conn, project_id=project_id, sid=sid)


@dataclass(frozen=True)
class CallQuery:
    project_id: str
    size: int
    to_address: str | None = None  # exact match, as Twilio's To
    from_address: str | None = None  # exact match, as Twilio's From
    parent_call_sid: str | None = None
    status: str | None = None
    start_time: Span = field(default_factory=Span)
    end_time: Span = field(default_factory=Span)  # a call still going on (no end_time) is in no span
    after: int | None = None  # seq of the last row of the previous page: this page is older
    before: int | None = None  # seq of the first row of the next page: this page is newer (going back)


@dataclass(frozen=True)
class CallPage:
    rows: list[dict[str, Any]]  # newest first
    has_older: bool  # rows exist after this page, in list order
    has_newer: bool  # rows exist before this page, in list order


def _in_span(column: sa.ColumnElement[float], span: Span) -> list[sa.ColumnElement[bool]]:
    where = []
    if span.since is not None:
        where.append(column >= span.since)
    if span.until is not None:
        where.append(column < span.until)
    return where


def _address_is(column: sa.ColumnElement[str], value: str) -> list[sa.ColumnElement[bool]]:
    """The prefix is what the index holds (see schema.address_prefix). For a value shorter than the
    prefix, matching it is matching the whole; only a longer value needs the second comparison,
    which SQLite's planner takes as a reason to leave the expression index alone."""
    where = [address_prefix(column) == value[:ADDRESS_PREFIX]]
    if len(value) >= ADDRESS_PREFIX:
        where.append(column == value)
    return where


def page(conn: Connection, q: CallQuery) -> CallPage:
    """One page, newest first. Keyset on seq, not offsets: calls created meanwhile (newer than the
    first page) shift nothing, so following the pages visits each older record once."""
    texts = (q.to_address, q.from_address, q.parent_call_sid, q.status)
    if any("\x00" in t for t in texts if t):
        # No stored value holds a NUL, and PostgreSQL cannot even compare one.
        return CallPage([], has_older=False, has_newer=q.after is not None)
    rows = [dict(r._mapping) for r in conn.execute(_page_statement(q))]
    more = len(rows) > q.size
    rows = rows[: q.size]
    if q.before is not None:
        rows.reverse()
        return CallPage(rows, has_older=True, has_newer=more)
    return CallPage(rows, has_older=more, has_newer=q.after is not None)


def _page_statement(q: CallQuery) -> sa.Select[Any]:
    """The rows of a page and one more (which tells whether there are more)."""
    where: list[sa.ColumnElement[bool]] = [_T.c.project_id == q.project_id]
    if q.to_address is not None:
        where += _address_is(_T.c.to_address, q.to_address)
    if q.from_address is not None:
        where += _address_is(_T.c.from_address, q.from_address)
    if q.parent_call_sid is not None:
        where.append(_T.c.parent_call_sid == q.parent_call_sid)
    if q.status is not None:
        where.append(_T.c.status == q.status)
    where += _in_span(_T.c.start_time, q.start_time)
    where += _in_span(_T.c.end_time, q.end_time)
    if q.before is not None:  # going back: the rows just newer than the next page, nearest first
        where.append(_T.c.seq > q.before)
        order = _T.c.seq.asc()
    else:
        if q.after is not None:
            where.append(_T.c.seq < q.after)
        order = _T.c.seq.desc()
    return _SELECT.where(*where).order_by(order).limit(q.size + 1)


def close_unfinished(
    conn: Connection, now: float, reason: str, node_id: str | None = None, *, workers: bool = False
) -> int:
    """Mark the records not in a final status `failed`, ended `now`, with `reason` as their
    error_message; returns how many. For a node starting after a crash: no leg outlives the
    process that ran it. With `node_id`, only the records that node wrote (other nodes' calls
    are alive), and with `workers` those of its workers too (`NODE/wI`); without, every record."""
    statement = (
        _T.update()
        .where(_T.c.status.in_(UNFINISHED_STATUSES))
        .values(status="failed", end_time=now, error_message=reason, date_updated=now)
    )
    if node_id is not None:
        mine = _T.c.node_id == node_id
        if workers:
            mine = mine | _T.c.node_id.startswith(f"{node_id}/", autoescape=True)
        statement = statement.where(mine)
    return int(conn.execute(statement).rowcount)
