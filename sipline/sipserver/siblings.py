"""The other workers of this node, as one worker sees them (`sipline serve --workers N`).

The workers share the node's UDP socket: whichever is free reads the next datagram, whatever
address it comes from. A transaction or a call, though, lives in the worker that started it,
and what belongs to it must reach it. The worker that read a datagram decides where it goes
from its bytes alone, before parsing it (what is handed over is parsed once, by its owner):

- a response, by the branch of its top Via: our branches carry the worker's instance id;
- a request to relay (its top Route is a relay hop of ours): by whoever reads it, the relay
  being stateless (a hop toward a TCP or TLS flow is sent to the worker holding it);
- a request in one of our dialogs, by its To tag, and a request of a call we placed, by its
  Call-ID: both carry the instance id too;
- a REGISTER without credentials by whoever reads it: it is challenged (or refused), which
  changes nothing, as a stateless UAS answers it (RFC 3261 §8.2.7); a copy that reaches the other
  worker is challenged again, with a nonce of its own that any worker accepts;
- any other request by a hash of its Call-ID: an INVITE, its retransmissions, its CANCEL and
  ACK and every later request of its dialog go to one worker, and so do a device's REGISTERs
  with credentials, so that a retransmission meets the transaction that answered the first copy
  (a second registration of the same request would be refused as out of order).

A datagram that belongs to another worker is handed over, as it came and with its source
address, on that worker's channel: a local datagram socket pair made before the workers were
forked, which nothing outside the node can write to. What cannot be read this way (no Call-ID,
say) stays where it landed, and the parser answers it as it would anywhere. A channel holds
what its worker has not read yet only up to its send buffer (some 100 datagrams); beyond, what
is handed over waits in the sender, in order, until the channel drains, rather than being lost:
a worker busy for 50 ms (a full collection, a batch of writes) at 1,000 calls/s is handed more
than that, and each datagram lost there costs its sender a retransmission 500 ms later (measured:
456 lost in 10 s at 1,000 calls/s, and failed calls).

A TCP or TLS connection belongs to the worker that accepted it, and so do the calls begun on it.
A request in another worker's dialog that comes over it anyway (a device that opened a new
connection to hang up, say) is passed on to that worker as the relay passes requests between
nodes (sipline.sipserver.relay), at its relay port, and its response comes back the same way.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import socket
import zlib
from collections.abc import Callable, Sequence

from sipline import metrics

from .relay import RELAY

log = logging.getLogger("sipline.sip.workers")

_READS_PER_WAKEUP = 64
_WAITING = 20_000  # datagrams waiting for a busy worker's channel at most (the oldest go first)
_SEND_BUFFER = 4 * 1024 * 1024  # asked for each channel; the kernel caps it (net.core.wmem_max)
_TOP_VIA = re.compile(rb"\r\n(?:via|v)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_OUR_BRANCH = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*z9hG4bK-([0-9a-zA-Z]+)-")
_CALL_ID = re.compile(rb"\r\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*(?:\r\n|$)", re.IGNORECASE)
_TOP_ROUTE = re.compile(rb"\r\nroute[ \t]*:([^\r\n]*)", re.IGNORECASE)
_AUTHORIZATION = re.compile(rb"\r\nauthorization[ \t]*:", re.IGNORECASE)
_OUR_TO_TAG = re.compile(rb"\r\n(?:to|t)[ \t]*:[^\r\n]*;[ \t]*tag[ \t]*=[ \t]*([0-9a-zA-Z]+)-", re.IGNORECASE)
_RELAY = RELAY.encode()

Handler = Callable[[bytes, tuple[str, int], bool], None]


def owner(data: bytes, markers: dict[bytes, int], count: int, *, hashed: bool = True) -> int | None:
    """The index of the worker the datagram `data` belongs to; None when any worker may take it.
    Not `hashed`: only what names its worker (a branch, a tag or a Call-ID of ours) has one."""
    head = data[: data.find(b"\r\n\r\n")]
    if head.startswith(b"SIP/"):
        via = _TOP_VIA.search(head)
        if via is None:
            return None
        branch = _OUR_BRANCH.search(via[1].split(b",", 1)[0])
        return markers.get(branch[1]) if branch is not None else None
    route = _TOP_ROUTE.search(head)
    if route is not None and _RELAY in route[1].split(b",", 1)[0]:
        return None  # a relay hop is stateless, and its flow token names a flow of the worker it reached
    to_tag = _OUR_TO_TAG.search(head)
    if to_tag is not None and to_tag[1] in markers:
        return markers[to_tag[1]]
    if head.startswith(b"REGISTER ") and _AUTHORIZATION.search(head) is None:
        return None  # to be challenged: answered where it lands
    call_id = _CALL_ID.search(head)
    if call_id is None:
        return None
    marker, dash, _ = call_id[1].partition(b"-")
    if dash and marker in markers:
        return markers[marker]
    return zlib.crc32(call_id[1]) % count if hashed else None


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
        relays: Sequence[tuple[str, int]] = (),
    ) -> None:
        self.index = index
        self.node_instance = node_instance  # what every worker's instance id starts with
        self.instance = instances[index]
        self.markers = {instance.encode(): i for i, instance in enumerate(instances)}
        self.relays = list(relays)  # where each worker's own UDP socket is reached from this machine
        self._channels = channels  # worker i reads the first socket of channels[i]; the others write to the second
        self._reading: socket.socket | None = None
        self._waiting: dict[int, collections.deque[bytes]] = {}  # by worker: what its full channel could not take yet
        for _, writing in channels:
            writing.setblocking(False)
            with contextlib.suppress(OSError):  # else the default buffer, and the waiting queue behind it
                writing.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)

    def owner(self, data: bytes, *, hashed: bool = True) -> int | None:
        """The sibling the message belongs to; None when it is this worker's (or anyone's)."""
        found = owner(data, self.markers, len(self._channels), hashed=hashed)
        return None if found == self.index else found

    def hand_over(self, index: int, data: bytes, source: tuple[str, int], relayed: bool) -> None:
        payload = envelope(data, source, relayed)
        waiting = self._waiting.get(index)
        if waiting:  # behind what already waits for that channel: order kept
            self._wait(index, waiting, payload)
            return
        try:
            self._channels[index][1].send(payload)
        except BlockingIOError:  # the channel is full: that worker is busy for a moment
            self._wait(index, self._waiting.setdefault(index, collections.deque()), payload)
        except OSError as exc:
            log.debug("SIP: cannot hand a datagram over to worker %d: %s", index, exc)

    def _wait(self, index: int, waiting: collections.deque[bytes], payload: bytes) -> None:
        if not waiting:
            asyncio.get_running_loop().add_writer(self._channels[index][1].fileno(), self._drain, index)
        elif len(waiting) >= _WAITING:
            waiting.popleft()
            metrics.sip_shed()  # that worker has been stuck far longer than any sender retransmits
        waiting.append(payload)

    def _drain(self, index: int) -> None:
        """The channel to worker `index` takes datagrams again: what waited goes, in order."""
        writing, waiting = self._channels[index][1], self._waiting[index]
        while waiting:
            try:
                writing.send(waiting[0])
            except BlockingIOError:
                return
            except OSError as exc:
                log.debug("SIP: cannot hand a datagram over to worker %d: %s", index, exc)
            waiting.popleft()
        asyncio.get_running_loop().remove_writer(writing.fileno())

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
        loop = asyncio.get_running_loop()
        if self._reading is not None:
            loop.remove_reader(self._reading.fileno())
            self._reading = None
        for index, waiting in self._waiting.items():
            if waiting:
                loop.remove_writer(self._channels[index][1].fileno())
        self._waiting.clear()
