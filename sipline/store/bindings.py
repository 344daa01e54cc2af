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

from .schema import sip_bindings

_B = sip_bindings


@dataclass(frozen=True)
class Origin:
    """Where a REGISTER came from: stored with each binding it created or refreshed."""

    transport: str
    source_host: str
    source_port: int
    user_agent: str | None


@dataclass(frozen=True)
class StoredBinding:
    binding: Binding
    origin: Origin


def _stored(row: sa.Row[Any]) -> StoredBinding:
    m = row._mapping
    return StoredBinding(
        Binding(m["contact"], m["expires_at"], m["call_id"], m["cseq"], m["q"], m["registered_at"]),
        Origin(m["transport"], m["source_host"], m["source_port"], m["user_agent"]),
    )


def list_for_endpoint(conn: Connection, endpoint_id: str, *, now: float | None = None) -> list[StoredBinding]:
    """An endpoint's bindings in registration order; only those still live at `now` when given."""
    query = sa.select(_B).where(_B.c.endpoint_id == endpoint_id)
    if now is not None:
        query = query.where(_B.c.expires_at > now)
    rows = conn.execute(query.order_by(_B.c.registered_at, _B.c.id))
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
    the endpoint row lock (see `sipline.store.db`), so no other writer interleaves.
    """
    kept = {s.binding: s.origin for s in previous}
    rows = [
        {
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
        }
        for b in bindings
        for o in (kept.get(b, origin),)
    ]
    if previous:
        conn.execute(_B.delete().where(_B.c.endpoint_id == endpoint_id))
    if rows:
        conn.execute(_B.insert(), rows)


def purge_expired(conn: Connection, now: float) -> int:
    result = conn.execute(_B.delete().where(_B.c.expires_at <= now))
    return int(result.rowcount or 0)
