"""How store functions run: SQLite's write lock held by another process, URL forms users write."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc

from sipline.store import migrate, projects
from sipline.store.db import Database, WriteLater, normalize_url, reason, unavailable
from tests.conftest import require_postgres


async def test_a_write_waits_for_another_process_lock_without_stalling_reads(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    db = Database(f"sqlite:///{path}")
    try:
        await migrate.upgrade(db)
        await db.write(projects.create, "first")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            pending = asyncio.create_task(db.write(projects.create, "second"))
            for _ in range(5):  # let it run up to its wait: it cannot finish while the lock is held
                await asyncio.sleep(0)
            assert not pending.done()
            # The event loop keeps serving reads while the write waits on its thread.
            assert [p["name"] for p in await asyncio.wait_for(db.read(projects.list_all), 1)] == ["first"]
        finally:
            other.execute("ROLLBACK")
            other.close()
        created = await asyncio.wait_for(pending, 5)
        assert created["name"] == "second"
        assert [p["name"] for p in await db.read(projects.list_all)] == ["first", "second"]
    finally:
        await db.dispose()


async def test_a_write_that_cannot_run_at_once_is_refused_before_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "now.db"
    db = Database(f"sqlite:///{path}")
    ran: list[str] = []

    def create(conn: Connection, name: str) -> str:
        ran.append(name)
        return str(projects.create(conn, name)["name"])

    try:
        await migrate.upgrade(db)
        assert db.writes_now
        assert db.write_now(create, "free") == "free"  # the lock is free: written and committed
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            assert db.writes_now  # the lock is only tried by write_now itself
            with pytest.raises(WriteLater):
                db.write_now(create, "locked")
            queued = asyncio.create_task(db.write(create, "queued"))  # waits for the lock
            for _ in range(5):
                await asyncio.sleep(0)
            assert not queued.done()
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert not db.writes_now  # behind a queued write: order is kept
        with pytest.raises(WriteLater):
            db.write_now(create, "behind")
        assert await asyncio.wait_for(queued, 5) == "queued"
        assert ran == ["free", "queued"]
        assert db.writes_now
        assert db.write_now(create, "again") == "again"
        assert sorted(p["name"] for p in await db.read(projects.list_all)) == ["again", "free", "queued"]
    finally:
        await db.dispose()


async def test_postgres_never_writes_at_once() -> None:
    """On PostgreSQL every write waits for a connection and its round trips: never at once."""
    db = Database(require_postgres())
    ran: list[Connection] = []
    try:
        assert not db.writes_now
        with pytest.raises(WriteLater):
            db.write_now(ran.append)
        assert ran == []
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///var/x.db", "sqlite"),
        ("sqlite+aiosqlite:///var/x.db", "sqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_database_urls_in_the_usual_forms_are_accepted(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_unsupported_databases_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mysql"):
        normalize_url("mysql://u@h/db")


async def test_the_write_ahead_log_stays_bounded_under_steady_writes(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    db = Database(f"sqlite:///{path}")
    try:
        await migrate.upgrade(db)
        project = await db.write(projects.create, "busy")
        rename = "UPDATE projects SET name = ? WHERE id = ?"
        for i in range(3000):
            await db.write(lambda conn, i=i: conn.exec_driver_sql(rename, (f"name {i}", project["id"])))
        await db.settle()
        # 3,000 commits of at least one 4 KiB page each would make a WAL of 12 MiB and more.
        size = (tmp_path / "wal.db-wal").stat().st_size
        assert size < 8 * 1024 * 1024, f"WAL grew to {size} bytes"
        assert (await db.read(projects.get, project["id"]))["name"] == "name 2999"
    finally:
        await db.dispose()


async def test_writes_that_queue_up_are_committed_together_and_a_failing_one_alone_is_undone(tmp_path: Path) -> None:
    path = tmp_path / "batched.db"
    db = Database(f"sqlite:///{path}")
    try:
        await migrate.upgrade(db)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the lock: the writes queue up
        try:
            names = [f"p{i}" for i in range(200)]
            writes = [asyncio.create_task(db.write(projects.create, name)) for name in names]

            def fail(conn: Connection) -> None:
                projects.create(conn, "undone")
                raise RuntimeError("this write fails")

            failing = asyncio.create_task(db.write(fail))
            for _ in range(5):
                await asyncio.sleep(0)
            assert not any(w.done() for w in [*writes, failing])
            commits = db._commits
        finally:
            other.execute("ROLLBACK")
            other.close()
        created = await asyncio.wait_for(asyncio.gather(*writes), 10)
        assert [p["name"] for p in created] == names
        with pytest.raises(RuntimeError, match="this write fails"):
            await asyncio.wait_for(failing, 10)
        stored = sorted(p["name"] for p in await db.read(projects.list_all))
        assert stored == sorted(names)  # the failing write's project is not there; every other one is
        assert db._commits - commits <= 2  # one transaction for the queue (not a commit each)
    finally:
        await db.dispose()


_LOCKED = sa_exc.OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked\nsecond line"))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_LOCKED, True),
        (sa_exc.TimeoutError("QueuePool limit of size 10 overflow 0 reached"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (sa_exc.DBAPIError("SELECT 1", {}, Exception("connection is closed"), connection_invalidated=True), True),
        (sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (sa_exc.ProgrammingError("SELECT", {}, Exception("syntax error")), False),
        (ValueError("not the database's"), False),
    ],
)
def test_errors_meaning_the_database_cannot_serve_now_are_told_from_faults(exc: BaseException, expected: bool) -> None:
    assert unavailable(exc) is expected


def test_a_database_error_is_told_in_one_line_of_the_drivers_words() -> None:
    assert reason(_LOCKED) == "database is locked"
    assert reason(sa_exc.TimeoutError("QueuePool limit of size 10 overflow 0 reached")).startswith("QueuePool limit")
    assert reason(ConnectionRefusedError()) == "ConnectionRefusedError"  # no words of its own
