"""`sipline serve`: migrate, bootstrap a first project, then serve HTTP (and SIP) in one event loop."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from .api.app import create_app
from .config import Settings
from .runtime import Runtime
from .store import migrate, projects, tokens

log = logging.getLogger("sipline")


class StartupError(Exception):
    """A reason to exit non-zero with one line, not a traceback."""


def bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio only turns Nagle off (TCP_NODELAY) on sockets that say TCP, and
    # with Nagle on a response written in two pieces waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _bootstrap(conn: Connection) -> tuple[dict[str, Any], str] | None:
    """On an empty database, a project and a token with every scope; None when projects exist."""
    if projects.list_all(conn):
        return None
    project = projects.create(conn, "default", "default")
    token, _ = tokens.create(conn, project["id"], list(tokens.SCOPES))
    return project, token


async def prepare(rt: Runtime) -> tuple[dict[str, Any], str] | None:
    """Migrate; on an empty database create a project and a token with every scope and return them."""
    try:
        await migrate.upgrade(rt.db)
        created = await rt.db.write(_bootstrap)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StartupError(f"database {rt.db.describe()} unreachable: {reason}") from None
    return created


def _announce_bootstrap(project: dict[str, Any], token: str, base_url: str) -> None:
    print(
        "sipline: first start, created project 'default' and an API token with every scope.\n"
        f"  project id: {project['id']}\n"
        f"  API token:  {token}   (shown only this once)\n"
        f"  try: curl -u {project['id']}:{token} {base_url}/api/relay/rest/endpoints/sip",
        flush=True,
    )


def open_runtime(settings: Settings) -> Runtime:
    try:
        return Runtime.from_settings(settings)
    except ValueError as exc:  # an unsupported database URL, say: one line, not a traceback
        raise StartupError(str(exc)) from None


async def serve(settings: Settings, *, sip: bool = True) -> None:
    rt = open_runtime(settings)
    try:
        http_sock = bind_tcp(settings.http_host, settings.http_port)  # fail fast, before touching the DB
        created = await prepare(rt)
        base_url = f"http://{settings.http_host}:{http_sock.getsockname()[1]}"
        if created is not None:
            _announce_bootstrap(*created, base_url)
        extra: list[Any] = []
        sip_server = None
        if sip:
            from .sip.server import SipServer, registration_routes

            sip_server = SipServer(rt)
            await sip_server.start()
            extra = registration_routes()
        app = create_app(rt, extra_handlers=extra)
        print(f"sipline: HTTP API on {base_url}", flush=True)
        config = uvicorn.Config(
            app, log_level=settings.log_level, access_log=False, server_header=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        # Everything loaded so far (modules, the store's engines, the app) lives as long as the
        # process: leave it out of full collections, which otherwise stalled every answer, SIP and
        # HTTP alike, for 100-200 ms each time (measured) instead of a few tens. A process-wide
        # choice, so it is made here, once everything has started, and not by one component.
        gc.freeze()
        try:
            await server.serve(sockets=[http_sock])
        finally:
            if sip_server is not None:
                await sip_server.stop()
    finally:
        await rt.db.dispose()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it): measured 23% more requests/s here."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(settings: Settings, *, sip: bool = True) -> int:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(settings, sip=sip))
    except StartupError as exc:
        print(f"sipline: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
