"""Listening sockets for the HTTP API and the SIP server, and the one-line startup failure."""

from __future__ import annotations

import contextlib
import socket


class StartupError(Exception):
    """A reason to exit non-zero with one line, not a traceback."""


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_tcp(host: str, port: int, *, what: str = "") -> socket.socket:
    """A listening, non-blocking TCP socket; StartupError (one line) when the address is taken."""
    # IPPROTO_TCP, not 0: asyncio only turns Nagle off (TCP_NODELAY) on sockets that say TCP, and
    # with Nagle on a response written in two pieces waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {what}{host}:{port}: {exc.strerror or exc}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def bind_udp(host: str, port: int, *, receive_buffer: int = 0) -> socket.socket:
    """A bound, non-blocking UDP socket; StartupError (one line) when the address is taken."""
    sock = socket.socket(_family(host), socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on udp:{host}:{port}: {exc.strerror or exc}") from None
    if receive_buffer:
        with contextlib.suppress(OSError):  # a deeper queue rides out bursts; the kernel caps it (rmem_max)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    return sock
