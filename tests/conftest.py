"""Shared fixtures: a database per backend (SQLite always; PostgreSQL when configured), an app, clients.

PostgreSQL runs when SIPLINE_TEST_DATABASE_URL is set (each session gets a fresh database created
next to the one named there). With SIPLINE_REQUIRE_POSTGRES=1 (as .ci/run sets) a missing or
unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis.configuration import set_hypothesis_home_dir
from sqlalchemy.engine import make_url

from sipline.api.app import create_app
from sipline.config import Settings
from sipline.runtime import Runtime
from sipline.serve import prepare
from sipline.store import projects, tokens
from tests.postgres import create_database, drop_database

# Hypothesis keeps no example database: tests leave nothing in the working tree. Its other caches
# (the constants it collects from the code under test, Unicode tables) go to the temp directory.
hypothesis_settings.register_profile("sipline", database=None)
hypothesis_settings.load_profile("sipline")
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "sipline-hypothesis")

PG_URL = os.environ.get("SIPLINE_TEST_DATABASE_URL")
REQUIRE_PG = os.environ.get("SIPLINE_REQUIRE_POSTGRES") == "1"


def basic(project_id: str, token: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{project_id}:{token}".encode()).decode()}


async def _create_pg_database(url: str) -> str:
    return await create_database(url, "sipline_test")


async def _drop_pg_database(url: str) -> None:
    await drop_database(url, make_url(PG_URL).database)


async def until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait on an event, not for a time: check `condition` (a function, or one returning an
    awaitable) every millisecond until it holds; fail the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = condition()
        if outcome if isinstance(outcome, bool) else await outcome:
            return
        assert loop.time() < deadline, "timed out waiting"
        await asyncio.sleep(0.001)


def require_postgres() -> str:
    """The configured PostgreSQL URL; skips the test without one (fails it under SIPLINE_REQUIRE_POSTGRES=1)."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("SIPLINE_REQUIRE_POSTGRES=1 but SIPLINE_TEST_DATABASE_URL is not set")
        pytest.skip("PostgreSQL tests need SIPLINE_TEST_DATABASE_URL")
    return PG_URL


def backends() -> list[object]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=backends())
async def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'sipline.db'}"
        return
    try:
        url = await _create_pg_database(require_postgres())
    except OSError as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at {PG_URL} unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    yield url
    await _drop_pg_database(url)


@pytest.fixture(scope="session")
async def runtime(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    data_dir: Path = tmp_path_factory.mktemp("data")
    rt = Runtime.from_settings(Settings(data_dir=data_dir, database_url=database_url, secret_key="test-secret"))
    await prepare(rt)
    yield rt
    await rt.db.dispose()


@pytest.fixture(scope="session")
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    # ASGITransport runs the app on the test's own event loop, which asyncpg connections require.
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


class Project:
    """A fresh project with a voice token: each test works in its own, so tests never collide."""

    def __init__(self, client: httpx.AsyncClient, project: dict, token: str) -> None:
        self.client = client
        self.id = project["id"]
        self.domain_identifier = project["domain_identifier"]
        self.token = token
        self.auth = basic(self.id, token)

    async def request(self, method: str, path: str, **kwargs):
        headers = {**self.auth, **kwargs.pop("headers", {})}
        return await self.client.request(method, "/api/relay/rest" + path, headers=headers, **kwargs)

    async def create(self, **fields):
        body = {"username": f"u{uuid.uuid4().hex[:10]}", "password": "s3cret-pass", **fields}
        response = await self.request("POST", "/endpoints/sip", json=body)
        assert response.status_code == 201, response.text
        return response.json()


async def new_project(runtime: Runtime, client: httpx.AsyncClient, scopes: list[str] | None = None) -> Project:
    project = await runtime.db.write(projects.create, f"test {uuid.uuid4().hex[:6]}")
    token, _ = await runtime.db.write(tokens.create, project["id"], scopes or ["voice"])
    return Project(client, project, token)


@pytest.fixture
async def project(runtime: Runtime, client: httpx.AsyncClient) -> Project:
    return await new_project(runtime, client)
