"""Passwords are sealed at rest and the digest HA1 columns follow username, password and domain."""

from __future__ import annotations

import sqlalchemy as sa

from sipline.sip.digest import compute_ha1
from sipline.store.schema import sip_endpoints
from tests.conftest import Project


async def _row(runtime, endpoint_id: str) -> sa.Row:
    query = sa.select(sip_endpoints).where(sip_endpoints.c.id == endpoint_id)
    return await runtime.db.read(lambda conn: conn.execute(query).one())


async def _realm(project: Project) -> str:
    return (await project.request("GET", "/sip_profile")).json()["domain"]


async def test_password_is_stored_encrypted_not_in_plain_text(project: Project, runtime) -> None:
    ep = await project.create(username="sealed", password="plain-text-secret")
    row = await _row(runtime, ep["id"])
    assert "plain-text-secret" not in row.password_sealed
    assert runtime.credentials._box.open(row.password_sealed) == "plain-text-secret"


async def test_ha1_values_match_the_projects_realm(project: Project, runtime) -> None:
    ep = await project.create(username="ha1user", password="first-password")
    row = await _row(runtime, ep["id"])
    realm = await _realm(project)
    assert row.ha1_md5 == compute_ha1("ha1user", realm, "first-password", "MD5")
    assert row.ha1_sha256 == compute_ha1("ha1user", realm, "first-password", "SHA-256")


async def test_ha1_follows_a_password_change(project: Project, runtime) -> None:
    ep = await project.create(username="pwchange", password="first-password")
    await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"password": "second-password"})
    row = await _row(runtime, ep["id"])
    assert row.ha1_md5 == compute_ha1("pwchange", await _realm(project), "second-password", "MD5")


async def test_ha1_follows_a_username_change(project: Project, runtime) -> None:
    ep = await project.create(username="before", password="same-password")
    await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"username": "after"})
    row = await _row(runtime, ep["id"])
    assert row.ha1_sha256 == compute_ha1("after", await _realm(project), "same-password", "SHA-256")


async def test_ha1_follows_a_domain_identifier_change(project: Project, runtime) -> None:
    ep = await project.create(username="mover", password="same-password")
    new_ident = f"moved-{project.id[:8]}"
    r = await project.request("PUT", "/sip_profile", json={"domain_identifier": new_ident})
    assert r.status_code == 201
    row = await _row(runtime, ep["id"])
    assert row.ha1_md5 == compute_ha1("mover", f"{new_ident}.sip.localhost", "same-password", "MD5")
