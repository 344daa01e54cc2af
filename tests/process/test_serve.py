"""`sipline serve` and the CLI as a user runs them: real processes, real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.sipline_process import Sipline, cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sipline]:
    with Sipline(tmp_path_factory.mktemp("served"), args=["--no-sip"]) as process:
        yield process


def test_first_start_prints_a_project_a_token_and_a_working_curl_line(served: Sipline) -> None:
    assert served.project_id and served.token
    assert any(line.strip().startswith("try: curl -u ") for line in served.lines)
    r = httpx.get(f"{served.http_url}/api/relay/rest/endpoints/sip", auth=(served.project_id, served.token))
    assert r.status_code == 200 and r.json()["data"] == []


def test_pagination_across_2500_endpoints_visits_each_row_once(served: Sipline) -> None:
    auth = (served.project_id, served.token)

    async def create_all() -> set[str]:
        limits = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=served.http_url, auth=auth, timeout=30) as c:

            async def one(i: int) -> str:
                async with limits:
                    r = await c.post(
                        "/api/relay/rest/endpoints/sip", json={"username": f"bulk{i}", "password": "pw-12345678"}
                    )
                    assert r.status_code == 201, r.text
                    return r.json()["id"]

            return set(await asyncio.gather(*(one(i) for i in range(2500))))

    created = asyncio.run(create_all())
    seen: list[str] = []
    url: str | None = "/api/relay/rest/endpoints/sip?page_size=100"
    pages = 0
    with httpx.Client(base_url=served.http_url, auth=auth, timeout=30) as c:
        while url:
            body = c.get(url).json()
            seen += [e["id"] for e in body["data"] if e["username"].startswith("bulk")]
            url = body["links"].get("next")
            pages += 1
            assert pages <= 30
    assert len(seen) == 2500 and set(seen) == created


def test_a_second_start_keeps_the_project_and_prints_no_new_token(served: Sipline, tmp_path: Path) -> None:
    data_dir = tmp_path / "again"
    with Sipline(data_dir, args=["--no-sip"]) as first:
        pass
    with Sipline(data_dir, args=["--no-sip"]) as second:
        pass
    assert first.token and second.token is None
    listed = json.loads(cli("projects", "list", "--json", data_dir=data_dir).stdout)
    assert [p["id"] for p in listed] == [first.project_id]


def test_port_in_use_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = cli("serve", "--no-sip", "--http-port", str(port), data_dir=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(port) in lines[0]


def test_unreachable_database_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    result = cli(
        "serve", "--no-sip", "--database-url", "postgresql+asyncpg://nobody@127.0.0.1:1/none", data_dir=tmp_path
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "unreachable" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_creates_projects_and_tokens_that_the_api_accepts_and_revokes(served: Sipline) -> None:
    data_dir = served.data_dir
    made = cli("projects", "create", "--name", "Acme Corp", "--domain-identifier", "acme", "--json", data_dir=data_dir)
    assert made.returncode == 0, made.stderr
    project = json.loads(made.stdout)
    assert project["name"] == "Acme Corp" and project["domain"] == "acme.sip.localhost"
    assert project["id"] in {p["id"] for p in json.loads(cli("projects", "list", "--json", data_dir=data_dir).stdout)}

    dup = cli("projects", "create", "--name", "Other", "--domain-identifier", "acme", data_dir=data_dir)
    assert dup.returncode != 0 and "taken" in dup.stderr

    issued = cli(
        "tokens", "create", "--project", project["id"], "--scopes", "voice,messaging", "--json", data_dir=data_dir
    )
    token = json.loads(issued.stdout)
    assert token["scopes"] == ["voice", "messaging"]
    url = f"{served.http_url}/api/relay/rest/sip_profile"
    r = httpx.get(url, auth=(project["id"], token["token"]))
    assert r.status_code == 200 and r.json()["domain"] == "acme.sip.localhost"

    bad_scope = cli("tokens", "create", "--project", project["id"], "--scopes", "root", data_dir=data_dir)
    assert bad_scope.returncode != 0

    assert cli("tokens", "revoke", token["token"], data_dir=data_dir).returncode == 0
    assert httpx.get(url, auth=(project["id"], token["token"])).status_code == 401


def test_migrate_brings_an_empty_database_to_the_latest_schema_and_is_idempotent(tmp_path: Path) -> None:
    import sqlite3

    from alembic.script import ScriptDirectory

    from sipline.store.migrate import alembic_config

    for _ in range(2):
        result = cli("migrate", data_dir=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "latest schema" in result.stdout
    with sqlite3.connect(tmp_path / "sipline.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        version = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"projects", "api_tokens", "sip_endpoints", "sip_bindings", "sip_endpoints_search"} <= tables
    assert version == [(ScriptDirectory.from_config(alembic_config()).get_current_head(),)]
