"""A database that cannot serve (down, restarting, its pool exhausted) answers 503 with Retry-After,
in each API's shape, and leaves one log line, not a traceback; other database faults stay 500s."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.exc import IntegrityError

from sipline.api.app import create_app
from sipline.runtime import Runtime
from sipline.store.db import Database
from tests.conftest import Project

# Nothing listens on the discard port of the loopback: every connection is refused at once.
NOWHERE = "postgresql+asyncpg://sipline@127.0.0.1:9/sipline"


@pytest.fixture
async def down(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a node whose database is unreachable."""
    db = Database(NOWHERE)
    app = create_app(dataclasses.replace(runtime, db=db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client
    await db.dispose()


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.exc_info]


async def test_the_relay_rest_api_answers_503_with_retry_after(down, project: Project, caplog) -> None:
    auth = project.auth
    response = await down.get("/api/relay/rest/endpoints/sip", headers=auth)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"error": "Service Unavailable"}
    assert not _tracebacks(caplog)
    assert any("database unavailable" in record.getMessage() for record in caplog.records)


async def test_the_laml_api_answers_503_in_twilios_shape(down, project: Project, caplog) -> None:
    response = await down.get(f"/api/laml/2010-04-01/Accounts/{project.id}/Calls", headers=project.auth)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["status"] == 503
    assert response.json()["code"] == 20503
    assert not _tracebacks(caplog)


async def test_healthz_says_the_database_is_unreachable(down) -> None:
    response = await down.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}


async def test_a_database_fault_that_is_ours_stays_a_500(runtime: Runtime, project: Project, monkeypatch) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise IntegrityError("INSERT ...", {}, Exception("a constraint we did not expect"))

    monkeypatch.setattr(runtime.db, "write", broken)
    response = await project.request("PUT", "/sip_profile", json={"default_encryption": "required"})
    assert response.status_code == 500
