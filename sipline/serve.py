"""`sipline serve`: migrate, bootstrap a first project, then serve HTTP (and SIP) in one event loop;
with `--workers N`, in N such processes sharing the ports (sipline.workers)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from . import logs
from .api.access_log import access_logged
from .api.app import create_app
from .config import Settings
from .net import StartupError, bind_tcp
from .runtime import Runtime
from .store import db, meta, migrate, projects, tokens

if TYPE_CHECKING:
    from .sipserver.server import Sockets
    from .sipserver.siblings import Siblings


def _bootstrap(conn: Connection) -> tuple[dict[str, Any], str] | None:
    """On an empty database, a project and a token with every scope; None when projects exist."""
    if projects.list_all(conn):
        return None
    project = projects.create(conn, "default", "default")
    token, _ = tokens.create(conn, project["id"], list(tokens.SCOPES))
    return project, token


async def open_store(rt: Runtime) -> None:
    """Migrate, and refuse a secret key other than the one the data was sealed with."""
    try:
        await migrate.upgrade(rt.db)
        problem = await rt.db.write(meta.claim_secret_key, rt.key_fingerprint, rt.box.can_open)
    except (SQLAlchemyError, OSError) as exc:
        raise StartupError(f"database {rt.db.describe()} unreachable: {db.reason(exc)}") from None
    if problem is not None:
        raise StartupError(problem)


async def prepare(rt: Runtime) -> tuple[dict[str, Any], str] | None:
    """Open the store; on an empty database create a project and a token with every scope and
    return them."""
    await open_store(rt)
    try:
        return await rt.db.write(_bootstrap)
    except (SQLAlchemyError, OSError) as exc:
        raise StartupError(f"database {rt.db.describe()} unreachable: {db.reason(exc)}") from None


def announce_bootstrap(project: dict[str, Any], token: str, base_url: str) -> None:
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


def banner(settings: Settings, database: str, sip_listening: str | None, base_url: str) -> None:
    """What is in effect, once each, on stdout (operators and the tests read these lines)."""
    s = settings
    lines = [f"sipline: database {database}"]
    if sip_listening is not None:
        lines += [
            f"sipline: SIP domain {s.sip_domain} (projects answer at DOMAIN_IDENTIFIER.{s.sip_domain})",
            f"sipline: SIP digest algorithms {', '.join(s.digest_algorithms)}",
            f"sipline: SIP on {sip_listening}",
        ]
    if s.workers > 1:
        lines.append(f"sipline: {s.workers} worker processes")
    lines.append(f"sipline: HTTP API on {base_url}")  # last: the process is ready once it is printed
    print("\n".join(lines), flush=True)


def base_url(settings: Settings, http_sock: socket.socket) -> str:
    return f"http://{settings.http_host}:{http_sock.getsockname()[1]}"


@dataclass
class Worker:
    """What the process that forked a worker hands it (sipline.workers)."""

    http: socket.socket  # the listening HTTP socket, shared by every worker
    sip: Sockets | None
    siblings: Siblings | None
    ready: int  # a pipe to write one line to once serving
    lifeline: int  # a pipe only the parent writes to: at its end of file, the parent is gone


async def serve(settings: Settings, *, sip: bool = True, worker: Worker | None = None) -> None:
    rt = open_runtime(settings)
    http_sock = None
    sip_server = None
    stop = _Stop()
    loop = asyncio.get_running_loop()
    # SIGINT and SIGTERM stop serving, then the cleanup below runs to its end, whenever they come
    # (during startup too: serving is then skipped). A worker stops when its parent says so (it
    # ignores the terminal's SIGINT, which the parent gets too), or when the parent is gone.
    stop_signals = (signal.SIGINT, signal.SIGTERM) if worker is None else (signal.SIGTERM,)
    for stop_signal in stop_signals:
        loop.add_signal_handler(stop_signal, stop, stop_signal)
    if worker is not None:
        loop.add_reader(worker.lifeline, _orphaned, loop, worker.lifeline, stop)
    try:
        if worker is None:
            http_sock = bind_tcp(settings.http_host, settings.http_port, what="http:")  # before touching the DB
            created = await prepare(rt)
            if created is not None:
                announce_bootstrap(*created, base_url(settings, http_sock))
        else:
            http_sock = worker.http  # the parent has prepared the store
        if sip:
            from .sipserver.server import SipServer

            if worker is None:
                sip_server = SipServer(rt)
            else:
                sip_server = SipServer(rt, sockets=worker.sip, siblings=worker.siblings)
            await sip_server.start()
        app = access_logged(create_app(rt))
        config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False, lifespan="off")
        server = stop.server = _Server(config)
        if worker is None:
            listening = sip_server.listening() if sip_server is not None else None
            banner(settings, rt.db.describe(), listening, base_url(settings, http_sock))
        else:
            os.write(worker.ready, b"ready\n")
        # Everything loaded so far (modules, the store's engines, the app) lives as long as the
        # process: leave it out of full collections, which otherwise stalled every answer, SIP and
        # HTTP alike, for 100-200 ms each time (measured) instead of a few tens. A process-wide
        # choice, so it is made here, once everything has started, and not by one component.
        gc.freeze()
        # And collect young objects after 50,000 net allocations rather than 700: what is in flight
        # (a thousand calls' messages and timers) was otherwise promoted at every pass, and the
        # older generations' passes that followed took 5 % of the CPU and stalls of 40-130 ms
        # (measured at 1,000 calls/s; with this: a seventh of the time, and 1,100 calls/s clean
        # where 1,000 was the limit). Cycles are rare here (calls break theirs when they end).
        gc.set_threshold(50_000, 10, 10)
        if not stop.requested:
            await server.serve(sockets=[http_sock])
    finally:
        for stop_signal in stop_signals:
            loop.remove_signal_handler(stop_signal)
        if worker is not None:
            loop.remove_reader(worker.lifeline)
        if sip_server is not None:
            await sip_server.stop()
        if http_sock is not None:
            http_sock.close()
        await rt.db.dispose()


def _orphaned(loop: asyncio.AbstractEventLoop, fd: int, stop: _Stop) -> None:
    """The parent's end of the lifeline closed: it is gone (killed, say), and so must its workers go."""
    loop.remove_reader(fd)
    stop(signal.SIGTERM)


class _Stop:
    """The stop signal handler: remembered during startup, passed to the HTTP server once it runs."""

    def __init__(self) -> None:
        self.requested = False
        self.server: _Server | None = None

    def __call__(self, signum: int) -> None:
        self.requested = True
        if self.server is not None:
            self.server.handle_exit(signum, None)  # a second SIGINT forces the exit, as uvicorn does


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would raise the stop signal again once it has stopped serving, which would cancel
        # sipline's own cleanup (SIP listeners, database connections) half-way; serve() installs
        # handlers on the loop instead, and the process exits when serve() returns.
        yield


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it): measured 23% more requests/s here."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(settings: Settings, *, sip: bool = True) -> int:
    logs.configure(settings.log_level, settings.log_format)
    if settings.workers > 1:
        from .workers import run_workers

        return run_workers(settings, sip=sip)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(serve(settings, sip=sip))
    except StartupError as exc:
        print(f"sipline: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
