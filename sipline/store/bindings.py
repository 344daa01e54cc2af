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

from .prepared import Prepared
from .schema import sip_bindings

_B = sip_bindings
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
            updated.append({**_row(endpoint_id, b, o), "row_id": same.row_id})
    _DELETE.run_many(conn, [{"row_id": s.row_id} for rows in stored.values() for s in rows])
    _UPDATE.run_many(conn, updated)
    _INSERT.run_many(conn, inserted)


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
