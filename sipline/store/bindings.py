"""Registered contacts (Kamailio's `usrloc`): the bindings the registrar decided, kept in the store.

Every node reads and writes the same rows, so a phone registered through one node is seen by all.
The registrar core decides the binding set; this module only stores it, with where it came from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from sipline.sip.registrar import Binding

from .endpoints import AUTH_COLUMNS
from .prepared import Prepared
from .schema import sip_bindings, sip_endpoints

_B = sip_bindings
_E = sip_endpoints
_COLUMNS = ("contact", "expires_at", "call_id", "cseq", "q", "registered_at")
_ORIGIN = ("transport", "source_host", "source_port", "user_agent", "node_id", "flow_id")
_INSERTED = ("endpoint_id", *_COLUMNS, *_ORIGIN)


_SELECTED = sa.select(*(_B.c[name] for name in (*_COLUMNS, *_ORIGIN)), _B.c.id).where(
    _B.c.endpoint_id == sa.bindparam("endpoint_id")
)
_ORDER = (_B.c.registered_at, _B.c.id)
_LIST = Prepared(_SELECTED.order_by(*_ORDER))
_LIST_LIVE = Prepared(_SELECTED.where(_B.c.expires_at > sa.bindparam("now")).order_by(*_ORDER))
_DELETE = Prepared(_B.delete().where(_B.c.id == sa.bindparam("row_id")))
_UPDATE = Prepared(
    _B.update()
    .where(_B.c.id == sa.bindparam("row_id"))
    .values({name: sa.bindparam(name) for name in _INSERTED if name not in ("endpoint_id", "contact")})
)
_INSERT = Prepared(_B.insert().values({name: sa.bindparam(name) for name in _INSERTED}))
# _UPDATE, when the row still holds what was read (was_<column>) and the endpoint's credentials
# are still those the REGISTER was checked against (auth_<column>): `refresh_if_unchanged`.
_REFRESH = Prepared(
    _B.update()
    .where(
        _B.c.id == sa.bindparam("row_id"),
        *(_B.c[name].is_not_distinct_from(sa.bindparam(f"was_{name}")) for name in (*_COLUMNS, *_ORIGIN)),
        sa.exists().where(
            _E.c.id == sa.bindparam("endpoint_id"),
            *(_E.c[name] == sa.bindparam(f"auth_{name}") for name in AUTH_COLUMNS if name != "id"),
        ),
    )
    .values({name: sa.bindparam(name) for name in _INSERTED if name not in ("endpoint_id", "contact")})
)
_PURGE = Prepared(_B.delete().where(_B.c.expires_at <= sa.bindparam("now")))


@dataclass(frozen=True)
class Origin:
    """Where a REGISTER came from: stored with each binding it created or refreshed."""

    transport: str
    source_host: str
    source_port: int
    user_agent: str | None
    node_id: str | None = None  # the node holding the flow the device registered on
    flow_id: str | None = None  # TCP, TLS: that node's connection; UDP: none (the source address is the flow)


@dataclass(frozen=True)
class StoredBinding:
    binding: Binding
    origin: Origin
    row_id: int  # the row it is stored in (replace updates it in place)


def _stored(row: tuple[Any, ...]) -> StoredBinding:
    (
        contact,
        expires_at,
        call_id,
        cseq,
        q,
        registered_at,
        transport,
        host,
        port,
        user_agent,
        node_id,
        flow_id,
        row_id,
    ) = row
    return StoredBinding(
        Binding(contact, expires_at, call_id, cseq, q, registered_at),
        Origin(transport, host, port, user_agent, node_id, flow_id),
        row_id,
    )


# An endpoint's auth record and its bindings in one statement: one round trip, one snapshot. For a
# read without the lock only: under it (PostgreSQL, READ COMMITTED) the joined rows would be those
# from before the wait for the lock.
_WITH_AUTH = Prepared(
    sa.select(*(_E.c[name] for name in AUTH_COLUMNS), *_SELECTED.selected_columns)
    .select_from(_E.outerjoin(_B, _B.c.endpoint_id == _E.c.id))
    .where(_E.c.project_id == sa.bindparam("project_id"), _E.c.username == sa.bindparam("username"))
    .order_by(*_ORDER)
)


def with_auth_record(
    conn: Connection, project_id: str, username: str
) -> tuple[dict[str, Any] | None, list[StoredBinding]]:
    """The endpoint's `endpoints.AUTH_COLUMNS` (None: no such endpoint) and `list_for_endpoint`,
    in one statement, without a lock."""
    rows = _WITH_AUTH.all(conn, project_id=project_id, username=username)
    if not rows:
        return None, []
    width = len(AUTH_COLUMNS)
    endpoint = dict(zip(AUTH_COLUMNS, rows[0][:width], strict=True))
    return endpoint, [_stored(row[width:]) for row in rows if row[-1] is not None]


def list_for_endpoint(conn: Connection, endpoint_id: str, *, now: float | None = None) -> list[StoredBinding]:
    """An endpoint's bindings in registration order; only those still live at `now` when given."""
    if now is None:
        rows = _LIST.all(conn, endpoint_id=endpoint_id)
    else:
        rows = _LIST_LIVE.all(conn, endpoint_id=endpoint_id, now=now)
    return [_stored(r) for r in rows]


