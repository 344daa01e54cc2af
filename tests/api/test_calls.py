"""The LaML Calls resource: listing, filters, paging, ownership, Twilio's error shapes."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sipline.runtime import Runtime
from sipline.store import calls
from tests.call_records import add_call, call_record
from tests.conftest import Project, basic, new_project

LAML = "/api/laml/2010-04-01"
RFC2822 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000"
)


def at(text: str) -> float:
    """Epoch seconds of an ISO 8601 UTC timestamp."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def calls_path(project: Project, suffix: str = "") -> str:
    return f"{LAML}/Accounts/{project.id}/Calls{suffix}"


async def laml(project: Project, suffix: str = "", **params: Any) -> httpx.Response:
    return await project.client.get(calls_path(project, suffix), headers=project.auth, params=params)


async def listed(project: Project, **params: Any) -> list[str]:
    r = await laml(project, **params)
    assert r.status_code == 200, r.text
    return [c["sid"] for c in r.json()["calls"]]


def twilio_error(r: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body == {
        "code": code,
        "message": body["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    assert body["message"]
    return body


async def test_a_project_lists_its_own_calls_newest_first(project: Project, runtime: Runtime, client) -> None:
    mine = [await add_call(runtime, project.id) for _ in range(3)]
    other = await new_project(runtime, client)
    await add_call(runtime, other.id)
    r = await laml(project)
    assert r.status_code == 200
    body = r.json()
    assert [c["sid"] for c in body["calls"]] == [c["sid"] for c in reversed(mine)]
    base = calls_path(project)
    assert {k: v for k, v in body.items() if k != "calls"} == {
        "uri": f"{base}?Page=0&PageSize=50",
        "first_page_uri": f"{base}?Page=0&PageSize=50",
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
        "page_size": 50,
        "start": 0,
        "end": 2,
    }


async def test_an_empty_list_is_a_page_like_any_other(project: Project) -> None:
    body = (await laml(project)).json()
    assert body["calls"] == [] and body["next_page_uri"] is None and (body["start"], body["end"]) == (0, 0)


async def test_a_call_shows_every_field_twilio_and_signalwire_show(project: Project, runtime: Runtime) -> None:
    parent = await add_call(runtime, project.id, status="in-progress")
    start = at("2026-11-29T05:44:06")
    leg = await add_call(
        runtime,
        project.id,
        parent_call_sid=parent["sid"],
        direction="outbound",
        from_address="sip:alice@acme.sip.localhost",
        to_address="sip:bob@acme.sip.localhost",
        caller_name="Front Desk",
        status="completed",
        start_time=start,
        answered_time=start + 4.5,
        end_time=start + 65,
        sip_result_code=200,
        date_created=start,
        date_updated=start + 65,
    )
    r = await laml(project, f"/{leg['sid']}")
    assert r.status_code == 200
    assert r.json() == {
        "sid": leg["sid"],
        "account_sid": project.id,
        "date_created": "Sun, 29 Nov 2026 05:44:06 +0000",
        "date_updated": "Sun, 29 Nov 2026 05:45:11 +0000",
        "parent_call_sid": parent["sid"],
        "to": "sip:bob@acme.sip.localhost",
        "formatted_to": "sip:bob@acme.sip.localhost",
        "from": "sip:alice@acme.sip.localhost",
        "formatted_from": "sip:alice@acme.sip.localhost",
        "phone_number_sid": None,
        "status": "completed",
        "start_time": "Sun, 29 Nov 2026 05:44:06 +0000",
        "end_time": "Sun, 29 Nov 2026 05:45:11 +0000",
        "duration": "60",
        "price": None,
        "price_unit": "USD",
        "direction": "outbound",
        "answered_by": None,
        "api_version": "2010-04-01",
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": "Front Desk",
        "uri": f"{calls_path(project)}/{leg['sid']}.json",
        "subresource_uris": {},
        "sip_result_code": 200,
    }
    # The uri a call gives is one that answers with that call.
    again = await project.client.get(r.json()["uri"], headers=project.auth)
    assert again.json() == r.json()


async def test_dates_are_rfc_2822_in_utc_and_null_until_known(project: Project, runtime: Runtime) -> None:
    row = await add_call(runtime, project.id, status="ringing")
    shown = (await laml(project, f"/{row['sid']}")).json()
    for field in ("date_created", "date_updated", "start_time"):
        assert RFC2822.fullmatch(shown[field]), shown[field]
    assert shown["end_time"] is None


@pytest.mark.parametrize(
    ("columns", "duration"),
    [
        ({"status": "ringing"}, None),
        ({"status": "in-progress", "answered_time": 1000.0}, None),  # going on: not yet known
        ({"status": "busy", "end_time": 1010.0, "sip_result_code": 486}, "0"),  # ended, never answered
        ({"status": "no-answer", "end_time": 1030.0}, "0"),
        ({"status": "completed", "answered_time": 1002.0, "end_time": 1064.99}, "62"),  # whole seconds
    ],
)
async def test_duration_follows_twilios_rules(project: Project, runtime: Runtime, columns: dict, duration: str) -> None:
    row = await add_call(runtime, project.id, start_time=1000.0, **columns)
    shown = (await laml(project, f"/{row['sid']}")).json()
    assert shown["duration"] == duration


async def test_json_suffixed_and_bare_paths_answer_the_same(project: Project, runtime: Runtime) -> None:
    rows = [await add_call(runtime, project.id) for _ in range(3)]
    bare = await laml(project, PageSize=2)
    suffixed = await laml(project, ".json", PageSize=2)
    assert bare.status_code == suffixed.status_code == 200
    assert bare.json() == suffixed.json()
    one = await laml(project, f"/{rows[0]['sid']}")
    one_json = await laml(project, f"/{rows[0]['sid']}.json")
    assert one.status_code == one_json.status_code == 200
    assert one.json() == one_json.json()


@pytest.mark.parametrize(
    ("param", "column", "value"),
    [
        ("To", "to_address", "sip:carol@acme.sip.localhost"),
        ("From", "from_address", "sip:dave@acme.sip.localhost"),
        ("Status", "status", "no-answer"),
    ],
)
async def test_to_from_and_status_filters_match_exactly(
    project: Project, runtime: Runtime, param: str, column: str, value: str
) -> None:
    match = await add_call(runtime, project.id, **{column: value})
    await add_call(runtime, project.id)
    if column != "status":  # a vocabulary: anything else is a 400
        await add_call(runtime, project.id, **{column: value + "x"})  # a longer value is another value
        await add_call(runtime, project.id, **{column: value.upper()})  # as is another case
        assert await listed(project, **{param: value[:-1]}) == []
    assert await listed(project, **{param: value}) == [match["sid"]]


async def test_parent_call_sid_lists_the_legs_a_call_placed(project: Project, runtime: Runtime) -> None:
    parent = await add_call(runtime, project.id, status="in-progress")
    legs = [await add_call(runtime, project.id, parent_call_sid=parent["sid"], direction="outbound") for _ in range(2)]
    await add_call(runtime, project.id)
    assert await listed(project, ParentCallSid=parent["sid"]) == [legs[1]["sid"], legs[0]["sid"]]
    assert await listed(project, ParentCallSid="CA" + "f" * 32) == []


async def test_an_empty_filter_is_no_filter(project: Project, runtime: Runtime) -> None:
    rows = [await add_call(runtime, project.id) for _ in range(2)]
    params = {"To": "", "From": "", "ParentCallSid": "", "StartTime": "", "EndTime<": ""}
    assert await listed(project, **params) == [rows[1]["sid"], rows[0]["sid"]]


async def test_start_time_is_a_utc_day_or_on_or_before_or_on_or_after_it(project: Project, runtime: Runtime) -> None:
    days = {}
    for day in ("2026-11-27", "2026-11-28", "2026-11-29"):
        # The first and the last second of each day: the day's bounds are its own.
        first = await add_call(runtime, project.id, start_time=at(f"{day}T00:00:00"))
        last = await add_call(runtime, project.id, start_time=at(f"{day}T23:59:59.9"))
        days[day] = {first["sid"], last["sid"]}
    assert set(await listed(project, StartTime="2026-11-28")) == days["2026-11-28"]
    assert set(await listed(project, **{"StartTime<": "2026-11-28"})) == days["2026-11-27"] | days["2026-11-28"]
    assert set(await listed(project, **{"StartTime>": "2026-11-28"})) == days["2026-11-28"] | days["2026-11-29"]
    both = {"StartTime>": "2026-11-28", "StartTime<": "2026-11-28"}
    assert set(await listed(project, **both)) == days["2026-11-28"]
    # What Twilio's SDKs send for a date: its UTC day.
    assert set(await listed(project, StartTime="2026-11-29T00:00:00Z")) == days["2026-11-29"]


async def test_end_time_filters_leave_out_calls_still_going_on(project: Project, runtime: Runtime) -> None:
    ended = await add_call(runtime, project.id, status="completed", end_time=at("2026-11-28T12:00:00"))
    await add_call(runtime, project.id, status="in-progress", start_time=at("2026-11-28T11:00:00"))
    assert await listed(project, EndTime="2026-11-28") == [ended["sid"]]
    assert await listed(project, **{"EndTime>": "2026-01-01"}) == [ended["sid"]]
    assert await listed(project, **{"EndTime<": "2026-11-27"}) == []


@pytest.mark.parametrize("param", ["StartTime", "StartTime<", "StartTime>", "EndTime", "EndTime<", "EndTime>"])
@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-02-30", "29/11/2026", "\x00"])
async def test_a_malformed_date_is_400_with_code_20001(project: Project, param: str, value: str) -> None:
    body = twilio_error(await laml(project, **{param: value}), 400, 20001)
    assert param in body["message"] and "YYYY-MM-DD" in body["message"]


async def test_following_next_page_uri_visits_every_call_once_while_calls_are_made(
    project: Project, runtime: Runtime
) -> None:
    rows = [call_record(project.id) for _ in range(60)]

    def create_all(conn) -> None:
        for row in rows:
            calls.create(conn, row)

    await runtime.db.write(create_all)
    existing = [r["sid"] for r in reversed(rows)]
    made: list[str] = []

    async def make_call() -> None:
        made.append((await add_call(runtime, project.id))["sid"])

    seen: list[str] = []
    url: str | None = calls_path(project) + "?PageSize=7"
    pages = 0
    while url:
        # New calls are made while each page after the first is read (a call made while the first
        # page is read may or may not be on it: it is the newest either way).
        makers = [make_call(), make_call()] if pages else []
        r, *_ = await asyncio.gather(project.client.get(url, headers=project.auth), *makers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["page"], body["page_size"]) == (pages, 7)
        assert (body["start"], body["end"]) == (pages * 7, pages * 7 + len(body["calls"]) - 1)
        assert (body["previous_page_uri"] is None) == (pages == 0)
        seen += [c["sid"] for c in body["calls"]]
        url = body["next_page_uri"]
        pages += 1
        assert pages < 20
    assert seen == existing  # each once, newest first; the calls made meanwhile are newer than all of them
    assert pages == 9
    assert set(made).isdisjoint(seen)


async def test_previous_page_uri_goes_back_a_page(project: Project, runtime: Runtime) -> None:
    for _ in range(7):
        await add_call(runtime, project.id)
    first = (await laml(project, PageSize=3)).json()
    second = (await project.client.get(first["next_page_uri"], headers=project.auth)).json()
    third = (await project.client.get(second["next_page_uri"], headers=project.auth)).json()
    assert [len(p["calls"]) for p in (first, second, third)] == [3, 3, 1]
    back = (await project.client.get(third["previous_page_uri"], headers=project.auth)).json()
    assert back["calls"] == second["calls"] and back["page"] == 1
    back = (await project.client.get(back["previous_page_uri"], headers=project.auth)).json()
    assert back["calls"] == first["calls"] and back["page"] == 0 and back["previous_page_uri"] is None


async def test_page_uris_keep_the_filters(project: Project, runtime: Runtime) -> None:
    for _ in range(3):
        await add_call(runtime, project.id, status="completed", end_time=at("2026-11-28T12:00:00"))
    await add_call(runtime, project.id, status="ringing")
    params = {"Status": "completed", "EndTime<": "2026-11-28", "PageSize": 2}
    first = (await laml(project, **params)).json()
    assert "Status=completed" in first["next_page_uri"] and "EndTime%3C=2026-11-28" in first["next_page_uri"]
    second = (await project.client.get(first["next_page_uri"], headers=project.auth)).json()
    assert [c["status"] for c in first["calls"] + second["calls"]] == ["completed"] * 3
    assert second["next_page_uri"] is None


def _token(prefix: str, cursor: dict) -> str:
    return prefix + base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "params",
    [
        {"Page": "1"},  # past the first page, a position is needed
        {"PageToken": "garbage!"},
        {"PageToken": "PA"},
        {"PageToken": _token("PB", {"after": 5})},  # a PB token goes back: it holds a `before`
        {"PageToken": _token("PA", {"before": 5})},
        {"PageToken": _token("XX", {"after": 5})},
        {"PageToken": _token("PA", {"after": 2**63})},
        {"PageSize": "0"},
        {"PageSize": "1001"},
        {"PageSize": "ten"},
        {"Page": "-1"},
        {"Status": "answered"},
    ],
)
async def test_malformed_paging_and_status_are_400_with_code_20001(project: Project, params: dict) -> None:
    twilio_error(await laml(project, **params), 400, 20001)


async def test_validation_messages_name_the_parameters_as_sent(project: Project) -> None:
    assert "PageSize" in twilio_error(await laml(project, PageSize="0"), 400, 20001)["message"]


async def test_another_projects_call_is_404_like_a_call_that_never_was(
    project: Project, runtime: Runtime, client
) -> None:
    other = await new_project(runtime, client)
    theirs = await add_call(runtime, other.id)
    for sid in (theirs["sid"], "CA" + "0" * 32, "CAnot-a-sid", "%00", theirs["sid"] + "x", theirs["sid"].upper()):
        body = twilio_error(await laml(project, f"/{sid}"), 404, 20404)
        assert body["message"].startswith("The requested resource /api/laml/2010-04-01/Accounts/")
    assert (await laml(other, f"/{theirs['sid']}")).status_code == 200


async def test_an_account_sid_other_than_the_callers_project_is_404(project: Project, runtime: Runtime, client) -> None:
    other = await new_project(runtime, client)
    row = await add_call(runtime, other.id)
    for account in (other.id, str(uuid.uuid4()), "not-a-uuid", "AC" + "0" * 32):
        for path in (f"/Accounts/{account}/Calls", f"/Accounts/{account}/Calls/{row['sid']}"):
            twilio_error(await client.get(LAML + path, headers=project.auth), 404, 20404)
    # The project id in another spelling is the same account.
    r = await client.get(f"{LAML}/Accounts/{project.id.upper()}/Calls", headers=project.auth)
    assert r.status_code == 200


@pytest.mark.parametrize("auth", ["wrong-token", "no-header", "not-basic"])
async def test_bad_credentials_are_401_in_twilios_shape(project: Project, client, auth: str) -> None:
    headers = {
        "wrong-token": basic(project.id, project.token + "x"),
        "no-header": {},
        "not-basic": {"Authorization": "Bearer abc"},
    }[auth]
    r = await client.get(calls_path(project), headers=headers)
    body = twilio_error(r, 401, 20003)
    assert body["message"] == "Authentication failed"
    assert r.headers["www-authenticate"].startswith("Basic")


async def test_a_token_without_the_voice_scope_is_403_in_twilios_shape(runtime: Runtime, client) -> None:
    project = await new_project(runtime, client, scopes=["messaging"])
    assert "voice" in twilio_error(await laml(project), 403, 20403)["message"]


async def test_the_resource_is_read_only_and_unknown_laml_paths_are_404(project: Project, client) -> None:
    r = await client.post(calls_path(project), headers=project.auth, data={"To": "sip:x@y"})
    twilio_error(r, 405, 20004)
    twilio_error(await client.get(f"{LAML}/Accounts/{project.id}/Queues", headers=project.auth), 404, 20404)


async def test_the_relay_rest_routes_keep_signalwires_shapes(project: Project, client) -> None:
    assert (await client.get("/api/relay/rest/endpoints/sip")).json() == {"error": "Unauthorized"}
    assert (await client.get("/nope")).json() == {"error": "Not Found"}


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "\ufffd", "%ff"])
async def test_filters_with_odd_characters_find_nothing_and_never_fail(
    project: Project, runtime: Runtime, value: str
) -> None:
    await add_call(runtime, project.id)
    for param in ("To", "From", "ParentCallSid"):
        assert await listed(project, **{param: value}) == []


