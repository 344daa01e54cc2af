"""Basic auth with project_id:token, scopes, and the headers every response carries."""

from __future__ import annotations

import base64

import pytest

from sipline.store import tokens
from tests.conftest import Project, basic, new_project


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer abc",
        "Basic",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"not-a-uuid:token").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
    ],
)
async def test_missing_or_malformed_credentials_are_401_with_basic_challenge(client, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = await client.get("/api/relay/rest/endpoints/sip", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": "Unauthorized"}
    assert r.headers["www-authenticate"].startswith("Basic")


async def test_wrong_token_is_401(project: Project, client) -> None:
    r = await client.get("/api/relay/rest/endpoints/sip", headers=basic(project.id, project.token + "x"))
    assert r.status_code == 401


async def test_a_token_only_works_for_its_own_project(project: Project, runtime, client) -> None:
    other = await new_project(runtime, client)
    r = await client.get("/api/relay/rest/endpoints/sip", headers=basic(other.id, project.token))
    assert r.status_code == 401


async def test_token_without_voice_scope_is_403(runtime, client) -> None:
    project = await new_project(runtime, client, scopes=["messaging"])
    r = await project.request("GET", "/endpoints/sip")
    assert r.status_code == 403
    assert "voice" in r.json()["errors"][0]["detail"]


async def test_revoked_token_is_401(project: Project, runtime) -> None:
    assert (await project.request("GET", "/sip_profile")).status_code == 200
    assert await runtime.db.write(tokens.revoke, project.token)
    assert (await project.request("GET", "/sip_profile")).status_code == 401


async def test_tokens_are_stored_only_as_hashes(project: Project, runtime) -> None:
    import sqlalchemy as sa

    stored = await runtime.db.read(
        lambda conn: conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    )
    assert project.token not in stored
    assert all(len(h) == 64 for h in stored)


async def test_every_response_carries_a_request_id(project: Project, client) -> None:
    ok = await project.request("GET", "/endpoints/sip")
    denied = await client.get("/api/relay/rest/endpoints/sip")
    missing = await client.get("/no/such/path")
    for r in (ok, denied, missing):
        assert len(r.headers["x-request-id"]) >= 16
    echoed = await project.request("GET", "/sip_profile", headers={"X-Request-Id": "trace-123"})
    assert echoed.headers["x-request-id"] == "trace-123"


async def test_unknown_paths_are_404_and_wrong_methods_405(project: Project, client) -> None:
    assert (await client.get("/nope")).json() == {"error": "Not Found"}
    r = await project.request("POST", "/sip_profile", json={})
    assert r.status_code == 405


async def test_healthz_reports_the_database(client) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["database"] == "ok"


async def test_openapi_document_describes_signalwire_paths_and_bodies(client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    paths = doc["paths"]
    assert {"get", "post"} <= set(paths["/api/relay/rest/endpoints/sip"])
    assert {"get", "put", "patch", "delete"} <= set(paths["/api/relay/rest/endpoints/sip/{id}"])
    create_body = paths["/api/relay/rest/endpoints/sip"]["post"]["requestBody"]["content"]["application/json"]
    assert set(create_body["schema"]["required"]) == {"username", "password"}
    assert (await client.get("/schema")).status_code == 200


# Verified tokens are cached per process (sipline.store.tokens.VerifiedTokens): these pin when a
# cached verdict must be dropped.


async def _elsewhere(runtime, statement: str, **params: str) -> None:
    """Run SQL as another process or node would: on connections of another Database."""
    import sqlalchemy as sa

    from sipline.store.db import Database

    other = Database(runtime.settings.resolved_database_url)
    try:
        await other.write(lambda conn: conn.execute(sa.text(statement), params))
    finally:
        await other.dispose()


async def _refused_within_the_bound(project: Project, runtime) -> None:
    import asyncio

    if not runtime.db.is_sqlite:  # no commit marker there: a verdict lives VERIFIED_TTL at most
        await asyncio.sleep(tokens.VERIFIED_TTL + 0.1)
    assert (await project.request("GET", "/sip_profile")).status_code == 401


async def test_a_known_token_is_looked_up_once(project: Project, monkeypatch) -> None:
    monkeypatch.setattr(tokens, "_revoked_at", -1e9)  # no revocation just before (another test's)
    calls = []
    find = tokens.find
    monkeypatch.setattr(tokens, "find", lambda conn, token: calls.append(token) or find(conn, token))
    for _ in range(3):
        assert (await project.request("GET", "/sip_profile")).status_code == 200
    assert len(calls) <= 1


async def test_a_token_revoked_elsewhere_is_refused_at_once_on_sqlite_and_within_the_bound_otherwise(
    project: Project, runtime
) -> None:
    from sipline.secrets import hash_token

    assert (await project.request("GET", "/sip_profile")).status_code == 200
    await _elsewhere(runtime, "UPDATE api_tokens SET revoked_at = 1 WHERE token_hash = :h", h=hash_token(project.token))
    await _refused_within_the_bound(project, runtime)


async def test_the_token_of_a_project_deleted_elsewhere_is_refused(project: Project, runtime) -> None:
    assert (await project.request("GET", "/sip_profile")).status_code == 200
    # What deleting a project does to its tokens (ON DELETE CASCADE; SQLite connections opened
    # elsewhere may lack foreign_keys=ON, hence both statements).
    await _elsewhere(runtime, "DELETE FROM api_tokens WHERE project_id = :p", p=project.id)
    await _elsewhere(runtime, "DELETE FROM projects WHERE id = :p", p=project.id)
    await _refused_within_the_bound(project, runtime)


async def test_a_token_revoked_in_this_process_is_refused_at_once_by_every_app(project: Project, runtime) -> None:
    import httpx

    from sipline.api.app import create_app

    other_app = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://testserver")
    async with other_app:
        for client in (project.client, other_app):
            r = await client.get("/api/relay/rest/sip_profile", headers=project.auth)
            assert r.status_code == 200
        assert await runtime.db.write(tokens.revoke, project.token)
        for client in (project.client, other_app):
            r = await client.get("/api/relay/rest/sip_profile", headers=project.auth)
            assert r.status_code == 401
