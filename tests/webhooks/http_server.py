"""A real HTTP server on 127.0.0.1 for tests of requests to user URLs (documents, callbacks).

It runs in threads of its own, so it answers whatever the test's event loop is doing, and works
for sync and async tests, and for a sipline process started by the test alike.

    with WebhookServer() as server:
        server.respond("/voice", body="<Response/>", content_type="application/xml")
        server.respond("/slow", delay=2.0)                     # the status line waits 2 s
        server.respond("/drip", body="x" * 50, trickle=0.1)     # one byte every 0.1 s
        server.respond("/old", redirect_to="/voice")            # 302 (or status=301/303/307/308)
        server.respond("/flaky", status=500, times=2)           # the next 2 requests only, then as before
        ... server.url("/voice") ...
        [request] = server.wait_for(1, "/voice")                # or: await server.arrived(1, "/voice")
        request.form["CallSid"], request.query, request.headers["user-agent"], request.url

A path nobody scripted answers 404. `unaccepted_url()` gives a URL whose port listens but never
completes a connection (a connect timeout without waiting on the network).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    path: str  # without the query string
    url: str  # the full URL as requested: what a signature covers
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/xml"
    delay: float = 0.0  # seconds before the status line
    redirect_to: str | None = None  # a path of this server or an absolute URL
    trickle: float | None = None  # seconds between single bytes of the body
    declare_length: bool = True  # False: no Content-Length, the body ends when the connection closes
    remaining: int | None = None  # None: every request; else this many more


@dataclass
class _State:
    lock: threading.Condition = field(default_factory=threading.Condition)
    requests: list[Recorded] = field(default_factory=list)
    replies: dict[str, list[Reply]] = field(default_factory=dict)


class WebhookServer:
    def __init__(self) -> None:
        self._state = _State()
        self._stopping = threading.Event()
        self._httpd = _Listener(("127.0.0.1", 0), _handler(self))
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-server", daemon=True
        )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends delays and trickles at once
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- scripting --------------------------------------------------------------------------

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(
        self,
        path: str,
        status: int | None = None,
        body: bytes | str = b"",
        content_type: str = "application/xml",
        delay: float = 0.0,
        redirect_to: str | None = None,
        *,
        trickle: float | None = None,
        declare_length: bool = True,
        times: int | None = None,
    ) -> None:
        """How `path` (without a query string) answers from now on; with `times`, only the next
        `times` requests, after which it answers as it did before. A redirect is 302 unless
        `status` says another 3xx."""
        reply = Reply(
            status=status if status is not None else (302 if redirect_to else 200),
            body=body.encode() if isinstance(body, str) else body,
            content_type=content_type,
            delay=delay,
            redirect_to=redirect_to,
            trickle=trickle,
            declare_length=declare_length,
            remaining=times,
        )
        with self._state.lock:
            replies = self._state.replies.setdefault(path, [])
            if times is None:  # the standing reply, after any one-off ones still due
                replies[:] = [r for r in replies if r.remaining is not None]
                replies.append(reply)
            else:  # one-off replies are used in the order they were scripted
                standing = next((i for i, r in enumerate(replies) if r.remaining is None), len(replies))
                replies.insert(standing, reply)

    # --- what arrived -----------------------------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        with self._state.lock:
            return list(self._state.requests)

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def wait_for(self, count: int = 1, path: str | None = None, timeout: float = 5.0) -> list[Recorded]:
        """The requests (to `path`, if given) once there are at least `count`; AssertionError after
        `timeout` seconds without them."""

        def matching() -> list[Recorded]:
            return [r for r in self._state.requests if path is None or r.path == path]

        with self._state.lock:
            if not self._state.lock.wait_for(lambda: len(matching()) >= count, timeout):
                raise AssertionError(
                    f"{len(matching())} requests to {path or 'any path'} after {timeout} s, not {count}"
                )
            return matching()

    async def arrived(self, count: int = 1, path: str | None = None, timeout: float = 5.0) -> list[Recorded]:
        """`wait_for` without blocking the event loop."""
        return await asyncio.to_thread(self.wait_for, count, path, timeout)

    # --- the handler's side -----------------------------------------------------------------

    def _record(self, request: Recorded) -> Reply | None:
        with self._state.lock:
            self._state.requests.append(request)
            self._state.lock.notify_all()
            replies = self._state.replies.get(request.path, [])
            if not replies:
                return None
            reply = replies[0]
            if reply.remaining is not None:
                reply.remaining -= 1
                if reply.remaining <= 0:
                    replies.pop(0)
            return reply

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        request = Recorded(
            method=handler.command,
            path=split.path,
            url=self.url(handler.path),
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in handler.headers.items()},
            body=body,
            at=time.monotonic(),
        )
        reply = self._record(request) or Reply(404, f"no reply scripted for {split.path}".encode(), "text/plain")
        if reply.delay and self._stopping.wait(reply.delay):
            return
        handler.send_response(reply.status)
        if reply.redirect_to is not None:
            location = reply.redirect_to if "://" in reply.redirect_to else self.url(reply.redirect_to)
            handler.send_header("Location", location)
        handler.send_header("Content-Type", reply.content_type)
        if reply.declare_length:
            handler.send_header("Content-Length", str(len(reply.body)))
        else:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        if reply.trickle is None:
            handler.wfile.write(reply.body)
            return
        for i in range(len(reply.body)):
            handler.wfile.write(reply.body[i : i + 1])
            handler.wfile.flush()
            if self._stopping.wait(reply.trickle):
                return


class _Listener(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 drops connections when a test makes many at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that went away is no news
            super().handle_error(request, client_address)


def _handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client under test pools connections

        def _any(self) -> None:
            with contextlib.suppress(ConnectionError):  # the client gave up (a timeout under test)
                server._serve(self)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def unaccepted_url(path: str = "/") -> Iterator[str]:
    """A URL whose port listens but whose accept queue is full: the kernel drops new SYNs, so a
    connect waits until the client gives up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):  # Linux admits backlog + 1 connections: one, here
            filler = socket.socket()
            filler.settimeout(0.2)
            try:
                filler.connect(address)
            except TimeoutError:
                filler.close()
                break
            fillers.append(filler)
        else:
            raise RuntimeError("the accept queue never filled: cannot make a connect timeout here")
        yield f"http://127.0.0.1:{address[1]}{path}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
