"""PostgreSQL connections under load and after failures: a fixed pool, dead connections found
before use, and the saturation that tells the SIP server to turn new work away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from sipline.store.db import PING_IDLE_AFTER, Database
from tests.conftest import _create_pg_database, _drop_pg_database, require_postgres, until

LOCK = 7_357_001  # an advisory lock key of these tests' own


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
async def pg_url() -> AsyncIterator[str]:
    """A database of these tests' own: their advisory locks and killed backends touch nothing else."""
    url = await _create_pg_database(require_postgres())
    yield url
    await _drop_pg_database(url)


@pytest.fixture
async def admin(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, outside the pool under test."""
    url = make_url(pg_url)
    conn = await asyncpg.connect(host=url.host, port=url.port or 5432, user=url.username, database=url.database)
    yield conn
    await conn.close()


@pytest.fixture
def database(pg_url: str) -> Callable[[int, Clock], Database]:
    return lambda pool_size, clock: Database(pg_url, pool_size=pool_size, clock=clock)


def _backend(conn: Connection) -> int:
    pid: int = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    return pid


def _backend_after_lock(conn: Connection) -> int:
    """Waits for the test's advisory lock (shared), then names its backend."""
    conn.exec_driver_sql(f"SELECT pg_advisory_lock_shared({LOCK})")
    conn.exec_driver_sql(f"SELECT pg_advisory_unlock_shared({LOCK})")
    return _backend(conn)


async def _terminate(admin: asyncpg.Connection, pid: int) -> None:
    await admin.execute("SELECT pg_terminate_backend($1)", pid)
    await until(lambda: _gone(admin, pid), timeout=10)


async def _gone(admin: asyncpg.Connection, pid: int) -> bool:
    return not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)


async def test_a_connection_that_died_while_idle_is_replaced_before_a_call_uses_it(admin, database) -> None:
    clock = Clock()
    db = database(2, clock)
    try:
        first = await db.read(_backend)
        await _terminate(admin, first)  # a server restart, a firewall dropping an idle connection
        clock.now += PING_IDLE_AFTER
        second = await db.read(_backend)  # no error: the ping found it dead, and the pool connected anew
        assert second != first
    finally:
        await db.dispose()


async def test_a_busy_connection_is_not_pinged_so_a_death_costs_one_call_and_the_pool_recovers(admin, database) -> None:
    clock = Clock()
    db = database(2, clock)
    try:
        first = await db.read(_backend)
        await _terminate(admin, first)
        with pytest.raises(DBAPIError) as failed:  # used again at once: no round trip was spent on a ping
            await db.read(_backend)
        assert failed.value.connection_invalidated
        assert await db.read(_backend) != first
    finally:
        await db.dispose()


async def test_a_burst_waits_for_the_pool_instead_of_opening_more_connections(admin, database) -> None:
    db = database(2, Clock())
    try:
        await admin.execute(f"SELECT pg_advisory_lock({LOCK})")  # holds every call until released
        calls = [asyncio.create_task(db.read(_backend_after_lock)) for _ in range(6)]
        await until(lambda: _waiting_on_lock(admin, 2), timeout=10)
        await admin.execute(f"SELECT pg_advisory_unlock({LOCK})")
        backends = set(await asyncio.gather(*calls))
        assert len(backends) <= 2  # with overflow, up to 4 more would have been opened, then closed
    finally:
        await db.dispose()


async def _waiting_on_lock(admin: asyncpg.Connection, count: int) -> bool:
    waiting = await admin.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        LOCK,
    )
    return int(waiting) >= count


async def test_as_many_calls_waiting_as_the_pool_holds_make_the_database_saturated(admin, database) -> None:
    db = database(2, Clock())
    try:
        await admin.execute(f"SELECT pg_advisory_lock({LOCK})")
        calls = [asyncio.create_task(db.write(_backend_after_lock)) for _ in range(3)]
        # two run (and wait on the lock), one waits for them
        await until(lambda: _waiting_on_lock(admin, 2), timeout=10)
        assert not db.saturated  # three pending of the four that saturate a pool of two
        calls.append(asyncio.create_task(db.read(_backend_after_lock)))
        await until(lambda: db.saturated, timeout=10)
        await admin.execute(f"SELECT pg_advisory_unlock({LOCK})")
        await asyncio.gather(*calls)
        assert not db.saturated
    finally:
        await db.dispose()
