"""CPU per request, layer by layer, in-process: where an API request's time goes, without a server.

    .venv/bin/python bench/api_layers.py [--requests 3000] [--rounds 5] [--endpoints 1000] [--database-url URL]

Each layer is an ASGI app called directly on a uvloop loop (no sockets, no HTTP parsing), one request
after the other, for three requests: GET /healthz, GET /endpoints/sip/{id} and PUT /endpoints/sip/{id}
(`{"caller_id": ...}`, a random seeded id each time, Basic auth as bench/api.py sends it). What it
reports is `time.process_time()` per request (user + system CPU of this process), the least of
`--rounds` rounds (as timeit reports: the other rounds were disturbed more by other work on the
machine, which shares caches and cores even when it does not take this process's CPU time).
The layers, each adding to the last:

1. `bare ASGI`: bench/asgi_bare.py's app (reads the body, sends a fixed JSON body).
2. `Litestar`: a Litestar app with sipline's settings (exception handlers, OpenAPI config, body
   limit, no logging config) and handlers at sipline's paths that take the same path parameters and
   body and return a fixed msgspec Struct: the framework's own cost.
3. `+ hooks`: the same, with sipline's per-request hooks: the X-Request-Id hook and the access log
   (sipline.logs configured as `sipline serve` configures it, text format, written to /dev/null).
4. `+ token check`: the same handlers now take sipline's `runtime` and `principal` dependencies, as
   sipline's handlers do (Basic auth parsed, the token checked); /healthz has no token check.
5. `sipline`: the real app (sipline.api.app.create_app wrapped in the access log), as
   `sipline serve` runs it: the route's own work (body parsing, domain validation, the store call,
   the response shaped with msgspec).

The server (uvicorn and httptools) is not in these figures: bench/api.py's bare rows give it
(1 / requests per second of the bare app at 100% CPU). SQLite in a temp dir by default (as
bench/api.py); `--database-url postgresql+asyncpg://...` runs against a fresh PostgreSQL database
created and dropped next to the one named.

`--only LAYER:ROUTE` (e.g. `sipline:get`) runs one cell, for a profiler or callgrind:
    valgrind --tool=callgrind .venv/bin/python bench/api_layers.py --only sipline:get --requests 2000
(take the difference of two runs with different --requests for the per-request instruction count).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import uvloop
from litestar import Litestar, Request, get, route
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import asgi_bare  # noqa: E402

from sipline import logs  # noqa: E402
from sipline.api import deps  # noqa: E402
from sipline.api.access_log import access_logged  # noqa: E402
from sipline.api.app import create_app  # noqa: E402
from sipline.api.bodies import MAX_BODY_SIZE, parse_body  # noqa: E402
from sipline.api.errors import EXCEPTION_HANDLERS  # noqa: E402
from sipline.api.middleware import add_request_id  # noqa: E402
from sipline.config import Settings  # noqa: E402
from sipline.runtime import Runtime  # noqa: E402
from sipline.serve import prepare  # noqa: E402
from sipline.store import projects, tokens  # noqa: E402

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGI = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
PATH = "/api/relay/rest/endpoints/sip"
ROUTES = ("healthz", "get", "put")
LAYERS = ("bare ASGI", "Litestar", "+ hooks", "+ token check", "sipline")
KEYS = {"bare": "bare ASGI", "litestar": "Litestar", "hooks": "+ hooks", "auth": "+ token check", "sipline": "sipline"}


class _Fixed(msgspec.Struct):
    type: str
    id: str
    username: str


_FIXED = _Fixed("sip_endpoint", "00000000-0000-0000-0000-000000000000", "bare")


# ------------------------------------------------------------------------------------ the layers


def _litestar(*, hooks: bool, auth: bool, rt: Runtime) -> Litestar:
    """Handlers at sipline's paths doing none of sipline's work; `auth` adds the principal dependency."""
    if auth:

        @get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "database": "ok"}

        @get(PATH + "/{id:str}")
        async def get_one(
            id: FromPath[str], runtime: NamedDependency[Runtime], principal: NamedDependency[deps.Principal]
        ) -> _Fixed:
            return _FIXED

        @route(PATH + "/{id:str}", http_method=["PUT", "PATCH"], status_code=201)
        async def put_one(
            id: FromPath[str],
            request: Request[Any, Any, Any],
            runtime: NamedDependency[Runtime],
            principal: NamedDependency[deps.Principal],
        ) -> _Fixed:
            parse_body(request.headers.get("content-type"), await request.body())
            return _FIXED

    else:

        @get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "database": "ok"}

        @get(PATH + "/{id:str}")
        async def get_one(id: FromPath[str]) -> _Fixed:
            return _FIXED

        @route(PATH + "/{id:str}", http_method=["PUT", "PATCH"], status_code=201)
        async def put_one(id: FromPath[str], request: Request[Any, Any, Any]) -> _Fixed:
            parse_body(request.headers.get("content-type"), await request.body())
            return _FIXED

    # The settings of sipline.api.app.create_app, less what each layer leaves out.
    real = create_app(rt)
    app = Litestar(
        route_handlers=[healthz, get_one, put_one],
        dependencies=(
            {"runtime": Provide(deps.runtime, sync_to_thread=False), "principal": Provide(deps.principal)}
            if auth
            else {}
        ),
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[add_request_id] if hooks else [],
        openapi_config=real.openapi_config,
        request_max_body_size=MAX_BODY_SIZE,
        state=None,
        debug=False,
        logging_config=None,
    )
    app.state.runtime = rt
    for name, value in real.state.dict().items():  # what create_app keeps there (the verified tokens)
        app.state[name] = value
    return access_logged(app) if hooks else app  # type: ignore[return-value]


def layers(rt: Runtime) -> dict[str, ASGI]:
    return {
        "bare ASGI": asgi_bare.app,
        "Litestar": _litestar(hooks=False, auth=False, rt=rt),
        "+ hooks": _litestar(hooks=True, auth=False, rt=rt),
        "+ token check": _litestar(hooks=True, auth=True, rt=rt),
        "sipline": access_logged(create_app(rt)),  # as sipline.serve builds it
    }


# ------------------------------------------------------------------------------------ the requests


class Requests:
    """ASGI scopes for the three requests, built ahead of the timed loop."""

    def __init__(self, ids: list[str], auth: str) -> None:
        self.ids = ids
        self.auth = auth.encode()
        self.n = 0

    def _scope(self, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": method,
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1:8080"), *headers],
            "state": {},
        }

    def make(self, kind: str) -> tuple[dict[str, Any], bytes]:
        self.n += 1
        if kind == "healthz":
            return self._scope("GET", "/healthz", []), b""
        endpoint_id = random.choice(self.ids)
        headers = [(b"authorization", self.auth)]
        if kind == "get":
            return self._scope("GET", f"{PATH}/{endpoint_id}", headers), b""
        body = f'{{"caller_id":"+1555{self.n % 10_000_000:07d}"}}'.encode()
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        return self._scope("PUT", f"{PATH}/{endpoint_id}", headers), body


async def call(app: ASGI, scope: dict[str, Any], body: bytes) -> int:
    """One request through the app; returns the status it sent."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(app: ASGI, requests: Requests, kind: str, n: int, rounds: int) -> float:
    """The least CPU seconds per request over the rounds (as timeit: the others were disturbed more)."""
    for _ in range(min(n, 300)):  # warm-up: caches, first compilations
        scope, body = requests.make(kind)
        status = await call(app, scope, body)
        if status not in (200, 201):
            raise RuntimeError(f"{kind}: status {status} from {app!r}")
    results = []
    for _ in range(rounds):
        batch = [requests.make(kind) for _ in range(n)]
        t0 = time.process_time()
        for scope, body in batch:
            await call(app, scope, body)
        results.append((time.process_time() - t0) / n)
    return min(results)


