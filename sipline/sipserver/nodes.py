"""The installation's SIP nodes: this one announces itself, and knows which others are alive.

Every node writes its row (id and address) at start and again every HEARTBEAT seconds, and
removes it when it stops. A node not seen for LIFETIME seconds is gone, and so are the flows it
held: bindings naming it are skipped at once rather than rung until a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from sqlalchemy import Connection

from sipline.store import nodes as store
from sipline.store.db import Database

from .local import Local

log = logging.getLogger("sipline.sip.nodes")

HEARTBEAT = 10.0
LIFETIME = 35.0


class Nodes:
    def __init__(self, db: Database, local: Local) -> None:
        self.db = db
        self.local = local
        self._alive: dict[str, store.Node] = {}
        self._task: asyncio.Task[None] | None = None
        self._refreshed = 0.0

    def me(self) -> store.Node:
        """This process's row: the worker's, at its relay port, when the node runs several."""
        local, ports = self.local, self.local.ports
        udp = local.relay_port if local.relay_port is not None else ports["udp"]
        return store.Node(local.worker_id, local.host, udp, ports["tcp"], ports["tls"])

    def _rows(self) -> list[store.Node]:
        """The rows this process keeps alive: its own, and the node's for its first worker
        (the node's row names the shared UDP port, through which its UDP devices are reached)."""
        local, ports = self.local, self.local.ports
        rows = [self.me()]
        if local.worker == 0:
            rows.append(store.Node(local.node_id, local.host, ports["udp"], ports["tcp"], ports["tls"]))
        return rows

    async def start(self) -> None:
        await self._beat()
        self._task = asyncio.get_running_loop().create_task(self._heartbeats())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):  # going away: a store that is away too changes nothing
            await self.db.write(store.leave, self.local.worker_id)

    def get(self, node_id: str) -> store.Node | None:
        """A live node (this one included) by id, as of the last heartbeat."""
        return self._alive.get(node_id)

    def at(self, host: str, port: int) -> store.Node | None:
        """The live node listening at this address, if any (a relay forwards only to nodes and flows)."""
        for node in self._alive.values():
            if node.host == host and port in (node.udp_port, node.tcp_port, node.tls_port):
                return node
        return None

    async def learn(self, node_ids: set[str]) -> None:
        """Make sure these nodes are known if they are alive: a node that started since the last
        heartbeat is read from the store at once (at most once a second), not 10 s later."""
        if node_ids <= self._alive.keys() or time.monotonic() - self._refreshed < 1.0:
            return
        self._refreshed = time.monotonic()
        found = await self.db.read(store.alive, time.time() - LIFETIME)
        self._alive = {node.node_id: node for node in found}

    async def _beat(self) -> None:
        now = time.time()
        rows = self._rows()

        def beat(conn: Connection) -> list[store.Node]:
            for row in rows:
                store.announce(conn, row, now)
            return store.alive(conn, now - LIFETIME)

        self._alive = {node.node_id: node for node in await self.db.write(beat)}

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await self._beat()
            except Exception as exc:  # the store may be briefly away; the next beat retries
                log.warning("SIP nodes: heartbeat failed: %s", exc)
