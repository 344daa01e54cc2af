"""PUT/PATCH /endpoints/sip/{id}: the seed's partial update, validated on the merged record."""

from __future__ import annotations

import asyncio

import pytest

from sipline.domain.values import DEFAULT_CODECS
from tests.conftest import Project


@pytest.fixture(params=["PUT", "PATCH"])
def method(request: pytest.FixtureRequest) -> str:
    return request.param


async def test_update_changes_only_the_fields_sent_and_answers_201(project: Project, method: str) -> None:
    ep = await project.create(caller_id="Before", codecs=["PCMU"], call_relay_topic="office")
    r = await project.request(method, f"/endpoints/sip/{ep['id']}", json={"caller_id": "After"})
    assert r.status_code == 201
    assert r.json() == {**ep, "caller_id": "After"}
    assert (await project.request("GET", f"/endpoints/sip/{ep['id']}")).json() == r.json()


async def test_an_empty_body_changes_nothing(project: Project) -> None:
    ep = await project.create(caller_id="Same")
    r = await project.request("PUT", f"/endpoints/sip/{ep['id']}", content=b"")
    assert r.status_code == 201 and r.json() == ep


async def test_empty_codecs_reverts_to_profile_default_and_follows_later_profile_changes(project: Project) -> None:
    ep = await project.create(codecs=["PCMU"], ciphers=["AES_CM_128_HMAC_SHA1_80"])
    r = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"codecs": [], "ciphers": []})
    assert r.json()["codecs"] == DEFAULT_CODECS
    profile = (await project.request("GET", "/sip_profile")).json()
    assert r.json()["ciphers"] == profile["default_ciphers"]

    await project.request(
        "PUT", "/sip_profile", json={"default_codecs": ["G722", "OPUS"], "default_ciphers": ["AEAD_AES_256_GCM_8"]}
    )
    now = (await project.request("GET", f"/endpoints/sip/{ep['id']}")).json()
    assert now["codecs"] == ["G722", "OPUS"]
    assert now["ciphers"] == ["AEAD_AES_256_GCM_8"]


async def test_own_codecs_do_not_follow_profile_changes(project: Project) -> None:
    ep = await project.create(codecs=["PCMA"])
    await project.request("PUT", "/sip_profile", json={"default_codecs": ["OPUS"]})
    assert (await project.request("GET", f"/endpoints/sip/{ep['id']}")).json()["codecs"] == ["PCMA"]


async def test_unset_send_as_follows_the_profile_default(project: Project) -> None:
    ep = await project.create()
    assert ep["send_as"] is None
    await project.request("PUT", "/sip_profile", json={"default_send_as": "+15551234567"})
    assert (await project.request("GET", f"/endpoints/sip/{ep['id']}")).json()["send_as"] == "+15551234567"
    mine = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"send_as": "+15557654321"})
    assert mine.json()["send_as"] == "+15557654321"
    back = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"send_as": None})
    assert back.json()["send_as"] == "+15551234567"


async def test_encryption_default_can_be_set_back_after_an_own_value(project: Project) -> None:
    ep = await project.create(encryption="required")
    assert ep["encryption"] == "required"
    r = await project.request("PATCH", f"/endpoints/sip/{ep['id']}", json={"encryption": "default"})
    assert r.json()["encryption"] == "default"


async def test_handler_change_is_validated_on_the_merged_record(project: Project) -> None:
    ep = await project.create()
    refused = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"call_handler": "laml_webhooks"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["attribute"] == "call_request_url"
    await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"call_request_url": "https://example.com/laml"})
    ok = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"call_handler": "laml_webhooks"})
    assert ok.status_code == 201
    assert ok.json()["call_handler"] == "laml_webhooks"
    cleared = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"call_request_url": None})
    assert cleared.status_code == 422


async def test_a_refused_update_changes_nothing(project: Project) -> None:
    ep = await project.create(caller_id="Keep")
    r = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"caller_id": "New", "codecs": ["MP3"]})
    assert r.status_code == 422
    assert (await project.request("GET", f"/endpoints/sip/{ep['id']}")).json() == ep


async def test_renaming_to_a_taken_username_is_refused(project: Project) -> None:
    await project.create(username="taken-name")
    ep = await project.create()
    r = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"username": "taken-name"})
    assert r.status_code == 422 and r.json()["errors"][0]["attribute"] == "username"
    same = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"username": ep["username"]})
    assert same.status_code == 201


async def test_password_is_write_only(project: Project) -> None:
    ep = await project.create()
    r = await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"password": "brand-new-secret"})
    assert r.status_code == 201
    assert "password" not in r.json() and "brand-new-secret" not in r.text
    listing = await project.request("GET", "/endpoints/sip")
    assert "brand-new-secret" not in listing.text and "s3cret-pass" not in listing.text


async def test_concurrent_updates_of_different_fields_both_persist(project: Project) -> None:
    for _ in range(5):
        ep = await project.create()
        a, b = await asyncio.gather(
            project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"caller_id": "From A"}),
            project.request("PATCH", f"/endpoints/sip/{ep['id']}", json={"codecs": ["PCMA"]}),
        )
        assert a.status_code == b.status_code == 201
        final = (await project.request("GET", f"/endpoints/sip/{ep['id']}")).json()
        assert final["caller_id"] == "From A" and final["codecs"] == ["PCMA"]


async def test_update_of_a_missing_endpoint_is_404(project: Project) -> None:
    r = await project.request("PUT", "/endpoints/sip/6f1c1b0e-8d4a-4a8e-9e43-2f1f3a1b2c3d", json={"caller_id": "x"})
    assert r.status_code == 404 and r.json() == {"error": "Not Found"}
