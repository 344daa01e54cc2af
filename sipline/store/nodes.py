"""The SIP nodes of an installation, each with the address the others reach it at."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from .schema import sip_nodes


@dataclass(frozen=True)
class Node:
    node_id: str
    host: str
    udp_port: int
    tcp_port: int
    tls_port: int


def announce(conn: Connection, node: Node, now: float) -> None:
    """Insert or refresh this node's row (seen now)."""
    updated = conn.execute(
        sip_nodes.update()
        .where(sip_nodes.c.node_id == node.node_id)
        .values(host=node.host, udp_port=node.udp_port, tcp_port=node.tcp_port, tls_port=node.tls_port, seen_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(
            sip_nodes.insert().values(
                node_id=node.node_id,
                host=node.host,
                udp_port=node.udp_port,
                tcp_port=node.tcp_port,
                tls_port=node.tls_port,
                started_at=now,
                seen_at=now,
            )
        )


def leave(conn: Connection, node_id: str) -> None:
    conn.execute(sip_nodes.delete().where(sip_nodes.c.node_id == node_id))


def alive(conn: Connection, since: float) -> list[Node]:
    """Nodes seen since `since`; the others are gone (or cut off) and their flows with them."""
    rows = conn.execute(
        sa.select(
            sip_nodes.c.node_id, sip_nodes.c.host, sip_nodes.c.udp_port, sip_nodes.c.tcp_port, sip_nodes.c.tls_port
        ).where(sip_nodes.c.seen_at >= since)
    )
    return [Node(*row) for row in rows]


def forget_gone(conn: Connection, before: float) -> int:
    """Remove the rows of nodes not seen since `before`."""
    return int(conn.execute(sip_nodes.delete().where(sip_nodes.c.seen_at < before)).rowcount)
