"""Throwaway PostgreSQL databases, made on the server a URL names and dropped afterwards: for the
tests (tests/conftest.py) and the benchmarks (bench/common.py `own_database`) alike."""

from __future__ import annotations

import uuid

import asyncpg
from sqlalchemy.engine import URL, make_url


async def _execute(server: URL, database: str | None, sql: str) -> None:
    conn = await asyncpg.connect(
        host=server.host, port=server.port or 5432, user=server.username, password=server.password, database=database
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(url: str, prefix: str) -> str:
    """A new, empty database `prefix_<random>` beside the one `url` names; its URL."""
    base = make_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await _execute(base, base.database, f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str, connect_to: str | None) -> None:
    """Drop the database `url` names, connected to the database `connect_to` of the same server
    (one cannot drop the database one is connected to); its sessions are ended first (FORCE)."""
    target = make_url(url)
    await _execute(target, connect_to, f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
