"""Property-based: schemathesis drives every operation of our own OpenAPI document.

Asserts what a user relies on whatever they send: never a 5xx, and every documented response
matches its schema. Runs on SQLite (schemathesis calls the app from its own event loop).
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from sipline.api.app import create_app
from sipline.config import Settings
from sipline.runtime import Runtime
from sipline.serve import prepare
from sipline.store import projects, tokens

DATA_DIR = Path(tempfile.mkdtemp(prefix="sipline-fuzz-"))  # never inside the working tree


def _setup() -> tuple[Runtime, dict[str, str]]:
    settings_ = Settings(data_dir=DATA_DIR, secret_key="fuzz")

    async def seed() -> dict[str, str]:
        rt = Runtime.from_settings(settings_)
        await prepare(rt)
        project = await rt.db.write(projects.create, "fuzz")
        token, _ = await rt.db.write(tokens.create, project["id"], ["voice"])
        await rt.db.dispose()
        auth = base64.b64encode(f"{project['id']}:{token}".encode()).decode()
        return {"Authorization": f"Basic {auth}"}

    headers = asyncio.run(seed())
    # A runtime with no open connections: the app opens them on schemathesis's own loop.
    return Runtime.from_settings(settings_), headers


RUNTIME, AUTH = _setup()
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(RUNTIME))


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_yields_a_server_error_or_an_off_schema_response(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=[not_a_server_error, response_schema_conformance])


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> None:
    yield
    import shutil

    shutil.rmtree(DATA_DIR, ignore_errors=True)