# ------------------------------------------------------------------------------------ setup


async def seed(rt: Runtime, count: int) -> tuple[list[str], str]:
    """A project, a voice token and `count` endpoints created through the real app's POST."""
    project = await rt.db.write(projects.create, f"bench {uuid.uuid4().hex[:6]}")
    token, _ = await rt.db.write(tokens.create, project["id"], ["voice"])
    auth = "Basic " + base64.b64encode(f"{project['id']}:{token}".encode()).decode()
    app = create_app(rt)
    ids = []
    for i in range(count):
        body = f'{{"username":"bench{i:06d}","password":"pw-{i:08d}x"}}'.encode()
        scope = Requests([], auth)._scope(
            "POST", PATH, [(b"authorization", auth.encode()), (b"content-type", b"application/json")]
        )
        captured: list[bytes] = []

        async def send(message: dict[str, Any], captured: list[bytes] = captured) -> None:
            if message["type"] == "http.response.body":
                captured.append(message.get("body", b""))

        done = False

        async def receive(body: bytes = body) -> dict[str, Any]:
            nonlocal done
            if done:
                return {"type": "http.disconnect"}
            done = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, receive, send)
        ids.append(msgspec.json.decode(b"".join(captured))["id"])
    return ids, auth


async def _pg_database(url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import _create_pg_database, _drop_pg_database

    made = await _create_pg_database(url)

    async def drop() -> None:
        await _drop_pg_database(made)

    return made, drop


async def run(opts: argparse.Namespace) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="sipline-layers-"))
    drop: Callable[[], Awaitable[None]] | None = None
    url = opts.database_url
    if url and url.startswith("postgresql"):
        os.environ.setdefault("SIPLINE_TEST_DATABASE_URL", url)
        url, drop = await _pg_database(url)
    # The access log as `sipline serve` writes it (text, INFO), into /dev/null rather than a terminal.
    logs.configure("info", "text")
    sink = open(os.devnull, "w")  # noqa: SIM115
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    rt = Runtime.from_settings(Settings(data_dir=data_dir, database_url=url, secret_key="bench-secret"))
    try:
        await prepare(rt)
        ids, auth = await seed(rt, opts.endpoints)
        requests = Requests(ids, auth)
        apps = layers(rt)
        cells = [(layer, kind) for layer in LAYERS for kind in ROUTES]
        if opts.only:
            key, _, kind = opts.only.partition(":")
            cells = [(KEYS[key], kind)]
        results: dict[tuple[str, str], float] = {}
        for layer, kind in cells:
            if layer == "+ token check" and kind == "healthz":
                continue  # /healthz has no token check
            results[(layer, kind)] = await measure(apps[layer], requests, kind, opts.requests, opts.rounds)
            print(f"  {layer:<15} {kind:<8} {results[(layer, kind)] * 1e6:8.1f} µs", file=sys.stderr, flush=True)
        if not opts.only:
            print(report(results, rt.db.describe(), opts))
    finally:
        await rt.db.dispose()
        sink.close()
        if drop is not None:
            await drop()
    return 0


