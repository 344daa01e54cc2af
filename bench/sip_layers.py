"""CPU per registration, in-process: what sipline's registrar spends, and the store's share of it.

    .venv/bin/python bench/sip_layers.py [--registrations 2000] [--rounds 5] [--devices 2000] [--database-url URL]

A registration is what bench/sip.py's sipp scenario does to a device already registered: REGISTER,
401, REGISTER with an MD5 digest, 200, the binding refreshed. What is reported is
`time.process_time()` per registration (user + system CPU of this process), the least of `--rounds`
rounds of `--registrations` each (the other rounds were disturbed more by other work on the machine).
No sockets, no sipp: the figures move little with the machine's other work, and a change to the
registrar's path shows up here before it does in bench/sip.py. The rows:

1. `store, raw driver` (SQLite only): the registrar's statements on the sqlite3 connection itself:
   BEGIN IMMEDIATE, the endpoint's auth record, its bindings, the binding updated, COMMIT. The least
   a durable write per registration costs from Python.
2. `store`: the same transaction as the registrar runs it: `Database.write` of
   `endpoints.auth_record_for_update`, `bindings.list_for_endpoint` and `bindings.replace`.
3. `sipline`: both REGISTERs through `SipService.receive` (parse, transaction, the digest and its
   nonce, the store, the response, the metrics) on a flow that keeps what is sent instead of a
   socket, with the collector set as `sipline serve` sets it. The client's work (the messages, the
   digest answers) is measured apart and subtracted.

`sipline` minus `store` is sipline's own work per registration. The sockets and the event loop are
not in these figures: bench/sip.py's bare Python registrar gives them (its CPU per registration at
capacity). SQLite in a temp dir by default; `--database-url postgresql+asyncpg://...` runs rows 2
and 3 against a database of the bench's own on that server, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from sqlalchemy import Connection  # noqa: E402

from bench.common import SECRET, Response, digest, own_database, seed  # noqa: E402
from sipline.config import Settings  # noqa: E402
from sipline.runtime import Runtime  # noqa: E402
from sipline.sip.registrar import Binding  # noqa: E402
from sipline.sipserver.service import SipService  # noqa: E402
from sipline.store import bindings, endpoints, projects  # noqa: E402
from tests.sip_server.sip_phone import RecordingFlow  # noqa: E402

PORT = 40000  # the devices' port in their Contact (nothing listens: the flow records)


class Devices:
    """The seeded devices, cycled through; each REGISTER with a new branch and a higher CSeq."""

    def __init__(self, domain: str, creds: list[tuple[str, str]]) -> None:
        self.domain = domain
        self.creds = creds
        self.next = 0
        self.cseq = 0

    def take(self) -> tuple[str, str]:
        device = self.creds[self.next % len(self.creds)]
        self.next += 1
        return device

    def register(self, user: str, authorization: str | None = None) -> bytes:
        self.cseq += 1
        auth = f"Authorization: {authorization}\r\n" if authorization else ""
        return (
            f"REGISTER sip:{self.domain} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{PORT};branch=z9hG4bK-{user}-{self.cseq}\r\n"
            f"From: <sip:{user}@{self.domain}>;tag={user}\r\nTo: <sip:{user}@{self.domain}>\r\n"
            f"Call-ID: {user}@bench\r\nCSeq: {self.cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{PORT}>\r\n"
            f"{auth}Max-Forwards: 70\r\nExpires: 3600\r\nUser-Agent: bench\r\nContent-Length: 0\r\n\r\n"
        ).encode()

    def answer(self, user: str, password: str, challenge: bytes) -> str:
        response = Response.parse(challenge)
        assert response is not None and response.challenge, challenge[:200]
        return digest(user, password, "REGISTER", f"sip:{self.domain}", response.challenge)


async def sipline_registrations(service: SipService, devices: Devices, count: int) -> float:
    """CPU seconds of `count` registrations through the service, the client's work (`client_work`)
    subtracted."""
    flow = RecordingFlow()
    started = time.process_time()
    for _ in range(count):
        user, password = devices.take()
        task = service.receive(devices.register(user), flow)
        if task is not None:
            await task
        task = service.receive(devices.register(user, devices.answer(user, password, flow.sent[-1])), flow)
        if task is not None:
            await task
        if not flow.sent[-1].startswith(b"SIP/2.0 200 "):
            raise RuntimeError(f"not registered: {flow.sent[-1][:200]!r}")
        flow.sent.clear()
    return time.process_time() - started - client_work(devices, count)


def client_work(devices: Devices, count: int) -> float:
    """CPU seconds of the client's side of `count` registrations: the messages and the digest answers."""
    challenge = (
        b'SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm="x", nonce="' + b"n" * 43 + b'", '
        b'algorithm=MD5, qop="auth"\r\n\r\n'
    )
    cseq = devices.cseq
    started = time.process_time()
    for _ in range(count):
        user, password = devices.take()
        devices.register(user)
        devices.register(user, devices.answer(user, password, challenge))
    spent = time.process_time() - started
    devices.next -= count  # the same devices as the registrations measured: nothing else changes
    devices.cseq = cseq
    return spent


