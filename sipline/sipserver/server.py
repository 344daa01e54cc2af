"""The SIP server of `sipline serve`: UDP, TCP and TLS listeners around one `SipService`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from sipline.config import Settings
from sipline.net import StartupError, bind_tcp, bind_udp
from sipline.runtime import Runtime
from sipline.store import bindings, calls

from .flows import UdpFlow
from .local import Local
from .outbound import Outbound
from .service import SipService
from .siblings import Siblings
from .transports.stream import StreamProtocol
from .transports.tls import ensure_certificate, server_context
from .transports.udp import UdpReceiver

log = logging.getLogger("sipline.sip")

PURGE_INTERVAL = 60.0
UDP_RECEIVE_BUFFER = 4 << 20


@dataclass
class Sockets:
    """The SIP sockets of a worker, made by the process that forked the node's workers."""

    udp: socket.socket  # shared by every worker, as are the TCP and TLS listeners
    tcp: socket.socket
    tls: socket.socket
    relay: socket.socket | None = None  # a worker's own UDP socket, where other workers and nodes reach it

    @classmethod
    def bind(cls, settings: Settings) -> Sockets:
        s = settings
        return cls(
            udp=bind_udp(s.sip_host, s.sip_udp_port, receive_buffer=UDP_RECEIVE_BUFFER),
            tcp=bind_tcp(s.sip_host, s.sip_tcp_port, what="tcp:"),
            tls=bind_tcp(s.sip_host, s.sip_tls_port, what="tls:"),
        )


def listening(host: str, ports: dict[str, int]) -> str:
    """`udp:HOST:PORT tcp:HOST:PORT tls:HOST:PORT`, as the startup banner prints it."""
    return " ".join(f"{name}:{host}:{port}" for name, port in ports.items())


def certificate_files(settings: Settings) -> tuple[Path, Path]:
    """The TLS certificate and key: the configured ones, else a self-signed pair in the data
    directory, made on first use."""
    s = settings
    if s.tls_cert or s.tls_key:
        if not (s.tls_cert and s.tls_key):
            raise StartupError("SIPLINE_TLS_CERT and SIPLINE_TLS_KEY must be given together")
        return s.tls_cert, s.tls_key
    try:
        cert, key, created = ensure_certificate(s.data_dir, s.sip_host, s.sip_domain)
    except OSError as exc:
        raise StartupError(f"cannot write a TLS certificate into {s.data_dir}: {exc.strerror or exc}") from None
    if created:
        print(f"sipline: generated a self-signed TLS certificate for SIP: {cert.resolve()}", flush=True)
    return cert, key


class SipServer:
    """The SIP side of one process: the node's only one, or one of its workers (`siblings`),
    serving on sockets made for it (`sockets`)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        idle_timeout: float = 30.0,
        service: SipService | None = None,
        sockets: Sockets | None = None,
        siblings: Siblings | None = None,
    ) -> None:
        self.runtime = runtime
        self.idle_timeout = idle_timeout
        if service is None:
            local = None
            if siblings is not None:
                local = Local(
                    runtime.settings.advertised_host,
                    instance=siblings.instance,
                    node_instance=siblings.node_instance,
                    worker=siblings.index,
                )
            service = SipService(runtime, local=local)
        self.service = service
        self.service.siblings = siblings
        self._sockets = sockets
        self.ports: dict[str, int] = {}
        self._udp: UdpReceiver | None = None
        self._relay: UdpReceiver | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: set[StreamProtocol] = set()
        self._purge: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.runtime.settings
        context = self._tls_context()
        loop = asyncio.get_running_loop()
        sockets = self._sockets
        siblings = self.service.siblings
        try:
            if sockets is not None:
                udp_socket = sockets.udp
            else:
                udp_socket = bind_udp(s.sip_host, s.sip_udp_port, receive_buffer=UDP_RECEIVE_BUFFER)
            self.ports["udp"] = udp_socket.getsockname()[1]
            self._udp = UdpReceiver(self.service)
            udp = self.service.calls.udp = self._udp.listen(udp_socket)
            for name, port, tls in (("tcp", s.sip_tcp_port, None), ("tls", s.sip_tls_port, context)):
                if sockets is not None:
                    sock = sockets.tcp if name == "tcp" else sockets.tls
                else:
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
            if sockets is not None and sockets.relay is not None and siblings is not None:
                self._relay = UdpReceiver(self.service, relay=True)
                self._relay.listen(sockets.relay)
                self.service.local.relay_port = sockets.relay.getsockname()[1]
                siblings.listen(self._handed_over)
            self.service.outbound = Outbound(
                lambda transport: StreamProtocol(
                    self.service, transport, self._connections, idle_timeout=self.idle_timeout
                ),
                cafile=s.sip_tls_ca,
            )
            self.service.relay.udp = UdpFlow(udp, ("", 0))
            await self.service.nodes.start()
            local = self.service.local
            # Alone, this process closes what the node's last run left unfinished (its workers'
            # records too); a worker closes only its own: its siblings' calls are alive.
            closed = await self.runtime.db.write(
                calls.close_unfinished,
                time.time(),
                "the node running the call stopped",
                local.worker_id,
                workers=local.worker is None,
            )
            if closed:
                log.warning("SIP: %d calls were cut off when this node last stopped; their records say so", closed)
        except BaseException:
            await self.stop()
            raise
        if self.service.local.worker in (None, 0):  # one purge per node is enough
            self._purge = asyncio.create_task(self._purge_expired())

    def _handed_over(self, data: bytes, source: tuple[str, int], relayed: bool) -> None:
        """A datagram another worker read on the node's shared socket (or its relay socket)."""
        receiver = self._relay if relayed else self._udp
        if receiver is not None:
            receiver.deliver(data, source)

    def _tls_context(self) -> ssl.SSLContext:
        cert, key = certificate_files(self.runtime.settings)
        try:
            return server_context(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None

    def listening(self) -> str:
        return listening(self.runtime.settings.sip_host, self.ports)

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
        # The calls end first, while the connections their devices hold can still carry the BYEs.
        await self.service.close()
        for connection in list(self._connections):
            connection.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self._servers.clear()
        if self.service.siblings is not None:
            self.service.siblings.close()
        for receiver in (self._udp, self._relay):
            if receiver is not None:
                await receiver.close()
        self._udp = self._relay = None
