"""A bare ASGI callable: the ceiling for any app on this server stack.

It reads the whole request body and answers every request with one fixed small JSON body. It is
served exactly as `sipline serve` serves its app (sipline/serve.py): an asyncio.Runner on uvloop
around `uvicorn.Server.serve()` on a socket bound with proto IPPROTO_TCP (so TCP_NODELAY is set on
connections), one worker, `uvicorn.Config` defaults otherwise (http=auto: httptools when
installed), access_log=False, server_header=False, lifespan="off". `--loop asyncio` measures the
plain asyncio loop for comparison.

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


def _bind(host: str, port: int) -> socket.socket:
    # As sipline.net.bind_tcp binds.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def _serve(host: str, port: int, log_level: str) -> None:
    sock = _bind(host, port)
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
        default="uvloop",
        help="uvloop (default) is what `sipline serve` runs on",
    )
    args = parser.parse_args()
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(args.host, args.port, args.log_level))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
