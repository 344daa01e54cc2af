"""SIP over UDP: one datagram, one message; the answer goes where the stamped top Via says."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Coroutine
from typing import Any

from sipline.sip.routing import udp_reply_address
from sipline.sipserver.service import Incoming, Reply, SipService

log = logging.getLogger("sipline.sip.udp")


def start_task(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task that starts running at once, inside the caller, up to its first wait (Python 3.12+).

    On SQLite most answers never wait at all (the store runs inline), and a task that must first
    wait for a round of the loop costs more than they do. Python 3.11 has no eager start: there
    the task simply starts on the next round, which is always correct, only slower.
    """
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    return loop.create_task(coro)


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, service: SipService, max_in_flight: int = 1024) -> None:
        self.service = service
        self.max_in_flight = max_in_flight
        self.transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

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
        task = start_task(asyncio.get_running_loop(), self._answer(prepared, source))
        if not task.done():  # an eager task that did not finish at once
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

    async def close(self) -> None:
        """Stop listening, finish the requests being answered, and return once the socket is closed."""
        if self.transport is not None:
            self.transport.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._closed is not None:
            await self._closed
