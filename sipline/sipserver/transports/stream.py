"""SIP over TCP and TLS: the StreamFramer cuts messages; the connection is the flow back to the peer.

A connection that delivers no complete message (or keep-alive) for `idle_timeout` seconds is
closed, so silent or trickling clients cannot hold sockets, unless it is a device's flow: one that
registered stays open as long as its registration, and one a call uses as long as the call. One
connection answers at most `max_in_flight` requests at a time and stops reading beyond that.
"""

from __future__ import annotations

import asyncio
import logging

from sipline.sip.errors import SipParseError
from sipline.sip.framing import PING, PONG, StreamFramer
from sipline.sipserver.flows import StreamFlow
from sipline.sipserver.service import SipService

log = logging.getLogger("sipline.sip.stream")

MAX_WRITE_BUFFER = 1 << 20  # a client that does not read its answers is cut off beyond this


class StreamProtocol(asyncio.Protocol):
    def __init__(
        self,
        service: SipService,
        name: str,
        connections: set[StreamProtocol],
        *,
        idle_timeout: float = 30.0,
        max_connections: int = 10_000,
        max_in_flight: int = 32,
    ) -> None:
        self.service = service
        self.name = name
        self.connections = connections
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_in_flight = max_in_flight
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused = False
        self._last_message = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self.flow: StreamFlow | None = None
        self.users = 0
        self._kept_until = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("", 0)
        self.peer = (str(peer[0]), int(peer[1]))
        if len(self.connections) >= self.max_connections:
            log.debug("refusing %s connection from %s:%s: too many connections", self.name, *self.peer)
            transport.abort()  # type: ignore[attr-defined]
            return
        self.connections.add(self)
        self.flow = self.service.flows.open(self.name, self)
        loop = asyncio.get_running_loop()
        self._last_message = loop.time()
        self._idle_timer = loop.call_later(self.idle_timeout, self._check_idle)

    def keep(self, seconds: float) -> None:
        self._kept_until = max(self._kept_until, asyncio.get_running_loop().time() + seconds)

    def _check_idle(self) -> None:
        loop = asyncio.get_running_loop()
        if self.users:
            self._idle_timer = loop.call_later(self.idle_timeout, self._check_idle)
            return
        remaining = max(self._last_message + self.idle_timeout, self._kept_until) - loop.time()
        if remaining > 0:
            self._idle_timer = loop.call_later(remaining, self._check_idle)
            return
        log.debug("closing idle %s connection from %s:%s", self.name, *self.peer)
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        try:
            items = self.framer.feed(data)
        except SipParseError as exc:
            # The stream can no longer be cut into messages: nothing after this point is trustworthy.
            log.debug("closing %s connection from %s:%s: %s", self.name, *self.peer, exc.reason)
            if self.transport is not None:
                self.transport.abort()
            return
        assert self.flow is not None
        for item in items:
            self._last_message = asyncio.get_running_loop().time()
            if item == PING:
                self.write(PONG)
                continue
            try:
                task = self.service.receive(item, self.flow)
            except Exception:
                log.exception("SIP: failed on a message from %s:%s", *self.peer)
                continue
            if task is not None and not task.done():
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
        if len(self._tasks) >= self.max_in_flight and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._paused and len(self._tasks) < self.max_in_flight // 2 and self.transport is not None:
            self._paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> bool:
        """Send on this connection; False once it is closed."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return False
        transport.write(data)
        if transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            log.debug("closing %s connection from %s:%s: not reading what it is sent", self.name, *self.peer)
            transport.abort()
            return False
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self.flow is not None:
            self.service.flows.close(self.flow)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