async def test_records_closed_after_a_crash_show_as_failed(project: Project, runtime: Runtime) -> None:
    answered = await add_call(runtime, project.id, status="in-progress", start_time=1000.0, answered_time=1005.0)
    ringing = await add_call(runtime, project.id, status="ringing", start_time=1000.0)
    await runtime.db.write(calls.close_unfinished, 1065.0, "sipline stopped during the call")
    shown = {c["sid"]: c for c in (await laml(project)).json()["calls"]}
    assert shown[answered["sid"]]["status"] == shown[ringing["sid"]]["status"] == "failed"
    assert (shown[answered["sid"]]["duration"], shown[ringing["sid"]]["duration"]) == ("60", "0")
    assert shown[answered["sid"]]["end_time"] == "Thu, 01 Jan 1970 00:17:45 +0000"
    assert await listed(project, Status="failed") == [ringing["sid"], answered["sid"]]


async def test_the_openapi_document_describes_the_calls_routes(client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    for path in ("/Calls", "/Calls.json", "/Calls/{CallSid}"):
        operation = doc["paths"][f"{LAML}/Accounts/{{AccountSid}}{path}"]["get"]
        assert operation["tags"] == ["LaML Calls"]
        assert set(operation["responses"]) >= {"200", "401", "404"}
    listing = doc["paths"][f"{LAML}/Accounts/{{AccountSid}}/Calls"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names >= {"To", "From", "ParentCallSid", "Status", "StartTime", "StartTime<", "StartTime>", "EndTime"}
    assert names >= {"EndTime<", "EndTime>", "Page", "PageSize", "PageToken"}
    assert "from" in doc["components"]["schemas"]["Call"]["properties"]
