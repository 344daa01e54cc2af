"""Alembic upgrade to head, for SQLite and PostgreSQL alike, safe when several nodes start at once."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

from .db import Database

_LOCK_KEY = 0x5191_1E  # any constant: serialises concurrent `sipline migrate` runs on PostgreSQL


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "sipline.store:migrations")
    return cfg


def _upgrade(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


async def upgrade(db: Database) -> None:
    await db.write(_upgrade)