def refresh(conn: Connection, project_id: str, user: str, now: float) -> None:
    """The registrar's store transaction for a refresh (sipserver/registrar.py)."""
    endpoint = endpoints.auth_record_for_update(conn, project_id, user)
    assert endpoint is not None
    previous = bindings.list_for_endpoint(conn, endpoint["id"])
    # CSeq 1: below what the devices send next, so that sipline's rounds can follow
    fresh = [Binding(f"sip:{user}@127.0.0.1:{PORT}", now + 3600, f"{user}@bench", 1, None, now)]
    origin = bindings.Origin("udp", "127.0.0.1", PORT, "bench")
    bindings.replace(conn, endpoint["id"], fresh, origin, previous)


def raw_refresh(db: sqlite3.Connection, project_id: str, user: str, now: float) -> None:
    """The same statements on the driver's connection, nothing around them."""
    db.execute("BEGIN IMMEDIATE")
    endpoint_id = db.execute(
        "SELECT id, username, encryption, ha1_md5, ha1_sha256 FROM sip_endpoints WHERE project_id = ? AND username = ?",
        (project_id, user),
    ).fetchone()[0]
    rows = db.execute(
        "SELECT id, contact, expires_at, call_id, cseq, q, registered_at, transport, source_host, source_port, "
        "user_agent, node_id, flow_id FROM sip_bindings WHERE endpoint_id = ? ORDER BY registered_at, id",
        (endpoint_id,),
    ).fetchall()
    db.execute(
        "UPDATE sip_bindings SET expires_at = ?, call_id = ?, cseq = ?, q = ?, registered_at = ?, transport = ?, "
        "source_host = ?, source_port = ?, user_agent = ?, node_id = ?, flow_id = ? WHERE id = ?",
        (
            now + 3600,
            f"{user}@bench",
            int(now * 1000),
            None,
            now,
            "udp",
            "127.0.0.1",
            PORT,
            "bench",
            None,
            None,
            rows[0][0],
        ),
    )
    db.execute("COMMIT")


async def least(rounds: int, count: int, one_round: Callable[[int], Awaitable[float]]) -> float:
    """µs of CPU per registration: the least of `rounds` rounds."""
    return min([await one_round(count) for _ in range(rounds)]) / count * 1e6


async def run(opts: argparse.Namespace, data_dir: Path, database_url: str | None) -> None:
    domain, creds = await seed(data_dir, database_url, opts.devices)
    rt = Runtime.from_settings(Settings(data_dir=data_dir, database_url=database_url, secret_key=SECRET))
    try:
        service = SipService(rt)
        project_id = (await rt.db.read(projects.list_all))[0]["id"]
        devices = Devices(domain, creds)
        await sipline_registrations(service, devices, len(creds))  # every device registered once
        gc.freeze()  # as `sipline serve` does once it has started (serve.py)
        gc.set_threshold(50_000, 10, 10)
        rows: list[tuple[str, float]] = []

        if rt.db.is_sqlite:
            raw = sqlite3.connect(data_dir / "sipline.db", isolation_level=None)
            raw.execute("PRAGMA synchronous=NORMAL")  # as sipline's connections (WAL is the file's own)

            async def raw_round(count: int) -> float:
                started = time.process_time()
                for _ in range(count):
                    raw_refresh(raw, project_id, devices.take()[0], time.time())
                return time.process_time() - started

            rows.append(("store, raw driver", await least(opts.rounds, opts.registrations, raw_round)))
            raw.close()

        async def store_round(count: int) -> float:
            started = time.process_time()
            for _ in range(count):
                await rt.db.write(refresh, project_id, devices.take()[0], time.time())
            return time.process_time() - started

        async def sipline_round(count: int) -> float:
            return await sipline_registrations(service, devices, count)

        rows.append(("store", await least(opts.rounds, opts.registrations, store_round)))
        rows.append(("sipline", await least(opts.rounds, opts.registrations, sipline_round)))
        await service.close()
    finally:
        await rt.db.dispose()
    backend = "SQLite" if database_url is None else "PostgreSQL"
    print(f"\nCPU per registration, µs (least of {opts.rounds} rounds of {opts.registrations}; {backend};")
    print(f"{opts.devices} devices, refreshes; in-process, no sockets; Python {sys.version.split()[0]})")
    for name, value in rows:
        print(f"  {name:<20} {value:8.0f}")
    totals = dict(rows)
    print(f"  {'sipline - store':<20} {totals['sipline'] - totals['store']:8.0f}   sipline's own work")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registrations", type=int, default=2000, help="registrations per round (default 2000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per row; the least is reported (default 5)")
    p.add_argument("--devices", type=int, default=2000, help="devices seeded and cycled through (default 2000)")
    p.add_argument("--database-url", help="default: SQLite in a temp dir; postgresql+asyncpg://... for PostgreSQL")
    opts = p.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="sipline-sip-layers-") as tmp,
        own_database(opts.database_url) as url,
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
    ):
        runner.run(run(opts, Path(tmp), url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
