"""How store functions run: SQLite's write lock held by another process, URL forms users write."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from sipline.store import migrate, projects
from sipline.store.db import Database, normalize_url


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
