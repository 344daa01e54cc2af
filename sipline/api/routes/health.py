"""/healthz: the process answers and its database does (an extension, outside SignalWire's paths)."""

from __future__ import annotations

import sqlalchemy as sa
from litestar import get
from litestar.di import NamedDependency
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from sipline.api.responses import Encoded, encoded
from sipline.runtime import Runtime
from sipline.store.prepared import Prepared

_PING = Prepared(sa.select(sa.literal_column("1")))
_OK = encoded({"status": "ok", "database": "ok"})
_DOWN = encoded({"status": "error", "database": "unreachable"})


def _ping(conn: Connection) -> None:
    _PING.all(conn)


@get("/healthz", tags=["sipline extensions"], summary="Liveness and database check")
async def healthz(runtime: NamedDependency[Runtime]) -> Encoded[dict[str, str]]:
    try:
        await runtime.db.read(_ping)
    except (SQLAlchemyError, OSError):
        return Encoded(_DOWN, status_code=503)
    return Encoded(_OK)
