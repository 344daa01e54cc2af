"""Hot-path statements compiled once per dialect and run on the raw driver cursor.

SQLAlchemy Core spends 100-200 µs per statement (cache key, execution context, result proxy)
where SQLite answers an indexed lookup in 10 µs; a request does two or three such lookups. A
`Prepared` keeps the statement as SQLAlchemy built it (so both dialects get correct SQL) and skips
the per-execution machinery. For SELECTs of plain columns (JSON columns decoded here) and for
INSERT/UPDATE/DELETE with named bind parameters (JSON parameters encoded here). Driver errors are
raised wrapped as SQLAlchemy's (IntegrityError, DataError, ...), as Connection.execute does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.sql.compiler import SQLCompiler

_R = TypeVar("_R")
_decode_json = msgspec.json.Decoder().decode  # what json.loads returns, in a fraction of its time


class Prepared:
    def __init__(self, statement: sa.ClauseElement, *, json_params: frozenset[str] = frozenset()) -> None:
        self._statement = statement
        selected = list(statement.selected_columns) if isinstance(statement, sa.Select) else []
        self._names = [str(c.key) for c in selected]
        self._json = {str(c.key) for c in selected if isinstance(c.type, sa.JSON)}
        self._json_params = json_params
        self._compiled: dict[str, tuple[str, list[str]]] = {}

    def _sql(self, conn: Connection) -> tuple[str, list[str]]:
        name = conn.dialect.name
        if name not in self._compiled:
            compiled = self._statement.compile(dialect=conn.dialect)
            assert isinstance(compiled, SQLCompiler)  # statements, not DDL: positiontup is theirs
            self._compiled[name] = (compiled.string, list(compiled.positiontup or ()))
        return self._compiled[name]

    def _args(self, order: list[str], params: dict[str, Any]) -> tuple[Any, ...]:
        if not self._json_params:
            return tuple(params[key] for key in order)
        return tuple(
            json.dumps(params[key]) if key in self._json_params and params[key] is not None else params[key]
            for key in order
        )

    def _execute(self, conn: Connection, rows: list[dict[str, Any]], result: Callable[[Any], _R]) -> _R:
        """Run the statement once per parameter row (executemany for several) on the connection's
        own cursor, inside the caller's transaction; `result` reads what it needs from the cursor."""
        sql, order = self._sql(conn)
        args = [self._args(order, params) for params in rows]
        dbapi = conn.dialect.dbapi
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if len(args) == 1:
                cursor.execute(sql, args[0])
            else:
                cursor.executemany(sql, args)
            return result(cursor)
        except dbapi.Error as exc:  # type: ignore[union-attr]
            # SQLAlchemy's own wrapper, as Connection.execute raises: callers catch one family.
            raise sa.exc.DBAPIError.instance(sql, args, exc, dbapi.Error) from exc  # type: ignore[union-attr]
        finally:
            cursor.close()

    def run(self, conn: Connection, **params: Any) -> int:
        """Execute a data-changing statement; returns the number of rows it touched."""
        return self._execute(conn, [params], lambda cursor: int(cursor.rowcount))

    def run_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Execute a data-changing statement once for each parameter row."""
        if rows:
            self._execute(conn, rows, lambda cursor: None)

    def all(self, conn: Connection, **params: Any) -> list[tuple[Any, ...]]:
        """Every row, as the driver's tuples (no JSON decoding: for plain columns)."""
        return self._execute(conn, [params], lambda cursor: list(cursor.fetchall()))

    def first(self, conn: Connection, **params: Any) -> dict[str, Any] | None:
        """The first row as a dict (column key to value), or None."""
        row = self._execute(conn, [params], lambda cursor: cursor.fetchone())
        if row is None:
            return None
        record = dict(zip(self._names, row, strict=True))
        for key in self._json:
            if isinstance(record[key], str):
                record[key] = _decode_json(record[key])
        return record
