"""GET, DELETE and the list: ownership, 404s, filters and pagination."""

from __future__ import annotations

import pytest

from tests.conftest import Project, new_project

MISSING = "6f1c1b0e-8d4a-4a8e-9e43-2f1f3a1b2c3d"


@pytest.mark.parametrize("bad_id", [MISSING, "not-a-uuid", "1", "%00", "6f1c1b0e-8d4a-4a8e-9e43-2f1f3a1b2c3dX"])
async def test_unknown_or_malformed_ids_are_404(project: Project, bad_id: str) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        r = await project.request(method, f"/endpoints/sip/{bad_id}", json={})
        assert r.status_code == 404, (method, r.text)
        assert r.json() == {"error": "Not Found"}


async def test_another_projects_endpoint_looks_exactly_like_a_missing_one(project: Project, runtime, client) -> None:
    other = await new_project(runtime, client)
    theirs = await other.create()
    for method in ("GET", "PUT", "DELETE"):
        r = await project.request(method, f"/endpoints/sip/{theirs['id']}", json={"caller_id": "hijack"})
        missing = await project.request(method, f"/endpoints/sip/{MISSING}", json={"caller_id": "hijack"})
        assert (r.status_code, r.json()) == (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
    assert (await other.request("GET", f"/endpoints/sip/{theirs['id']}")).json() == theirs


async def test_delete_answers_204_with_an_empty_body_then_404(project: Project) -> None:
    ep = await project.create()
    r = await project.request("DELETE", f"/endpoints/sip/{ep['id']}")
    assert r.status_code == 204 and r.content == b""
    assert (await project.request("GET", f"/endpoints/sip/{ep['id']}")).status_code == 404
    assert (await project.request("DELETE", f"/endpoints/sip/{ep['id']}")).status_code == 404


async def test_list_shows_only_this_projects_endpoints(project: Project, runtime, client) -> None:
    mine = await project.create()
    other = await new_project(runtime, client)
    await other.create()
    r = await project.request("GET", "/endpoints/sip")
    assert r.status_code == 200
    assert [e["id"] for e in r.json()["data"]] == [mine["id"]]
    assert set(r.json()["links"]) == {"self", "first"}


async def test_filters_are_partial_and_case_insensitive(project: Project) -> None:
    await project.create(username="Alice.Smith", caller_id="Front Desk")
    await project.create(username="bob", caller_id="Back Office")
    await project.create(username="malice", caller_id=None)

    async def names(**params: str) -> list[str]:
        r = await project.request("GET", "/endpoints/sip", params=params)
        return sorted(e["username"] for e in r.json()["data"])

    assert await names(filter_username="ALICE") == ["Alice.Smith", "malice"]
    assert await names(filter_caller_id="desk") == ["Alice.Smith"]
    assert await names(filter_username="lic", filter_caller_id="front") == ["Alice.Smith"]
    assert await names(filter_username="%") == []
    assert await names(filter_username="_") == []


@pytest.mark.parametrize("params", [{"page_size": "0"}, {"page_size": "1001"}, {"page_size": "ten"}])
async def test_page_size_outside_1_to_1000_is_422(project: Project, params: dict) -> None:
    r = await project.request("GET", "/endpoints/sip", params=params)
    assert r.status_code == 422
    assert r.json()["errors"][0]["attribute"] == "page_size"


@pytest.mark.parametrize(
    "params", [{"page_token": "garbage!"}, {"page_token": "e30"}, {"page_number": "2"}, {"page_token": ""}]
)
async def test_bad_page_tokens_are_422_never_500(project: Project, params: dict) -> None:
    r = await project.request("GET", "/endpoints/sip", params=params)
    assert r.status_code in (200, 422)
    if params.get("page_token") or params.get("page_number"):
        assert r.status_code == 422


async def test_following_next_visits_every_row_once_while_rows_come_and_go(project: Project) -> None:
    created = [(await project.create(username=f"page-{i:03d}"))["id"] for i in range(23)]
    seen: list[str] = []
    url = "/api/relay/rest/endpoints/sip?page_size=5"
    page = 0
    deleted: set[str] = set()
    added: list[str] = []
    while url:
        r = await project.client.get(url, headers=project.auth)
        assert r.status_code == 200
        body = r.json()
        seen += [e["id"] for e in body["data"]]
        if page == 1:  # churn between pages: delete rows already seen and not yet seen, add new ones
            for victim in (created[0], created[20]):
                await project.request("DELETE", f"/endpoints/sip/{victim}")
                deleted.add(victim)
            added.append((await project.create(username="page-new"))["id"])
        if page > 0:
            assert "prev" in body["links"]
        url = body["links"].get("next")
        page += 1
        assert page < 20
    assert len(seen) == len(set(seen)), "a row was listed twice"
    expected = (set(created) - {created[20]}) | set(added)
    assert set(seen) == expected


async def test_prev_link_goes_back_to_the_previous_page(project: Project) -> None:
    for i in range(6):
        await project.create(username=f"prev-{i}")
    first = (await project.request("GET", "/endpoints/sip", params={"page_size": 2})).json()
    second = (await project.client.get(first["links"]["next"], headers=project.auth)).json()
    back = (await project.client.get(second["links"]["prev"], headers=project.auth)).json()
    assert [e["id"] for e in back["data"]] == [e["id"] for e in first["data"]]
    assert "page_number=1" in second["links"]["self"]


async def test_filters_follow_renames_and_deletions(project: Project) -> None:
    ep = await project.create(username="oldname-xyz", caller_id="Old Caller")
    await project.request("PUT", f"/endpoints/sip/{ep['id']}", json={"username": "newname-xyz", "caller_id": "New"})

    async def count(**params: str) -> int:
        return len((await project.request("GET", "/endpoints/sip", params=params)).json()["data"])

    assert await count(filter_username="oldname") == 0
    assert await count(filter_username="NEWNAME") == 1
    assert await count(filter_caller_id="old caller") == 0
    await project.request("DELETE", f"/endpoints/sip/{ep['id']}")
    assert await count(filter_username="newname") == 0


@pytest.mark.parametrize("needle", ['a"b', '"""', "x' OR 1=1 --", "NEAR(a b)", "*", "user:name", "\\%_"])
async def test_filters_with_query_syntax_characters_match_literally(project: Project, needle: str) -> None:
    await project.create(username="plain-user", caller_id=f"has {needle} inside")
    r = await project.request("GET", "/endpoints/sip", params={"filter_caller_id": needle})
    assert r.status_code == 200
    assert [e["username"] for e in r.json()["data"]] == ["plain-user"]


@pytest.mark.parametrize("needle", ["\x00", "a\x00b", "\x01\x1f", "\ufffd"])
async def test_filters_with_control_characters_find_nothing_and_never_fail(project: Project, needle: str) -> None:
    await project.create(username="ctl-user", caller_id="Caller")
    for field in ("filter_username", "filter_caller_id"):
        r = await project.request("GET", "/endpoints/sip", params={field: needle})
        assert r.status_code == 200
        assert r.json()["data"] == []


@pytest.mark.parametrize("position", [2**63, 10**30, -1])
async def test_page_tokens_with_out_of_range_positions_are_422(project: Project, position: int) -> None:
    import base64
    import json

    token = base64.urlsafe_b64encode(json.dumps({"after": position}).encode()).decode().rstrip("=")
    r = await project.request("GET", "/endpoints/sip", params={"page_token": token, "page_number": "1"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["attribute"] == "page_token"
