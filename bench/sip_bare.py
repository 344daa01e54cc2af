"""A bare Python UDP registrar: the ceiling of any registrar written in CPython on this machine.

bench/sip.py runs it beside sipline and Kamailio, as bench/api.py runs asgi_bare.py beside sipline's
API: whatever sipline does per registration comes on top of what this costs. It answers sipp's
tests/integration/sipp/register_digest.xml the cheapest way a user would write a fast server: a
uvloop event loop, an asyncio DatagramProtocol, N processes on one UDP port, no logging.

A REGISTER without an Authorization header gets a 401 with a fixed Digest challenge; one with it
gets a 200 echoing its Contact with ;expires=3600. Both copy the request's Via, From, To (with a
tag added), Call-ID and CSeq lines as they are. Anything else is ignored. Deliberately skipped,
as asgi_bare returns a fixed body: parsing (the header lines are found by name, compact forms
included, and copied), validation, the digest check (any Authorization will do), nonces,
transactions (a retransmission is answered again), the bindings store.

The workers share one socket bound before they fork, as sipline's workers and Kamailio's children
do: the kernel hands each datagram to one of them. `--reuseport` gives each worker a socket of its
own with SO_REUSEPORT instead, where the kernel picks the socket by a hash of the sender's address:
every datagram from one sipp (one local port) then goes to the same worker.

Run (Linux): .venv/bin/python bench/sip_bare.py --port PORT [--host 127.0.0.1] [--workers 2] [--reuseport]
Each worker prints `sip_bare: worker PID on udp:HOST:PORT` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import traceback
from typing import cast

import uvloop

BUFFER = 4 << 20  # receive and send buffers (sipline asks this for its receive buffer; rmem_max caps it)
CHALLENGE = b'WWW-Authenticate: Digest realm="sip.bare", nonce="5ca1ab1e0ddba11", algorithm=MD5, qop="auth"\r\n'
END = b"Content-Length: 0\r\n\r\n"
TO_TAG = b";tag=bare"
EXPIRES = b";expires=3600"

# Header names, lower case, compact forms included: the lines copied into both responses, the To
# line (copied with a tag when it has none), and the two that decide and fill the answer.
COPIED, TO, CONTACT, AUTHORIZATION = 1, 2, 3, 4
HEADERS = {
    b"via": COPIED, b"v": COPIED, b"from": COPIED, b"f": COPIED, b"call-id": COPIED, b"i": COPIED,
    b"cseq": COPIED, b"to": TO, b"t": TO, b"contact": CONTACT, b"m": CONTACT, b"authorization": AUTHORIZATION,
}  # fmt: skip


def answer(data: bytes) -> bytes | None:
    """The response to one datagram: 401 or 200 to a REGISTER, None to anything else."""
    if not data.startswith(b"REGISTER "):
        return None
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    out = []
    contact = b""
    authorized = False
    for line in lines[1:]:
        kind = HEADERS.get(line.partition(b":")[0].rstrip().lower())
        if kind == COPIED:
            out.append(line)
        elif kind == TO:
            out.append(line if b";tag=" in line.lower() else line + TO_TAG)
        elif kind == CONTACT:
            contact = line
        elif kind == AUTHORIZATION:
            authorized = True
    if authorized:
        head = [b"SIP/2.0 200 OK", *out, contact + EXPIRES] if contact else [b"SIP/2.0 200 OK", *out]
        return b"\r\n".join(head) + b"\r\n" + END
    return b"\r\n".join([b"SIP/2.0 401 Unauthorized", *out]) + b"\r\n" + CHALLENGE + END


class Registrar(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass of it

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        response = answer(data)
        if response is not None:
            self.transport.sendto(response, addr)


def bind(host: str, port: int, *, reuseport: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        sock.setsockopt(socket.SOL_SOCKET, option, BUFFER)
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


async def serve(sock: socket.socket) -> None:
    host, port = sock.getsockname()[:2]  # uvloop takes the socket over: its fd is no longer this object's
    await asyncio.get_running_loop().create_datagram_endpoint(Registrar, sock=sock)
    print(f"sip_bare: worker {os.getpid()} on udp:{host}:{port}", flush=True)
    await asyncio.Event().wait()  # until stopped


def worker(sock: socket.socket) -> None:
    """One worker process: serve until SIGINT (Ctrl-C) or SIGTERM (the default action: exit)."""
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(sock))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2, help="processes serving the port")
    parser.add_argument("--reuseport", action="store_true", help="a socket each, with SO_REUSEPORT")
    args = parser.parse_args()
    shared = None if args.reuseport else bind(args.host, args.port, reuseport=False)
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                worker(shared or bind(args.host, args.port, reuseport=True))
            except BaseException:
                traceback.print_exc()
                code = 1
            os._exit(code)  # never back into the parent's code
        children.append(pid)
    if shared is not None:
        shared.close()  # the workers have it

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        for pid in children:
            os.waitpid(pid, 0)
    except KeyboardInterrupt:
        pass
    finally:  # the workers go with the parent (Ctrl-C reached them already: the same process group)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    if sys.platform != "linux":
        sys.exit("bench/sip_bare.py runs on Linux only")
    main()
