"""The other workers of this node, as one worker sees them (`sipline serve --workers N`).

The workers share the node's UDP socket: whichever is free reads the next datagram, so
REGISTERs spread over all of them, whatever address they come from. A transaction or a call,
though, lives in the worker that started it, and what belongs to it must reach it:

- a response, by the branch of its top Via: our branches carry the worker's instance id;
- a request to relay (its top Route is a relay hop of ours): by whoever reads it, the relay
  being stateless (a hop toward a TCP or TLS flow is sent to the worker holding it);
- a request of a call we placed, by its Call-ID, which carries the instance id too;
- any other request but a REGISTER or an OPTIONS ping, by a hash of its Call-ID, so that an
  INVITE, its retransmissions, its CANCEL and ACK and every later request of its dialog go to
  the same worker;
- a REGISTER or a ping is answered where it lands: it needs no state of a worker's own.

A datagram that belongs to another worker is handed over, as it came and with its source
address, on that worker's channel: a local datagram socket pair made before the workers were
forked, which nothing outside the node can write to.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import zlib
from collections.abc import Callable, Sequence

from sipline.sip.message import SipRequest, SipResponse

from .relay import RELAY

log = logging.getLogger("sipline.sip.workers")

_BRANCH = "z9hG4bK-"
_STATELESS = frozenset(("REGISTER", "OPTIONS"))
_READS_PER_WAKEUP = 64

Handler = Callable[[bytes, tuple[str, int], bool], None]


def owner(message: SipRequest | SipResponse, markers: dict[str, int], count: int) -> int | None:
    """The index of the worker `message` belongs to; None when any worker may take it."""
    headers = message.headers
    if isinstance(message, SipResponse):
        via = headers.get("Via") or ""
        start = via.find("branch=" + _BRANCH)
        if start < 0:
            return None
        start += len("branch=" + _BRANCH)
        return markers.get(via[start : via.find("-", start)])
    if RELAY in (headers.get("Route") or ""):
        return None  # a relay hop is stateless, and its flow token names a flow of the worker it reached
    call_id = headers.get("Call-ID") or ""
    marker, dash, _ = call_id.partition("-")
    if dash and marker in markers:
        return markers[marker]
    if message.method in _STATELESS and ";tag=" not in (headers.get("To") or ""):
        return None
    return zlib.crc32(call_id.encode()) % count


def envelope(data: bytes, source: tuple[str, int], relayed: bool) -> bytes:
    """A datagram as handed over: where it came from, on which of the node's sockets, then itself."""
    return f"{'r' if relayed else 's'} {source[0]} {source[1]}\n".encode() + data


def open_envelope(payload: bytes) -> tuple[bytes, tuple[str, int], bool] | None:
    head, newline, data = payload.partition(b"\n")
    try:
        kind, host, port = head.decode().split(" ")
        return (data, (host, int(port)), kind == "r") if newline else None
    except ValueError:
        return None


class Siblings:
    """One worker's view of the node's workers: who owns a message, and the way to hand it over."""

    def __init__(
        self,
        index: int,
        node_instance: str,
        instances: Sequence[str],
        channels: Sequence[tuple[socket.socket, socket.socket]],
    ) -> None:
        self.index = index
        self.node_instance = node_instance  # what every worker's instance id starts with
        self.instance = instances[index]
        self.markers = {instance: i for i, instance in enumerate(instances)}
        self._channels = channels  # worker i reads the first socket of channels[i]; the others write to the second
        self._reading: socket.socket | None = None
        for _, writing in channels:
            writing.setblocking(False)

    def owner(self, message: SipRequest | SipResponse) -> int | None:
        """The sibling `message` belongs to; None when it is this worker's (or anyone's)."""
        found = owner(message, self.markers, len(self._channels))
        return None if found == self.index else found

    def hand_over(self, index: int, data: bytes, source: tuple[str, int], relayed: bool) -> None:
        try:
            self._channels[index][1].send(envelope(data, source, relayed))
        except OSError as exc:  # its queue is full (that worker is overloaded): lost, as UDP may be
            log.debug("SIP: cannot hand a datagram over to worker %d: %s", index, exc)

    def listen(self, handler: Handler) -> None:
        """Read this worker's channel on the running loop, each datagram to `handler`."""
        sock = self._channels[self.index][0]
        sock.setblocking(False)
        self._reading = sock

        def readable() -> None:
            for _ in range(_READS_PER_WAKEUP):
                try:
                    payload = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    log.debug("SIP: worker channel: %s", exc)
                    return
                opened = open_envelope(payload)
                if opened is not None:
                    handler(*opened)

        asyncio.get_running_loop().add_reader(sock.fileno(), readable)

    def close(self) -> None:
        if self._reading is not None:
            asyncio.get_running_loop().remove_reader(self._reading.fileno())
            self._reading = None
