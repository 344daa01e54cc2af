"""The SIP server of `sipline serve`: UDP, TCP and TLS listeners around one `SipService`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time

from sipline.net import StartupError, bind_tcp, bind_udp
from sipline.runtime import Runtime
from sipline.store import bindings, calls

from .flows import UdpFlow
from .outbound import Outbound
from .service import SipService
from .transports.stream import StreamProtocol
from .transports.tls import ensure_certificate, server_context
from .transports.udp import UdpProtocol

log = logging.getLogger("sipline.sip")

PURGE_INTERVAL = 60.0
UDP_RECEIVE_BUFFER = 4 << 20


class SipServer:
    def __init__(self, runtime: Runtime, *, idle_timeout: float = 30.0, service: SipService | None = None) -> None:
        self.runtime = runtime
        self.idle_timeout = idle_timeout
        self.service = service or SipService(runtime)
        self.ports: dict[str, int] = {}
        self._udp_protocol: UdpProtocol | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: set[StreamProtocol] = set()
        self._purge: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.runtime.settings
        context = self._tls_context()
        loop = asyncio.get_running_loop()
        try:
            udp_socket = bind_udp(s.sip_host, s.sip_udp_port, receive_buffer=UDP_RECEIVE_BUFFER)
            self.ports["udp"] = udp_socket.getsockname()[1]
            udp, self._udp_protocol = await loop.create_datagram_endpoint(
                lambda: UdpProtocol(self.service), sock=udp_socket
            )
            self.service.calls.udp = udp
            for name, port, tls in (("tcp", s.sip_tcp_port, None), ("tls", s.sip_tls_port, context)):
                sock = bind_tcp(s.sip_host, port, what=f"{name}:")
                server = await loop.create_server(
                    lambda name=name: StreamProtocol(
                        self.service, name, self._connections, idle_timeout=self.idle_timeout
                    ),
                    sock=sock,
                    ssl=tls,
                    ssl_handshake_timeout=10.0 if tls else None,
                )
                self._servers.append(server)
                self.ports[name] = sock.getsockname()[1]
            self.service.local.ports.update(self.ports)
            self.service.outbound = Outbound(
                lambda transport: StreamProtocol(
                    self.service, transport, self._connections, idle_timeout=self.idle_timeout
                ),
                cafile=s.sip_tls_ca,
            )
            self.service.relay.udp = UdpFlow(udp, ("", 0))
            await self.service.nodes.start()
            closed = await self.runtime.db.write(
                calls.close_unfinished, time.time(), "the node running the call stopped", self.service.local.node_id
            )
            if closed:
                log.warning("SIP: %d calls were cut off when this node last stopped; their records say so", closed)
        except BaseException:
            await self.stop()
            raise
        self._purge = asyncio.create_task(self._purge_expired())

    def _tls_context(self) -> ssl.SSLContext:
        s = self.runtime.settings
        if s.tls_cert or s.tls_key:
            if not (s.tls_cert and s.tls_key):
                raise StartupError("SIPLINE_TLS_CERT and SIPLINE_TLS_KEY must be given together")
            cert, key = s.tls_cert, s.tls_key
        else:
            try:
                cert, key, created = ensure_certificate(s.data_dir, s.sip_host, s.sip_domain)
            except OSError as exc:
                raise StartupError(f"cannot write a TLS certificate into {s.data_dir}: {exc.strerror or exc}") from None
            if created:
                print(f"sipline: generated a self-signed TLS certificate for SIP: {cert.resolve()}", flush=True)
        try:
            return server_context(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None

    def listening(self) -> str:
        """`udp:HOST:PORT tcp:HOST:PORT tls:HOST:PORT`, as the startup banner prints it."""
        host = self.runtime.settings.sip_host
        return " ".join(f"{name}:{host}:{port}" for name, port in self.ports.items())

    async def _purge_expired(self) -> None:
        while True:
            await asyncio.sleep(PURGE_INTERVAL)
            try:
                removed = await self.runtime.db.write(bindings.purge_expired, time.time())
                if removed:
                    log.debug("purged %d expired SIP bindings", removed)
            except Exception as exc:  # the store may be briefly away; the next round retries
                log.warning("purging expired SIP bindings failed: %s", exc)

    async def stop(self) -> None:
        if self._purge is not None:
            self._purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge
            self._purge = None
        for server in self._servers:
            server.close()
        for connection in list(self._connections):
            connection.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self._servers.clear()
        await self.service.close()
        if self._udp_protocol is not None:
            await self._udp_protocol.close()
            self._udp_protocol = None