def report(results: dict[tuple[str, str], float], database: str, opts: argparse.Namespace) -> str:
    out = io.StringIO()
    out.write(
        f"\nCPU per request, µs (least of {opts.rounds} rounds of {opts.requests}; {database}; in-process, no server)\n"
    )
    header = f"{'layer':<16}" + "".join(f"{k:>18}" for k in ("GET /healthz", "GET /sip/{id}", "PUT /sip/{id}"))
    out.write(header + "\n" + "-" * len(header) + "\n")
    previous: dict[str, float] = {}
    for layer in LAYERS:
        row = f"{layer:<16}"
        for kind in ROUTES:
            value = results.get((layer, kind))
            if value is None:
                row += f"{'--':>18}"
                continue
            delta = value - previous[kind] if kind in previous else None
            cell = f"{value * 1e6:.1f}" + (f" (+{delta * 1e6:.1f})" if delta is not None else "")
            row += f"{cell:>18}"
            previous[kind] = value
        out.write(row + "\n")
    out.write("(+x): added by this layer over the one above it.\n")
    return out.getvalue()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=3000, help="requests per round (default 3000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per cell; the least is reported (default 5)")
    p.add_argument("--endpoints", type=int, default=1000, help="endpoints seeded (default 1000)")
    p.add_argument("--database-url", help="default: SQLite in a temp dir; postgresql+asyncpg://... for PostgreSQL")
    p.add_argument("--only", help="one cell, LAYER:ROUTE with LAYER in bare, litestar, hooks, auth, sipline")
    opts = p.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run(opts))


if __name__ == "__main__":
    sys.exit(main())
