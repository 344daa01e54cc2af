"""SIP over UDP: one datagram, one message, handed to the service with the flow it came on."""

from __future__ import annotations

import asyncio
import logging

from sipline.sipserver.flows import UdpFlow
from sipline.sipserver.service import SipService

log = logging.getLogger("sipline.sip.udp")


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, service: SipService, max_in_flight: int = 1024, *, dispatch: bool = False) -> None:
        self.service = service
        self.max_in_flight = max_in_flight
        self.dispatch = dispatch  # a socket of the node's workers: a datagram may be another worker's
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
        self.deliver(data, addr, dispatch=self.dispatch)

    def deliver(self, data: bytes, addr: tuple[str, int], *, dispatch: bool = False) -> None:
        """A datagram that came in on this socket (or to another worker, which handed it over)."""
        if self.transport is None:
            return
        busy = len(self._tasks) >= self.max_in_flight  # beyond that, new work is dropped: UDP peers retransmit
        try:
            flow = UdpFlow(self.transport, (addr[0], addr[1]))
            task = self.service.receive(data, flow, busy=busy, dispatch=dispatch)
        except Exception:
            log.exception("SIP: failed on a datagram from %s:%s", addr[0], addr[1])
            return
        if task is not None and not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: its transactions time out on their own.
        log.debug("UDP error: %s", exc)

    async def close(self) -> None:
        """Stop listening, finish the requests being answered, and return once the socket is closed."""
        if self.transport is not None:
            self.transport.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._closed is not None:
            await self._closed
