"""GET /metrics: Prometheus metrics, in the text format (an extension, outside SignalWire's paths).

Open like /healthz unless SIPLINE_METRICS_TOKEN is set; then only `Authorization: Bearer <token>`
gets them (operators often let only their scraper read them).
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from sqlalchemy.exc import SQLAlchemyError

from sipline import metrics
from sipline.runtime import Runtime
from sipline.store import bindings


def _allowed(header: str | None, token: str) -> bool:
    if not header or header[:7].lower() != "bearer ":
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


@get(
    "/metrics",
    tags=["sipline extensions"],
    summary="Prometheus metrics (text format)",
    description="Bearer token required when SIPLINE_METRICS_TOKEN is set; open otherwise.",
    media_type=metrics.MEDIA_TYPE,
)
async def scrape(request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Response[Any]:
    token = runtime.settings.metrics_token
    if token and not _allowed(request.headers.get("authorization"), token):
        body = {"error": "Unauthorized"}
        return Response(body, status_code=401, headers={"WWW-Authenticate": "Bearer"}, media_type=MediaType.JSON)
    try:
        live = await runtime.db.read(bindings.count_live, time.time())
    except (SQLAlchemyError, OSError):
        live = None  # the rest is still worth scraping; the missing series says the database did not answer
    return Response(metrics.render(live), media_type=metrics.MEDIA_TYPE)
