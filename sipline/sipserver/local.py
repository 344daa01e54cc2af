"""This node as peers see it: the address in its Via and Contact headers, its ids, its branches.

A node is known by the address of its UDP socket ("host:port"): that is what reaches the UDP
devices registered through it, across restarts too, and where other nodes relay to it. A node
running several worker processes (`sipline serve --workers N`) shares its SIP ports among them;
each worker is then known to the others by an id of its own (`host:port/wI`) and reached at a
private UDP port of its own (its relay port), since the TCP and TLS connections it accepted are
its alone. Each run of a process also has an instance id: its connections do not outlive it, and
every branch, tag and Call-ID it makes carries it, so that a message coming back on the shared
port finds the worker it belongs to, and a request that comes back with one of our branches in
its Via list has been through this node before: a loop (482), found without any state.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass
class Local:
    host: str  # advertised: what devices and other nodes can reach
    ports: dict[str, int] = field(default_factory=dict)  # transport -> listening port (shared by workers)
    instance: str = field(default_factory=lambda: secrets.token_hex(4))
    node_instance: str = ""  # the part of `instance` all workers of the node share (all of it when alone)
    worker: int | None = None  # this process's index among the node's workers; None: the only process
    relay_port: int | None = None  # a worker's private UDP port, where other workers and nodes reach it

    @property
    def node_id(self) -> str:
        """The node: it holds the UDP flows (any of its workers sends on the shared socket)."""
        return f"{self._host()}:{self.ports.get('udp', 5060)}"

    @property
    def worker_id(self) -> str:
        """This process: it holds its TCP and TLS flows and its calls (the node id when alone)."""
        return self.node_id if self.worker is None else f"{self.node_id}/w{self.worker}"

    @property
    def branch_prefix(self) -> str:
        return f"z9hG4bK-{self.instance}-"

    @property
    def loop_prefix(self) -> str:
        """What the branches of every worker of this node start with."""
        return f"z9hG4bK-{self.node_instance or self.instance}"

    def branch(self) -> str:
        return self.branch_prefix + secrets.token_hex(8)

    def tag(self) -> str:
        """A tag of ours for a dialog (RFC 3261 §19.3): requests in it carry it in their To."""
        return f"{self.instance}-{secrets.token_hex(6)}"

    def call_id(self) -> str:
        """A Call-ID of ours, for the calls this process places."""
        return f"{self.instance}-{secrets.token_hex(12)}@sipline"

    def via(self, transport: str, branch: str | None = None) -> str:
        """A Via for a request we send over `transport` (a fresh branch unless given); rport
        asked for (RFC 3581)."""
        return f"SIP/2.0/{transport.upper()} {self.hostport(transport)};branch={branch or self.branch()};rport"

    def is_me(self, host: str, port: int | None) -> bool:
        port = port or 5060
        return host.strip("[]") == self.host and (port in self.ports.values() or port == self.relay_port)

    def contact(self, transport: str, user: str) -> str:
        """Our Contact for a dialog: in-dialog requests come back to this node, over `transport`."""
        # sip: with transport=tls rather than sips: (which asks for TLS on every hop to the end)
        return f"<sip:{user}@{self.hostport(transport)};transport={transport}>"

    def uri(self, transport: str, params: str = "") -> str:
        return f"sip:{self.hostport(transport)};transport={transport}{params}"

    def relay_uri(self, params: str = "") -> str:
        """Where other nodes and workers reach this process (its relay port, else the UDP port)."""
        port = self.relay_port if self.relay_port is not None else self.ports.get("udp", 5060)
        return f"sip:{self._host()}:{port};transport=udp{params}"

    def _host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def hostport(self, transport: str) -> str:
        return f"{self._host()}:{self.ports.get(transport, 5060)}"
