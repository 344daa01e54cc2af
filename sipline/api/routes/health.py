"""/healthz: the process answers and its database does (an extension, outside SignalWire's paths)."""

from __future__ import annotations

import sqlalchemy as sa
from litestar import Response, get
from litestar.di import NamedDependency
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from sipline.runtime import Runtime


def _ping(conn: Connection) -> None:
    conn.execute(sa.text("SELECT 1"))


@get("/healthz", tags=["sipline extensions"], summary="Liveness and database check")
async def healthz(runtime: NamedDependency[Runtime]) -> Response[dict[str, str]]:
    try:
        await runtime.db.read(_ping)
    except (SQLAlchemyError, OSError):
        return Response({"status": "error", "database": "unreachable"}, status_code=503)
    return Response({"status": "ok", "database": "ok"})
