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


def test_registrations_are_served_by_an_api_only_node(served: Sipline) -> None:
    with served.api() as api:
        endpoint = served.create_endpoint(api, username="api-only", password="pw-12345678")
        assert served.registrations(api, endpoint["id"]) == []


def test_a_node_with_another_secret_key_refuses_to_start_with_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "keyed"
    with Sipline(data_dir, args=["--no-sip"], env={"SIPLINE_SECRET_KEY": "the-first-key"}) as first, first.api() as api:
        first.create_endpoint(api, username="alice", password="pw-12345678")
    result = cli("serve", "--no-sip", "--http-port", "0", data_dir=data_dir, env={"SIPLINE_SECRET_KEY": "another-key"})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "SIPLINE_SECRET_KEY" in lines[0], result.stderr
    assert "the-first-key" not in result.stderr and "another-key" not in result.stderr
    # The CLI refuses too, and the right key still works.
    assert cli("projects", "list", data_dir=data_dir, env={"SIPLINE_SECRET_KEY": "another-key"}).returncode == 1
    assert cli("projects", "list", data_dir=data_dir, env={"SIPLINE_SECRET_KEY": "the-first-key"}).returncode == 0


def test_a_database_from_before_fingerprints_is_checked_by_opening_a_password(tmp_path: Path) -> None:
    import sqlite3

    data_dir = tmp_path / "old"
    with Sipline(data_dir, args=["--no-sip"], env={"SIPLINE_SECRET_KEY": "old-key"}) as node, node.api() as api:
        node.create_endpoint(api, username="alice", password="pw-12345678")
    with sqlite3.connect(data_dir / "sipline.db") as db:
        db.execute("DELETE FROM sipline_meta")  # as a database made before the fingerprint existed
    refused = cli("projects", "list", data_dir=data_dir, env={"SIPLINE_SECRET_KEY": "new-key"})
    assert refused.returncode == 1 and "cannot open the passwords" in refused.stderr
    assert cli("projects", "list", data_dir=data_dir, env={"SIPLINE_SECRET_KEY": "old-key"}).returncode == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SIPLINE_SIP_DOMAIN", "not a host!"),
        ("SIPLINE_SIP_DIGEST_ALGORITHMS", "SHA-1"),
        ("SIPLINE_SIP_TRUSTED_NETWORKS", "10.0.0.0/33"),
        ("SIPLINE_LOG_LEVEL", "loud"),
    ],
)
def test_a_bad_setting_exits_with_one_line_naming_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    result = cli("serve", "--no-sip", "--http-port", "0", data_dir=tmp_path, env={variable: value})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and variable in lines[0], result.stderr


def test_version_and_token_listing_without_the_tokens(served: Sipline) -> None:
    import sipline

    version = cli("--version", data_dir=served.data_dir)
    assert version.returncode == 0 and version.stdout.strip() == f"sipline {sipline.__version__}"
    listed = cli("tokens", "list", "--project", str(served.project_id), "--json", data_dir=served.data_dir)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert rows and all(set(r) == {"id", "scopes", "created", "revoked"} for r in rows)
    assert served.token not in listed.stdout
    missing = cli("tokens", "list", "--project", "no-such-project", data_dir=served.data_dir)
    assert missing.returncode == 2 and "no project" in missing.stderr


def test_every_request_is_logged_once_without_secrets_and_as_json_when_asked(tmp_path: Path) -> None:
    with Sipline(tmp_path / "json", args=["--no-sip", "--log-format", "json"]) as node:
        response = httpx.get(
            f"{node.http_url}/api/relay/rest/endpoints/sip?filter_username=x",
            auth=(node.project_id or "", node.token or ""),
            headers={"X-Request-Id": "req-123"},
        )
        assert response.status_code == 200
        httpx.get(f"{node.http_url}/no/such/route")
    log_lines = (node.data_dir / "stderr.log").read_text().splitlines()
    records = [json.loads(line) for line in log_lines if line.startswith("{")]
    assert len(records) == len(log_lines), log_lines  # every line is JSON
    http = [r for r in records if r["logger"] == "sipline.http"]
    [listed] = [r for r in http if r["path"] == "/api/relay/rest/endpoints/sip"]
    assert (listed["method"], listed["status"], listed["request_id"]) == ("GET", 200, "req-123")
    assert listed["duration_ms"] >= 0
    assert any(r["path"] == "/no/such/route" and r["status"] == 404 for r in http)
    text = "\n".join(log_lines)
    assert node.token not in text and "filter_username" not in text


def test_the_banner_says_once_each_what_is_in_effect(tmp_path: Path) -> None:
    with Sipline(tmp_path / "banner") as node:
        pass
    banner = [line for line in node.lines if line.startswith("sipline: ")]
    for start in (
        "sipline: database ",
        "sipline: SIP domain ",
        "sipline: SIP digest algorithms MD5",
        "sipline: SIP on ",
    ):
        assert sum(line.startswith(start) for line in banner) == 1, banner
    assert sum(line.startswith("sipline: HTTP API on ") for line in banner) == 1
    assert "SIP on" not in (node.data_dir / "stderr.log").read_text()  # not repeated in the log


def test_a_postgresql_password_is_masked_in_the_banner(tmp_path: Path) -> None:
    from tests.conftest import _create_pg_database, _drop_pg_database, require_postgres

    pg_url = require_postgres()
    url = asyncio.run(_create_pg_database(pg_url))
    try:
        # Trust auth ignores the password; the banner must not show it all the same.
        with_password = url.replace("postgres@", "postgres:hunter2-secret@")
        with Sipline(tmp_path / "pg", args=["--no-sip"], env={"SIPLINE_DATABASE_URL": with_password}) as node:
            pass
        assert any(line.startswith("sipline: database postgresql") for line in node.lines)
        assert "hunter2-secret" not in "".join(node.lines) + (node.data_dir / "stderr.log").read_text()
    finally:
        asyncio.run(_drop_pg_database(url))
