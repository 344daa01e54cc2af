"""This node as peers see it: the address in its Via and Contact headers, and its branch prefix.

Every branch this node makes starts with its own prefix, so a request that comes back carrying one
in its Via list has been through this node before: a loop (482), found without any state.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass
class Local:
    host: str  # advertised: what devices and other nodes can reach
    ports: dict[str, int] = field(default_factory=dict)  # transport -> listening port
    node_id: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def branch_prefix(self) -> str:
        return f"z9hG4bK-{self.node_id[:8]}-"

    def branch(self) -> str:
        return self.branch_prefix + secrets.token_hex(8)

    def via(self, transport: str) -> str:
        """A Via for a request we send over `transport`, with a fresh branch; rport asked for (RFC 3581)."""
        return f"SIP/2.0/{transport.upper()} {self._hostport(transport)};branch={self.branch()};rport"

    def contact(self, transport: str, user: str) -> str:
        """Our Contact for a dialog: in-dialog requests come back to this node, over `transport`."""
        # sip: with transport=tls rather than sips: (which asks for TLS on every hop to the end)
        return f"<sip:{user}@{self._hostport(transport)};transport={transport}>"

    def uri(self, transport: str) -> str:
        return f"sip:{self._hostport(transport)};transport={transport}"

    def _hostport(self, transport: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.ports.get(transport, 5060)}"
