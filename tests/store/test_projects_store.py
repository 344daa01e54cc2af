"""Projects' signing keys in the store: made with the project, rotated on demand, on both databases."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Connection

from sipline.domain.errors import NotFound
from sipline.runtime import Runtime
from sipline.store import projects
from sipline.store.db import Database
from sipline.store.migrate import alembic_config
from tests.conftest import _create_pg_database, _drop_pg_database, backends, require_postgres


async def test_every_project_is_created_with_its_own_signing_key(runtime: Runtime) -> None:
    made = [await runtime.db.write(projects.create, f"keys {uuid.uuid4().hex[:6]}") for _ in range(3)]
    keys = [p["signing_key"] for p in made]
    assert len(set(keys)) == 3
    assert all(k.startswith("PSK_") and len(k) == 44 for k in keys)
    stored = await runtime.db.read(projects.get, made[0]["id"])
    assert stored is not None and stored["signing_key"] == keys[0]


async def test_rotating_a_signing_key_replaces_it_for_that_project_only(runtime: Runtime) -> None:
    first = await runtime.db.write(projects.create, "rotate me")
    other = await runtime.db.write(projects.create, "leave me")
    new = await runtime.db.write(projects.rotate_signing_key, first["id"])
    assert new != first["signing_key"] and new.startswith("PSK_")
    assert (await runtime.db.read(projects.require, first["id"]))["signing_key"] == new
    assert (await runtime.db.read(projects.require, other["id"]))["signing_key"] == other["signing_key"]


async def test_rotating_the_key_of_an_unknown_project_is_not_found(runtime: Runtime) -> None:
    with pytest.raises(NotFound):
        await runtime.db.write(projects.rotate_signing_key, str(uuid.uuid4()))


# --- migration 0006 on a database made before it -------------------------------------------


@pytest.fixture(params=backends())
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database of its own (the session's is at the latest schema already)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = await _create_pg_database(require_postgres())
    db = Database(url)
    yield db
    await db.dispose()
    if request.param != "sqlite":
        await _drop_pg_database(url)


def _upgrade(revision: str) -> Callable[[Connection], None]:
    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)

    return run


async def test_the_migration_gives_each_existing_project_a_fresh_key(empty_database: Database) -> None:
    db = empty_database
    await db.write(_upgrade("0005"))
    insert = sa.text(
        "INSERT INTO projects (id, name, domain_identifier, default_codecs, default_ciphers, default_encryption,"
        " created_at) VALUES (:id, :name, :ident, '[]', '[]', 'optional', :now)"
    )
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for i, project_id in enumerate(ids):
        row = {"id": project_id, "name": f"old {i}", "ident": f"old{i}", "now": time.time()}
        await db.write(lambda conn, row=row: conn.execute(insert, row))
    await db.write(_upgrade("head"))
    keys = {p["id"]: p["signing_key"] for p in await db.read(projects.list_all)}
    assert set(keys) == set(ids)
    assert len(set(keys.values())) == 3 and all(k.startswith("PSK_") for k in keys.values())
    # and the column is required from now on
    with pytest.raises(sa.exc.IntegrityError):
        await db.write(lambda conn: conn.execute(insert, {"id": "x", "name": "n", "ident": "x", "now": 0.0}))
