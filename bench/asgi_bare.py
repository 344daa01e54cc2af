"""A bare ASGI callable: the ceiling for any app on this server stack.

It reads the whole request body and answers every request with one fixed small JSON body. It is
served exactly as `sipline serve` serves its app (sipline/server.py): asyncio.run() around
`uvicorn.Server.serve()` on a socket bound here, one worker, `uvicorn.Config` defaults otherwise
(http=auto: httptools when installed), access_log=False, server_header=False, lifespan="off".
Note: because the loop is made by asyncio.run() and not by `Server.run()`, uvicorn's loop="auto"
(uvloop) does not apply, to sipline or to this app; `--loop uvloop` measures what it would give.
One deliberate difference: the listening socket is made with proto IPPROTO_TCP, so asyncio sets
TCP_NODELAY on connections as it does for its own servers (see _bind); `--sipline-socket` copies
sipline's bind_tcp exactly, to measure the Nagle/delayed-ACK cost that it currently carries.

Run: .venv/bin/python bench/asgi_bare.py [--host 127.0.0.1] [--port 0]
It prints `asgi_bare: HTTP on http://HOST:PORT` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from typing import Any

import uvicorn

BODY = b'{"type":"sip_endpoint","id":"00000000-0000-0000-0000-000000000000","username":"bare"}'
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
}
END = {"type": "http.response.body", "body": BODY}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the body, as a real handler must
        message = await receive()
        more = message.get("more_body", False)
    await send(START)
    await send(END)


def _bind(host: str, port: int, like_sipline: bool) -> socket.socket:
    # sipline.server.bind_tcp's options. It creates the socket with proto 0, and asyncio then never sets
    # TCP_NODELAY on accepted connections (asyncio only does so when sock.proto == IPPROTO_TCP), so
    # responses written in two pieces wait for the peer's delayed ACK (~40 ms). By default this app
    # binds as asyncio's own create_server does (proto IPPROTO_TCP): the ceiling of the stack.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, 0 if like_sipline else socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def _serve(host: str, port: int, log_level: str, like_sipline: bool) -> None:
    sock = _bind(host, port, like_sipline)
    print(f"asgi_bare: HTTP on http://{host}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, server_header=False, lifespan="off")
    await uvicorn.Server(config).serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="asyncio (default) is what `sipline serve` gets: asyncio.run(), so uvicorn's loop=auto does not apply",
    )
    parser.add_argument(
        "--sipline-socket",
        action="store_true",
        help="bind exactly as sipline.server.bind_tcp does (proto 0: no TCP_NODELAY under asyncio)",
    )
    args = parser.parse_args()
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(args.host, args.port, args.log_level, args.sipline_socket))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