def replace(
    conn: Connection,
    endpoint_id: str,
    bindings: Iterable[Binding],
    origin: Origin,
    previous: list[StoredBinding],
) -> None:
    """Make `bindings` the endpoint's complete set; `previous` is every stored row (expired ones
    too, which go with the old set), as read under the lock.

    A binding the request did not touch keeps the origin it was registered from; the caller holds
    the endpoint row lock (see `sipline.store.db`), so no other writer interleaves. A contact
    already stored is updated in its row, the usual refresh: one statement, where deleting and
    inserting the set again took two (a round trip each on PostgreSQL).
    """
    deleted, updated, inserted = _changes(endpoint_id, bindings, origin, previous)
    _DELETE.run_many(conn, [{"row_id": s.row_id} for s in deleted])
    _UPDATE.run_many(conn, [row for row, _ in updated])
    _INSERT.run_many(conn, inserted)


def refresh_if_unchanged(
    conn: Connection,
    endpoint: dict[str, Any],
    bindings: Iterable[Binding],
    origin: Origin,
    previous: list[StoredBinding],
) -> bool:
    """`replace` without the endpoint's lock, when its write is a single binding updated in its
    row (a refresh), with `previous` and `endpoint` (its `endpoints.AUTH_COLUMNS`) read without a
    lock: one statement, which writes only if that row and the endpoint's credentials still hold
    what was read. So it is atomic without a transaction, and a REGISTER or an API change that came
    between makes it write nothing. True when written; False when nothing was, for either reason
    or because the write is of another shape: the caller then takes the lock (`replace`)."""
    deleted, updated, inserted = _changes(endpoint["id"], bindings, origin, previous)
    if deleted or inserted or len(updated) != 1:
        return False
    row, was = updated[0]
    stored = _row(endpoint["id"], was.binding, was.origin)
    params = {
        **row,
        **{f"was_{name}": stored[name] for name in (*_COLUMNS, *_ORIGIN)},
        **{f"auth_{name}": endpoint[name] for name in AUTH_COLUMNS},
    }
    return _REFRESH.run(conn, **params) == 1


def _changes(
    endpoint_id: str, bindings: Iterable[Binding], origin: Origin, previous: list[StoredBinding]
) -> tuple[list[StoredBinding], list[tuple[dict[str, Any], StoredBinding]], list[dict[str, Any]]]:
    """What `replace` writes: the stored rows to delete, the rows to update (each with the stored
    binding it replaces) and the rows to insert."""
    kept = {s.binding: s.origin for s in previous}
    stored: dict[str, list[StoredBinding]] = {}
    for s in previous:
        stored.setdefault(s.binding.contact, []).append(s)
    inserted, updated = [], []
    for b in bindings:
        o = kept.get(b, origin)
        rows = stored.get(b.contact)
        if not rows:
            inserted.append(_row(endpoint_id, b, o))
            continue
        same = next((s for s in rows if s.binding == b), rows[0])
        rows.remove(same)
        if (same.binding, same.origin) != (b, o):
            updated.append(({**_row(endpoint_id, b, o), "row_id": same.row_id}, same))
    return [s for rows in stored.values() for s in rows], updated, inserted


def _row(endpoint_id: str, b: Binding, o: Origin) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "contact": b.contact,
        "expires_at": b.expires_at,
        "registered_at": b.registered_at,
        "call_id": b.call_id,
        "cseq": b.cseq,
        "q": b.q,
        "transport": o.transport,
        "source_host": o.source_host[:64],
        "source_port": o.source_port,
        "user_agent": o.user_agent,
        "node_id": o.node_id,
        "flow_id": o.flow_id,
    }


def purge_expired(conn: Connection, now: float) -> int:
    return _PURGE.run(conn, now=now)


_COUNT_LIVE = (
    sa.select(_B.c.transport, sa.func.count()).where(_B.c.expires_at > sa.bindparam("now")).group_by(_B.c.transport)
)


def count_live(conn: Connection, now: float) -> dict[str, int]:
    """Unexpired bindings by transport, over every endpoint (what /metrics reports)."""
    return {str(transport): int(count) for transport, count in conn.execute(_COUNT_LIVE, {"now": now})}
