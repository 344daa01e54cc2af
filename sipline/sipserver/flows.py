"""Flows: the ways back to a peer (RFC 5626's word), over which every message to it is sent.

A UDP flow is our socket and the peer's address on it (the source of what it sent: through a NAT
that is the only address that reaches it); a TCP or TLS flow is the connection itself, since a
device behind a NAT is not listening on its Contact port. Requests to a registered device go out
on the flow it registered on; responses on the flow their request came in on (RFC 3261 §18.2.2,
RFC 3581 for UDP).
"""

from __future__ import annotations

import itertools
import logging
import secrets
from typing import Protocol

from sipline import metrics
from sipline.sip.headers import Via
from sipline.sip.routing import udp_reply_address

log = logging.getLogger("sipline.sip.flows")


class Connection(Protocol):
    """What a stream transport offers a flow."""

    peer: tuple[str, int]
    users: int  # calls using the connection: it stays open while any does

    def write(self, data: bytes) -> bool: ...

    def keep(self, seconds: float) -> None: ...

    @property
    def is_open(self) -> bool: ...


class Flow:
    transport: str  # "udp", "tcp", "tls"
    remote: tuple[str, int]

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    def send(self, data: bytes) -> bool:
        """Send one message; False when the flow is gone (the caller treats it as a transport error)."""
        raise NotImplementedError

    def for_response(self, via: Via | None) -> Flow:
        """Where a response to a request that came in on this flow goes (its top Via, stamped)."""
        return self if via is None else self.for_reply(via.rport is not None, via.port)

    def for_reply(self, rport: bool, via_port: int | None) -> Flow:
        """`for_response`, given the top Via's rport (asked for or not) and sent-by port."""
        return self

    @property
    def is_open(self) -> bool:
        return True

    def keep(self, seconds: float) -> None:
        """Keep the flow open for that long (a registration over it): a no-op but on streams."""

    def use(self) -> None:
        """A call uses the flow: a stream stays open until `release`."""

    def release(self) -> None:
        pass


class Datagrams(Protocol):
    """What a UDP flow sends with: one of our UDP sockets (sipline.sipserver.transports.udp)."""

    def sendto(self, data: bytes, address: tuple[str, int]) -> None: ...

    def is_closing(self) -> bool: ...


class UdpFlow(Flow):
    __slots__ = ("remote", "socket", "transport")

    def __init__(self, socket: Datagrams, remote: tuple[str, int]) -> None:
        self.transport = "udp"
        self.socket = socket
        self.remote = remote

    def send(self, data: bytes) -> bool:
        if self.socket.is_closing():
            return False
        try:
            self.socket.sendto(data, self.remote)
        except OSError:
            log.debug("cannot send to udp:%s:%s", *self.remote, exc_info=True)
            return False
        metrics.sip_sent("udp", data)
        return True

    def for_reply(self, rport: bool, via_port: int | None) -> Flow:
        address = udp_reply_address(rport, via_port, self.remote)
        return self if address == self.remote else UdpFlow(self.socket, address)

    @property
    def is_open(self) -> bool:
        return not self.socket.is_closing()

    def __repr__(self) -> str:
        return f"udp:{self.remote[0]}:{self.remote[1]}"


class StreamFlow(Flow):
    __slots__ = ("connection", "id", "remote", "transport")

    def __init__(self, transport: str, connection: Connection, flow_id: str) -> None:
        self.transport = transport
        self.connection = connection
        self.remote = connection.peer
        self.id = flow_id

    def send(self, data: bytes) -> bool:
        if not self.connection.write(data):
            return False
        metrics.sip_sent(self.transport, data)
        return True

    @property
    def is_open(self) -> bool:
        return self.connection.is_open

    def keep(self, seconds: float) -> None:
        self.connection.keep(seconds)

    def use(self) -> None:
        self.connection.users += 1

    def release(self) -> None:
        self.connection.users = max(0, self.connection.users - 1)

    def __repr__(self) -> str:
        return f"{self.transport}:{self.remote[0]}:{self.remote[1]}#{self.id}"


class FlowTable:
    """This process's open TCP and TLS connections by flow id: what a binding names to reach a device.

    Ids start with a token drawn at each start of the process, so that a binding stored by an
    earlier run (whose connections died with it) never names a connection of this one."""

    def __init__(self) -> None:
        self._flows: dict[str, StreamFlow] = {}
        self._ids = itertools.count(1)
        self._prefix = f"{secrets.token_hex(4)}."

    def open(self, transport: str, connection: Connection) -> StreamFlow:
        flow = StreamFlow(transport, connection, f"{self._prefix}{next(self._ids)}")
        self._flows[flow.id] = flow
        return flow

    def close(self, flow: StreamFlow) -> None:
        self._flows.pop(flow.id, None)

    def get(self, flow_id: str) -> StreamFlow | None:
        flow = self._flows.get(flow_id)
        return flow if flow is not None and flow.is_open else None

    def __len__(self) -> int:
        return len(self._flows)
