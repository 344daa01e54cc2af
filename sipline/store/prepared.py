"""Hot-path reads compiled once per dialect and run on the raw driver cursor.

SQLAlchemy Core spends 100-200 µs per statement (cache key, execution context, result proxy)
where SQLite answers an indexed lookup in 10 µs; a request does two or three such lookups. A
`Prepared` keeps the statement as SQLAlchemy built it (so both dialects get correct SQL) and skips
the per-execution machinery. Only for simple SELECTs of plain columns; JSON columns are decoded here.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection


class Prepared:
    def __init__(self, statement: sa.Select[Any]) -> None:
        self._statement = statement
        self._names = [c.key for c in statement.selected_columns]
        self._json = {c.key for c in statement.selected_columns if isinstance(c.type, sa.JSON)}
        self._compiled: dict[str, tuple[str, list[str]]] = {}

    def _sql(self, conn: Connection) -> tuple[str, list[str]]:
        name = conn.dialect.name
        if name not in self._compiled:
            compiled = self._statement.compile(dialect=conn.dialect)
            self._compiled[name] = (compiled.string, list(compiled.positiontup or ()))
        return self._compiled[name]

    def first(self, conn: Connection, **params: Any) -> dict[str, Any] | None:
        """The first row as a dict (column key to value), or None."""
        sql, order = self._sql(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, tuple(params[key] for key in order))
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        record = dict(zip(self._names, row, strict=True))
        for key in self._json:
            if isinstance(record[key], str):
                record[key] = json.loads(record[key])
        return record
