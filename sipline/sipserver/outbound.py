"""Connections sipline opens itself: TCP and TLS toward remote SIP servers a document dials.

One connection per destination (transport, address, port), kept while calls use it and reused
by the next (RFC 3261 §18.1.1); TLS verifies the server's certificate against the system's
authorities (or SIPLINE_SIP_TLS_CA) and the name the destination was found by.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path

from .flows import StreamFlow
from .resolve import Destination
from .transports.stream import StreamProtocol

log = logging.getLogger("sipline.sip.outbound")

CONNECT_TIMEOUT = 5.0


class Outbound:
    def __init__(self, protocol: Callable[[str], StreamProtocol], *, cafile: Path | None = None) -> None:
        self._protocol = protocol
        self._context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
        self._open: dict[tuple[str, str, int], StreamProtocol] = {}

    async def connect(self, destination: Destination) -> StreamFlow | None:
        """A flow to `destination` (an open one when there is), None when it cannot be reached."""
        key = (destination.transport, destination.address, destination.port)
        existing = self._open.get(key)
        if existing is not None and existing.flow is not None and existing.is_open:
            return existing.flow
        loop = asyncio.get_running_loop()
        tls = destination.transport == "tls"
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: self._protocol(destination.transport),
                    destination.address,
                    destination.port,
                    ssl=self._context if tls else None,
                    server_hostname=destination.server_name if tls else None,
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.info("SIP: cannot connect to %s:%s:%s: %s", *key, exc)
            return None
        self._open[key] = protocol
        return protocol.flow
