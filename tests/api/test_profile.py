"""GET/PUT /sip_profile: the SIP domain and the defaults endpoints follow."""

from __future__ import annotations

import pytest

from tests.conftest import Project, new_project


async def test_profile_shows_domain_and_defaults(project: Project) -> None:
    r = await project.request("GET", "/sip_profile")
    assert r.status_code == 200
    body = r.json()
    assert body["domain"] == f"{project.domain_identifier}.sip.localhost"
    assert set(body) == {
        "domain", "domain_identifier", "default_codecs", "default_ciphers", "default_encryption", "default_send_as"
    }  # fmt: skip
    assert body["default_encryption"] == "optional"


async def test_put_changes_only_fields_sent_and_answers_201(project: Project) -> None:
    before = (await project.request("GET", "/sip_profile")).json()
    r = await project.request("PUT", "/sip_profile", json={"default_encryption": "required"})
    assert r.status_code == 201
    assert r.json() == {**before, "default_encryption": "required"}


async def test_new_domain_identifier_changes_the_domain(project: Project) -> None:
    ident = f"new-{project.id[:8]}"
    r = await project.request("PUT", "/sip_profile", json={"domain_identifier": ident})
    assert r.status_code == 201
    assert r.json()["domain"] == f"{ident}.sip.localhost"


async def test_domain_identifier_is_unique_across_the_installation(project: Project, runtime, client) -> None:
    other = await new_project(runtime, client)
    r = await project.request("PUT", "/sip_profile", json={"domain_identifier": other.domain_identifier})
    assert r.status_code == 422
    assert r.json()["errors"][0]["attribute"] == "domain_identifier"


async def test_domain_is_read_only_and_ignored(project: Project) -> None:
    before = (await project.request("GET", "/sip_profile")).json()
    r = await project.request("PUT", "/sip_profile", json={"domain": "evil.example.com"})
    assert r.status_code == 201 and r.json() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("domain_identifier", "Upper"),
        ("domain_identifier", "-dash"),
        ("domain_identifier", "a.b"),
        ("domain_identifier", ""),
        ("default_codecs", []),
        ("default_codecs", ["MP3"]),
        ("default_ciphers", "AES"),
        ("default_encryption", "default"),
        ("default_send_as", "not a number"),
        ("unknown", 1),
    ],
)
async def test_invalid_profile_values_are_422(project: Project, field: str, value: object) -> None:
    r = await project.request("PUT", "/sip_profile", json={field: value})
    assert r.status_code == 422
    assert r.json()["errors"][0]["attribute"] == field


async def test_empty_default_send_as_means_random_choice(project: Project) -> None:
    await project.request("PUT", "/sip_profile", json={"default_send_as": "+15551234567"})
    r = await project.request("PUT", "/sip_profile", json={"default_send_as": ""})
    assert r.json()["default_send_as"] is None
