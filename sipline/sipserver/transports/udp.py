"""SIP over UDP: one datagram, one message, handed to the service with the flow it came on.

The socket is read here rather than through asyncio's datagram transport, for what an overloaded
server needs and that transport cannot give:

- when the kernel received each datagram (SO_TIMESTAMPNS, on Linux). A request that would start
  new work (a REGISTER to challenge, a new call) and has waited longer than SHED_AFTER is dropped
  unread, before any parsing; so is one that comes while the store is saturated (PostgreSQL's
  pool has as many calls waiting as it holds: `Database.saturated`). Its sender retransmits it
  (RFC 3261 §17), and by then either the backlog has gone or the copy is dropped again: the
  server spends its time finishing the registrations and calls it has started, not answering
  requests already sent again.
- reading ahead of answering. Each time the socket is readable, what waits in it is moved to a
  queue of our own (up to READ_AHEAD datagrams), and answering goes on from that queue for a few
  milliseconds at a time. The kernel's buffer is small (net.core.rmem_max caps it, 416 KiB by
  default): left full of requests waiting to be shed, it would drop on arrival the answers to our
  challenges and the responses to our calls as readily as the rest.

Without timestamps (another system), nothing is shed by age.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import struct
import sys
import time
from collections.abc import Callable

from sipline import metrics
from sipline.sipserver.flows import UdpFlow
from sipline.sipserver.service import SipService
from sipline.sipserver.shedding import starts_work

log = logging.getLogger("sipline.sip.udp")

SHED_AFTER = 0.2  # seconds: well under the 500 ms after which a sender retransmits (T1)
READ_AHEAD = 256  # datagrams read each time the socket is readable
BACKLOG = 20_000  # datagrams queued at most (the oldest go first): a bound on memory
_SLICE = 0.002  # seconds of answering, then back to the loop (its sockets, timers and tasks)

# Linux's SO_TIMESTAMPNS (and SCM_TIMESTAMPNS): a struct timespec with each datagram.
_SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) if sys.platform == "linux" else 0


class UdpSocket:
    """A UDP socket served on the running loop: what flows send with, and its reader."""

    def __init__(
        self,
        sock: socket.socket,
        receive: Callable[[bytes, tuple[str, int], float | None], None],
        read: Callable[[], None],
    ) -> None:
        self._sock = sock
        self._receive = receive  # each datagram, with its arrival time
        self._read = read  # then, once what was waiting has been read
        self._closing = False
        self._timestamps = False
        if _ANCILLARY:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self._timestamps = True
            except OSError:
                pass
        sock.setblocking(False)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            self._sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            log.debug("UDP: send buffer full, a datagram to %s:%s lost", *address)  # as UDP may lose it

    def is_closing(self) -> bool:
        return self._closing

    def getsockname(self) -> tuple[str, int]:
        return self._sock.getsockname()[:2]  # type: ignore[no-any-return]

    def _readable(self) -> None:
        sock, space = self._sock, _ANCILLARY if self._timestamps else 0
        for _ in range(READ_AHEAD):
            if self._closing:
                return
            try:
                data, ancillary, _flags, address = sock.recvmsg(65536, space)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # ICMP port unreachable from a peer that went away, say: its transactions time out.
                log.debug("UDP error: %s", exc)
                continue
            received = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(value) >= _TIMESPEC.size:
                    seconds, nanoseconds = _TIMESPEC.unpack_from(value)
                    received = seconds + nanoseconds / 1e9
            self._receive(data, (address[0], address[1]), received)
        self._read()

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()


class UdpReceiver:
    """What comes in on one UDP socket, to the service: queued, shed when stale, dispatched among
    the node's workers (`dispatch`), answered by tasks that are tracked until they finish."""

    def __init__(self, service: SipService, max_in_flight: int = 1024, *, relay: bool = False) -> None:
        self.service = service
        self.max_in_flight = max_in_flight
        self.relay = relay  # a worker's own socket, where other nodes and workers reach it
        self.socket: UdpSocket | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue: collections.deque[tuple[bytes, tuple[str, int], float | None]] = collections.deque()
        self._resuming = False

    def listen(self, sock: socket.socket) -> UdpSocket:
        self.socket = UdpSocket(sock, self._received, self._answer)
        return self.socket

    def _received(self, data: bytes, address: tuple[str, int], received: float | None) -> None:
        queue = self._queue
        queue.append((data, address, received))
        if len(queue) > BACKLOG:
            queue.popleft()
            metrics.sip_shed()

    def _answer(self) -> None:
        """Answer from the queue for a slice of time; what is left waits for the next round."""
        self._resuming = False
        queue, started = self._queue, time.perf_counter()
        siblings = self.service.siblings
        db = self.service.runtime.db
        answered = 0
        while queue:
            data, address, received = queue.popleft()
            stale = received is not None and time.time() - received > SHED_AFTER
            if (stale or db.saturated) and starts_work(data):  # unread: parsing it would cost more
                metrics.sip_shed()
                continue
            if siblings is not None:  # it may be another worker's (sipline.sipserver.siblings)
                sibling = siblings.owner(data)
                if sibling is not None:
                    siblings.hand_over(sibling, data, address, self.relay)
                    continue
            self.deliver(data, address)
            answered += 1
            if answered % 8 == 0 and time.perf_counter() - started > _SLICE:
                break
        if queue and not self._resuming and self.socket is not None and not self.socket.is_closing():
            self._resuming = True
            asyncio.get_running_loop().call_soon(self._answer)

    def deliver(self, data: bytes, address: tuple[str, int]) -> None:
        """A datagram that came in on this socket (or to another worker, which handed it over)."""
        if self.socket is None:
            return
        busy = len(self._tasks) >= self.max_in_flight  # beyond that, new work is dropped: UDP peers retransmit
        try:
            task = self.service.receive(data, UdpFlow(self.socket, address), busy=busy)
        except Exception:
            log.exception("SIP: failed on a datagram from %s:%s", address[0], address[1])
            return
        if task is not None and not task.done():
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop listening, and finish the requests being answered."""
        if self.socket is not None:
            self.socket.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
