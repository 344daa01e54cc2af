"""SIP over UDP: one datagram, one message; the answer goes where the stamped top Via says."""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Coroutine, Generator
from typing import Any

from sipline.sip.service import Incoming, Reply, SipService
from sipline.sip.transport.routing import udp_reply_address

log = logging.getLogger("sipline.sip.udp")


@types.coroutine
def _resume(started: Coroutine[Any, Any, None], pending: Any) -> Generator[Any, Any, None]:
    """Hand a coroutine that already ran up to its first wait (it yielded `pending`) to a task:
    the task waits on `pending`, then every send and throw goes on to the coroutine."""
    while True:
        try:
            value = yield pending
        except BaseException as exc:  # cancellation included: the coroutine decides what it means
            try:
                pending = started.throw(exc)
            except StopIteration:
                return
            continue
        try:
            pending = started.send(value)
        except StopIteration:
            return


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, service: SipService, max_in_flight: int = 1024) -> None:
        self.service = service
        self.max_in_flight = max_in_flight
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Start answering inside datagram_received only where nothing before the first wait needs
        # to run in a task: SQLite runs inline. asyncpg wants asyncio.current_task() (timeouts).
        self.inline = service.runtime.db.is_sqlite

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        source = (addr[0], addr[1])
        try:
            # Parsing is synchronous so that garbage costs no task and cannot queue ahead of others.
            prepared = self.service.prepare(data, "udp", source)
        except Exception:
            log.debug("dropped a datagram from %s:%s", *source, exc_info=True)
            return
        if prepared is None:
            return
        if isinstance(prepared, Reply):
            self._send(prepared, source)
            return
        if len(self._tasks) >= self.max_in_flight:
            # Overloaded: drop; UDP clients retransmit, and what is in flight finishes first.
            log.debug("dropped a request from %s:%s: %d in flight", *source, len(self._tasks))
            return
        answering = self._answer(prepared, source)
        if self.inline:
            # Run the answer up to its first real wait here: on SQLite most answers never wait, and
            # a task per datagram (creation, a loop round, its bookkeeping) costs more than they do.
            try:
                pending = answering.send(None)
            except StopIteration:
                return  # answered (or dropped) already
            task = asyncio.get_running_loop().create_task(_resume(answering, pending))
        else:
            task = asyncio.get_running_loop().create_task(answering)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, incoming: Incoming, source: tuple[str, int]) -> None:
        try:
            reply = await self.service.answer(incoming, "udp", source)
        except Exception:
            log.debug("failed to answer %s:%s", *source, exc_info=True)
            return
        if reply is not None:
            self._send(reply, source)

    def _send(self, reply: Reply, source: tuple[str, int]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.transport.sendto(reply.data, udp_reply_address(reply.via, source))
        except OSError:
            log.debug("cannot send to %s:%s", *source, exc_info=True)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a client that went away: nothing to do.
        log.debug("UDP error: %s", exc)

    async def drain(self) -> None:
        """Wait for the requests being answered (at shutdown)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
