"""Where an endpoint's devices are: each live binding, and the flow that reaches it.

A device is reached through the flow it registered on (RFC 5626): on this node, its TCP/TLS
connection or our UDP socket toward its source address; on another node, through that node (see
`sipline.sipserver.relay`). A binding whose flow is gone is skipped: ringing it could only time out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from sipline.sip.sdp import MediaPolicy
from sipline.store import bindings, endpoints

from ..flows import Flow

MAX_TARGETS = 10  # devices rung at once per endpoint, as Twilio allows 10 bindings per AOR


@dataclass(frozen=True)
class Target:
    """One device to ring: its Contact (the Request-URI) and the flow that reaches it; `route`
    is a Route header value when another node relays toward it."""

    contact: str
    flow: Flow
    route: str | None = None


@dataclass(frozen=True)
class Party:
    """Who a leg rings: an endpoint of this installation (its record, with its profile's columns),
    or someone at a remote SIP server (credentials for its challenge, extra headers)."""

    to: str  # the To URI of the INVITE
    policy: MediaPolicy  # what its offer may carry
    endpoint: dict[str, Any] | None = None
    username: str | None = None
    password: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return str(self.endpoint["username"]) if self.endpoint is not None else self.to


@dataclass(frozen=True)
class Callee:
    endpoint: dict[str, Any]  # record with its profile's columns
    bindings: list[bindings.StoredBinding]  # live ones, oldest registration first


def find_callee(conn: Connection, project_id: str, username: str, now: float) -> Callee | None:
    endpoint = endpoints.find_with_profile(conn, project_id, username)
    if endpoint is None:
        return None
    return Callee(endpoint, bindings.list_for_endpoint(conn, endpoint["id"], now=now))


def targets(callee: Callee, reach: Callable[[bindings.StoredBinding], Target | None]) -> list[Target]:
    """The devices to ring (newest registrations first, at most MAX_TARGETS), each through a flow
    that is still there."""
    found = []
    for stored in reversed(callee.bindings):
        target = reach(stored)
        if target is not None:
            found.append(target)
        if len(found) == MAX_TARGETS:
            break
    return found
