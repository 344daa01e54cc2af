"""POST /endpoints/sip: what is created, and every rule that refuses a body."""

from __future__ import annotations

import asyncio

import pytest

from sipline.domain.values import HANDLER_REQUIRES
from tests.conftest import Project, new_project

ALL_FIELDS = {
    "type", "id", "username", "caller_id", "send_as", "ciphers", "codecs", "encryption", "call_handler",
    "calling_handler_resource_id", "call_request_url", "call_request_method", "call_fallback_url",
    "call_fallback_method", "call_status_callback_url", "call_status_callback_method", "call_laml_application_id",
    "call_dialogflow_agent_id", "call_relay_topic", "call_relay_topic_status_callback_url", "call_relay_context",
    "call_relay_context_status_callback_url", "call_relay_application", "call_video_room_id", "call_flow_id",
    "call_flow_version", "call_ai_agent_id", "call_relay_script_url",
}  # fmt: skip


def attributes(response) -> list[str]:
    return [e.get("attribute") for e in response.json()["errors"]]


async def test_create_returns_201_with_every_field_and_never_the_password(project: Project) -> None:
    r = await project.request(
        "POST", "/endpoints/sip", json={"username": "c3p0", "password": "yavinOrBust", "caller_id": "C-3P0"}
    )
    assert r.status_code == 201
    body = r.json()
    assert set(body) == ALL_FIELDS
    assert body["type"] == "sip_endpoint"
    assert body["username"] == "c3p0"
    assert body["caller_id"] == "C-3P0"
    assert body["encryption"] == "default"
    assert "yavinOrBust" not in r.text
    got = await project.request("GET", f"/endpoints/sip/{body['id']}")
    assert got.status_code == 200 and got.json() == body


async def test_create_without_username_and_password_reports_both(project: Project) -> None:
    r = await project.request("POST", "/endpoints/sip", json={})
    assert r.status_code == 422
    assert sorted(attributes(r)) == ["password", "username"]
    item = r.json()["errors"][0]
    assert set(item) == {"detail", "status", "title", "code", "attribute"}
    assert item["status"] == "422"


@pytest.mark.parametrize(
    "username",
    ["", "has space", "tab\there", "alice@example.com", "x" * 65, "percent%41", "new\nline", "ünïcode", 42, None],
)
async def test_invalid_username_is_refused(project: Project, username: object) -> None:
    r = await project.request("POST", "/endpoints/sip", json={"username": username, "password": "long-enough"})
    assert r.status_code == 422
    assert attributes(r) == ["username"]


@pytest.mark.parametrize("username", ["alice", "a" * 64, "bob.smith-1_x", "+15551234567", "o'neil", "a!~*()&=+$,;?/"])
async def test_valid_sip_user_parts_are_accepted(project: Project, username: str) -> None:
    r = await project.request("POST", "/endpoints/sip", json={"username": username, "password": "long-enough"})
    assert r.status_code == 201, r.text
    assert r.json()["username"] == username


@pytest.mark.parametrize("password", ["sh0rt!", "x" * 129, "", 12345678])
async def test_password_outside_8_to_128_characters_is_refused_without_echoing_it(
    project: Project, password: object
) -> None:
    r = await project.request("POST", "/endpoints/sip", json={"username": "pw", "password": password})
    assert r.status_code == 422
    assert attributes(r) == ["password"]
    if isinstance(password, str) and password:
        assert password not in r.text


