"""Property-based: any query the list of calls may get, on an account that has calls.

The schemathesis test drives every route, but it cannot know a project id, so on the Calls routes
it meets only 404s. Here the account is real and holds calls: whatever the filters and paging
parameters, the answer is a page or a 400 in Twilio's shape, and a next page is always there.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from sipline.api import models
from sipline.api.app import create_app
from sipline.config import Settings
from sipline.domain.calls import CALL_STATUSES
from sipline.runtime import Runtime
from sipline.serve import prepare
from sipline.store import calls, projects, tokens
from tests.call_records import call_record

DATA_DIR = Path(tempfile.mkdtemp(prefix="sipline-calls-fuzz-"))  # never inside the working tree
DAY = 86400.0
START = 1_795_910_400.0  # 2026-11-29T00:00:00Z


def _setup() -> tuple[Runtime, str, dict[str, str], list[str]]:
    settings_ = Settings(data_dir=DATA_DIR, secret_key="fuzz")

    async def seed() -> tuple[str, dict[str, str], list[str]]:
        rt = Runtime.from_settings(settings_)
        await prepare(rt)
        project = await rt.db.write(projects.create, "calls fuzz")
        token, _ = await rt.db.write(tokens.create, project["id"], ["voice"])
        parent = call_record(project["id"], status="completed", start_time=START, end_time=START + 60)
        rows = [parent]
        for i in range(40):
            status = CALL_STATUSES[i % len(CALL_STATUSES)]
            ended = START + i * DAY / 4 + 30 if status in ("completed", "busy", "failed", "no-answer") else None
            rows.append(
                call_record(
                    project["id"],
                    parent_call_sid=parent["sid"] if i % 3 == 0 else None,
                    direction="outbound" if i % 3 == 0 else "inbound",
                    to_address=f"sip:user{i % 4}@fuzz.sip.localhost",
                    status=status,
                    start_time=START + i * DAY / 4,
                    answered_time=START + i * DAY / 4 + 2 if status in ("in-progress", "completed") else None,
                    end_time=ended,
                )
            )
        await rt.db.write(lambda conn: [calls.create(conn, row) for row in rows])
        await rt.db.dispose()
        auth = base64.b64encode(f"{project['id']}:{token}".encode()).decode()
        return project["id"], {"Authorization": f"Basic {auth}"}, [parent["sid"], rows[1]["to_address"]]

    project_id, headers, samples = asyncio.run(seed())
    # A runtime with no open connections: the app opens them on the test client's own loop.
    return Runtime.from_settings(settings_), project_id, headers, samples


RUNTIME, PROJECT_ID, AUTH, (PARENT_SID, SOME_TO) = _setup()
PATH = f"/api/laml/2010-04-01/Accounts/{PROJECT_ID}/Calls"

_dates = st.sampled_from(["2026-11-29", "2026-12-01", "2026-11-29T12:00:00Z", "Sun, 29 Nov 2026 05:44:06 +0000"])
_numbers = st.integers(min_value=-2, max_value=2**64).map(str)
_texts = st.text(max_size=24)
PARAMS = {
    "To": st.one_of(st.just(SOME_TO), _texts),
    "From": _texts,
    "ParentCallSid": st.one_of(st.just(PARENT_SID), _texts),
    "Status": st.one_of(st.sampled_from(CALL_STATUSES), _texts),
    "StartTime": st.one_of(_dates, _texts),
    "StartTime<": st.one_of(_dates, _texts),
    "StartTime>": st.one_of(_dates, _texts),
    "EndTime": st.one_of(_dates, _texts),
    "EndTime<": st.one_of(_dates, _texts),
    "EndTime>": st.one_of(_dates, _texts),
    "Page": st.one_of(st.just("0"), _numbers),
    "PageSize": st.one_of(st.sampled_from(["1", "3", "50"]), _numbers),
    "PageToken": st.one_of(st.sampled_from(["PAeyJhZnRlciI6MTB9", "PBeyJiZWZvcmUiOjEwfQ"]), _texts),
}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(RUNTIME)) as c:
        yield c
    shutil.rmtree(DATA_DIR, ignore_errors=True)


@given(
    params=st.fixed_dictionaries({}, optional=PARAMS),  # type: ignore[arg-type]
    suffix=st.sampled_from(["", ".json"]),
)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_query_gets_a_page_or_a_400_in_twilios_shape(client: TestClient, params: dict, suffix: str) -> None:
    r = client.get(PATH + suffix, params=params, headers=AUTH)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        error = msgspec.convert(r.json(), models.LamlError)
        assert (error.code, error.status) == (20001, 400)
        return
    page = msgspec.convert(r.json(), models.CallList)
    assert len(page.calls) <= page.page_size
    for uri in (page.next_page_uri, page.previous_page_uri, page.first_page_uri, page.uri):
        if uri is not None:
            assert client.get(uri, headers=AUTH).status_code == 200, uri
