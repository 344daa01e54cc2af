"""This node as peers see it: the address in its Via and Contact headers, its id, its branches.

A node is known by the address of its UDP socket ("host:port"): that is what reaches the UDP
devices registered through it, across restarts too, and where other nodes relay to it. Each run
of the process also has an instance id of its own: its TCP and TLS flows do not outlive it, and
every branch it makes starts with it, so a request that comes back carrying one in its Via list
has been through this node before: a loop (482), found without any state.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass
class Local:
    host: str  # advertised: what devices and other nodes can reach
    ports: dict[str, int] = field(default_factory=dict)  # transport -> listening port
    instance: str = field(default_factory=lambda: secrets.token_hex(4))

    @property
    def node_id(self) -> str:
        return f"{self._host()}:{self.ports.get('udp', 5060)}"

    @property
    def branch_prefix(self) -> str:
        return f"z9hG4bK-{self.instance}-"

    def branch(self) -> str:
        return self.branch_prefix + secrets.token_hex(8)

    def via(self, transport: str, branch: str | None = None) -> str:
        """A Via for a request we send over `transport` (a fresh branch unless given); rport
        asked for (RFC 3581)."""
        return f"SIP/2.0/{transport.upper()} {self.hostport(transport)};branch={branch or self.branch()};rport"

    def is_me(self, host: str, port: int | None) -> bool:
        return host.strip("[]") == self.host and (port or 5060) in self.ports.values()

    def contact(self, transport: str, user: str) -> str:
        """Our Contact for a dialog: in-dialog requests come back to this node, over `transport`."""
        # sip: with transport=tls rather than sips: (which asks for TLS on every hop to the end)
        return f"<sip:{user}@{self.hostport(transport)};transport={transport}>"

    def uri(self, transport: str, params: str = "") -> str:
        return f"sip:{self.hostport(transport)};transport={transport}{params}"

    def _host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    def hostport(self, transport: str) -> str:
        return f"{self._host()}:{self.ports.get(transport, 5060)}"