async def test_username_is_unique_within_a_project(project: Project) -> None:
    await project.create(username="dup")
    r = await project.request("POST", "/endpoints/sip", json={"username": "dup", "password": "long-enough"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["attribute"] == "username"
    assert "taken" in r.json()["errors"][0]["detail"]


async def test_same_username_is_allowed_in_another_project(project: Project, runtime, client) -> None:
    await project.create(username="shared-name")
    other = await new_project(runtime, client)
    await other.create(username="shared-name")


async def test_concurrent_creates_of_one_username_yield_one_201_and_one_422(project: Project) -> None:
    body = {"username": "racer", "password": "long-enough"}
    results = await asyncio.gather(*(project.request("POST", "/endpoints/sip", json=body) for _ in range(6)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 422, 422, 422, 422, 422]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("codecs", ["PCMU", "MP3"]),
        ("codecs", "PCMU"),
        ("codecs", [1]),
        ("ciphers", ["ROT13"]),
        ("encryption", "sometimes"),
        ("encryption", None),
        ("call_handler", "teleport"),
        ("call_request_method", "DELETE"),
        ("call_fallback_method", 1),
        ("call_request_url", "ftp://example.com/x"),
        ("call_request_url", "/relative/path"),
        ("call_status_callback_url", "http://"),
        ("call_relay_script_url", "https://exa mple.com"),
        ("call_video_room_id", "not-a-uuid"),
        ("call_flow_id", "1234"),
        ("call_ai_agent_id", 7),
        ("call_flow_version", "latest"),
        ("send_as", "5551234"),
        ("caller_id", "x" * 256),
        ("caller_id", ["list"]),
    ],
)
async def test_values_outside_their_rules_are_refused_by_name(project: Project, field: str, value: object) -> None:
    r = await project.request(
        "POST", "/endpoints/sip", json={"username": "rules", "password": "long-enough", field: value}
    )
    assert r.status_code == 422, r.text
    assert attributes(r) == [field]


async def test_methods_are_accepted_in_any_case_and_returned_upper_case(project: Project) -> None:
    ep = await project.create(call_request_method="post", call_fallback_method="Get")
    assert ep["call_request_method"] == "POST"
    assert ep["call_fallback_method"] == "GET"


async def test_codec_and_cipher_lists_keep_order_and_drop_duplicates(project: Project) -> None:
    ep = await project.create(codecs=["PCMA", "PCMU", "PCMA"], ciphers=["AES_CM_128_HMAC_SHA1_80"])
    assert ep["codecs"] == ["PCMA", "PCMU"]
    assert ep["ciphers"] == ["AES_CM_128_HMAC_SHA1_80"]


@pytest.mark.parametrize(("handler", "needed"), [(h, f) for h, f in HANDLER_REQUIRES.items() if f])
async def test_each_call_handler_requires_its_target(project: Project, handler: str, needed: str) -> None:
    r = await project.request(
        "POST", "/endpoints/sip", json={"username": "h", "password": "long-enough", "call_handler": handler}
    )
    assert r.status_code == 422
    assert attributes(r) == [needed]
    value = "https://example.com/x" if needed.endswith("_url") else "0b7c4a5e-3f0e-4c55-9d8e-2b8f6f8f2a11"
    ok = await project.create(call_handler=handler, **{needed: value})
    assert ok["call_handler"] == handler and ok[needed] == value


async def test_relay_connector_needs_no_target(project: Project) -> None:
    ep = await project.create(call_handler="relay_connector")
    assert ep["call_handler"] == "relay_connector"


async def test_calling_handler_resource_id_names_the_handlers_resource(project: Project) -> None:
    room = "5b0a3f5c-8a3e-4b8e-9d2a-0c1f2e3d4a5b"
    ep = await project.create(call_handler="video_room", call_video_room_id=room)
    assert ep["calling_handler_resource_id"] == room


async def test_unknown_fields_are_refused_by_name(project: Project) -> None:
    r = await project.request(
        "POST", "/endpoints/sip", json={"username": "u", "password": "long-enough", "colour": "red", "codec": ["PCMU"]}
    )
    assert r.status_code == 422
    assert sorted(attributes(r)) == ["codec", "colour"]


async def test_read_only_fields_sent_back_are_ignored(project: Project) -> None:
    ep = await project.create(id="00000000-0000-0000-0000-000000000000", type="whatever")
    assert ep["id"] != "00000000-0000-0000-0000-000000000000"
    assert ep["type"] == "sip_endpoint"


async def test_every_problem_of_a_request_is_reported_at_once(project: Project) -> None:
    r = await project.request(
        "POST",
        "/endpoints/sip",
        json={"username": "a b", "password": "short", "codecs": ["MP3"], "encryption": "x", "bogus": 1},
    )
    assert r.status_code == 422
    assert sorted(attributes(r)) == ["bogus", "codecs", "encryption", "password", "username"]


async def test_form_encoded_bodies_with_rails_arrays_are_accepted(project: Project) -> None:
    r = await project.request(
        "POST",
        "/endpoints/sip",
        content=b"username=formy&password=long-enough&codecs[]=PCMU&codecs[]=PCMA&caller_id=Form+Y",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["codecs"] == ["PCMU", "PCMA"]
    assert r.json()["caller_id"] == "Form Y"


async def test_curl_style_json_sent_as_form_is_read_as_json(project: Project) -> None:
    r = await project.request(
        "POST",
        "/endpoints/sip",
        content=b'{"username": "curly", "password": "long-enough"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 201


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"string"', "application/json", 400),
        (b"\xff\xfe\x00garbage", "application/json", 400),
        (b"username=a&username=b", "application/x-www-form-urlencoded", 400),
        (b"<xml/>", "application/xml", 415),
        (b"x" * (64 * 1024 + 1), "application/json", 413),
    ],
)
async def test_malformed_bodies_get_4xx_in_the_errors_envelope(
    project: Project, content: bytes, content_type: str, status: int
) -> None:
    r = await project.request("POST", "/endpoints/sip", content=content, headers={"Content-Type": content_type})
    assert r.status_code == status
    assert r.json()["errors"][0]["status"] == str(status)
