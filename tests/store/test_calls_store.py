"""Call records in the store: what the call engine writes, what the list reads, on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sipline.domain.calls import Span
from sipline.runtime import Runtime
from sipline.store import calls, projects
from tests.call_records import add_call, call_record


@pytest.fixture
async def project_id(runtime: Runtime) -> str:
    return (await runtime.db.write(projects.create, "calls store"))["id"]


async def test_a_created_record_reads_back_whole_in_its_own_project_only(runtime: Runtime, project_id: str) -> None:
    row = await add_call(runtime, project_id, caller_name="Alice", endpoint_id="6f1c1b0e-8d4a-4a8e-9e43-2f1f3a1b2c3d")
    stored = await runtime.db.read(calls.get, project_id, row["sid"])
    assert stored is not None
    assert {k: v for k, v in stored.items() if k != "seq"} == row
    other = (await runtime.db.write(projects.create, "someone else"))["id"]
    assert await runtime.db.read(calls.get, other, row["sid"]) is None


async def test_nullable_columns_may_be_left_out_and_dates_default_to_now(runtime: Runtime, project_id: str) -> None:
    required = ("sid", "project_id", "direction", "from_address", "to_address", "status", "start_time")
    row = {k: v for k, v in call_record(project_id).items() if k in required}
    await runtime.db.write(calls.create, row)
    stored = await runtime.db.read(calls.get, project_id, row["sid"])
    assert stored is not None and stored["end_time"] is None
    assert stored["date_created"] == stored["date_updated"] == pytest.approx(row["start_time"], abs=5)


async def test_a_sid_is_unique_and_unknown_columns_are_refused(runtime: Runtime, project_id: str) -> None:
    row = await add_call(runtime, project_id)
    with pytest.raises(IntegrityError):
        await runtime.db.write(calls.create, call_record(project_id, sid=row["sid"]))
    with pytest.raises(ValueError, match="call_status"):
        await runtime.db.write(calls.create, call_record(project_id, call_status="ringing"))


async def test_update_changes_the_columns_given_and_stamps_date_updated(runtime: Runtime, project_id: str) -> None:
    row = await add_call(runtime, project_id, date_created=1000.0, date_updated=1000.0)
    answered = row["start_time"] + 3
    await runtime.db.write(calls.update, row["sid"], {"status": "in-progress", "answered_time": answered})
    stored = await runtime.db.read(calls.get, project_id, row["sid"])
    assert stored is not None
    assert (stored["status"], stored["answered_time"], stored["date_created"]) == ("in-progress", answered, 1000.0)
    assert stored["date_updated"] > 1000.0
    assert stored["from_address"] == row["from_address"]  # untouched
    await runtime.db.write(
        calls.update, row["sid"], {"status": "completed", "end_time": 2000.0, "date_updated": 2000.0}
    )
    stored = await runtime.db.read(calls.get, project_id, row["sid"])
    assert stored is not None and (stored["status"], stored["date_updated"]) == ("completed", 2000.0)


async def test_records_created_and_updated_together_end_as_if_written_one_by_one(
    runtime: Runtime, project_id: str
) -> None:
    rows = [call_record(project_id, caller_name=f"caller {i}") for i in range(3)]
    await runtime.db.write(calls.create_many, rows)
    # Changes of different columns, and a record changed twice: its second change sets the same
    # column as the first record's change, which comes before its first: still applied last.
    changes = [
        (rows[0]["sid"], {"status": "completed"}),
        (rows[1]["sid"], {"status": "in-progress", "answered_time": 1500.0}),
        (rows[2]["sid"], {"status": "busy", "end_time": 2100.0}),
        (rows[1]["sid"], {"status": "completed"}),
    ]
    await runtime.db.write(calls.update_many, changes)
    stored = [await runtime.db.read(calls.get, project_id, row["sid"]) for row in rows]
    assert [(s["caller_name"], s["status"], s["answered_time"], s["end_time"]) for s in stored] == [
        ("caller 0", "completed", None, None),
        ("caller 1", "completed", 1500.0, None),
        ("caller 2", "busy", None, 2100.0),
    ]


@pytest.mark.parametrize("column", ["sid", "project_id", "parent_call_sid", "direction", "date_created", "seq", "nope"])
async def test_update_refuses_to_change_what_identifies_a_record(
    runtime: Runtime, project_id: str, column: str
) -> None:
    row = await add_call(runtime, project_id)
    with pytest.raises(ValueError, match=column):
        await runtime.db.write(calls.update, row["sid"], {column: "x"})


async def test_close_unfinished_fails_every_open_record_and_leaves_ended_ones(
    runtime: Runtime, project_id: str
) -> None:
    open_ = [await add_call(runtime, project_id, status=s) for s in ("queued", "ringing", "in-progress")]
    ended = [await add_call(runtime, project_id, status=s, end_time=5.0) for s in ("completed", "busy", "canceled")]
    other = (await runtime.db.write(projects.create, "another project"))["id"]
    theirs = await add_call(runtime, other, status="in-progress")
    closed = await runtime.db.write(calls.close_unfinished, 1234.5, "sipline restarted during the call")
    assert closed >= 4  # earlier tests' open records are closed as well
    for row in [*open_, theirs]:
        stored = await runtime.db.read(calls.get, row["project_id"], row["sid"])
        assert stored is not None
        assert (stored["status"], stored["end_time"], stored["date_updated"]) == ("failed", 1234.5, 1234.5)
        assert stored["error_message"] == "sipline restarted during the call"
    for row in ended:
        stored = await runtime.db.read(calls.get, project_id, row["sid"])
        assert stored is not None and (stored["status"], stored["end_time"]) == (row["status"], 5.0)
    assert await runtime.db.write(calls.close_unfinished, 1300.0, "again") == 0


async def page_sids(runtime: Runtime, query: calls.CallQuery) -> list[str]:
    return [r["sid"] for r in (await runtime.db.read(calls.page, query)).rows]


async def test_pages_run_newest_first_and_back(runtime: Runtime, project_id: str) -> None:
    rows = [await add_call(runtime, project_id) for _ in range(5)]
    newest_first = [r["sid"] for r in reversed(rows)]
    first = await runtime.db.read(calls.page, calls.CallQuery(project_id, size=2))
    assert [r["sid"] for r in first.rows] == newest_first[:2] and first.has_older and not first.has_newer
    second = await runtime.db.read(calls.page, calls.CallQuery(project_id, size=2, after=first.rows[-1]["seq"]))
    assert [r["sid"] for r in second.rows] == newest_first[2:4] and second.has_older and second.has_newer
    last = await runtime.db.read(calls.page, calls.CallQuery(project_id, size=2, after=second.rows[-1]["seq"]))
    assert [r["sid"] for r in last.rows] == newest_first[4:] and not last.has_older
    back = await runtime.db.read(calls.page, calls.CallQuery(project_id, size=2, before=second.rows[0]["seq"]))
    assert [r["sid"] for r in back.rows] == newest_first[:2] and not back.has_newer and back.has_older


async def test_addresses_match_whole_even_past_the_indexed_prefix(runtime: Runtime, project_id: str) -> None:
    # Longer than PostgreSQL's B-tree takes (~2.7 kB): the record is stored, and found by its full value.
    long_a = "sip:" + "a" * 10000 + "@acme.sip.localhost"
    long_b = "sip:" + "a" * 10000 + "@other.sip.localhost"  # same first 200 characters
    a = await add_call(runtime, project_id, to_address=long_a, from_address=long_b)
    b = await add_call(runtime, project_id, to_address=long_b, from_address=long_a)
    assert await page_sids(runtime, calls.CallQuery(project_id, 10, to_address=long_a)) == [a["sid"]]
    assert await page_sids(runtime, calls.CallQuery(project_id, 10, from_address=long_a)) == [b["sid"]]
    assert await page_sids(runtime, calls.CallQuery(project_id, 10, to_address=long_a[:200])) == []


@pytest.mark.parametrize(
    ("field", "index"),
    [
        ("to_address", "ix_calls_project_id_to_address"),
        ("from_address", "ix_calls_project_id_from_address"),
        ("parent_call_sid", "ix_calls_project_id_parent_call_sid_seq"),
        ("status", "ix_calls_status_project_id_seq"),
    ],
)
async def test_each_filter_is_served_by_its_index_on_sqlite(runtime: Runtime, field: str, index: str) -> None:
    if not runtime.db.is_sqlite:
        pytest.skip("PostgreSQL's planner chooses by statistics; SQLite's by the statement's shape")
    query = calls.CallQuery("6f1c1b0e-8d4a-4a8e-9e43-2f1f3a1b2c3d", 50, **{field: "ringing"}, after=10**6)

    def plan(conn: sa.Connection) -> str:
        compiled = calls._page_statement(query).compile(conn, compile_kwargs={"literal_binds": True})
        return " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))

    assert f"INDEX {index} " in await runtime.db.read(plan)


async def test_time_spans_are_half_open_and_open_calls_have_no_end(runtime: Runtime, project_id: str) -> None:
    early = await add_call(runtime, project_id, start_time=100.0, end_time=150.0, status="completed")
    late = await add_call(runtime, project_id, start_time=200.0, end_time=None, status="in-progress")

    async def sids(**spans: Span) -> set[str]:
        return set(await page_sids(runtime, calls.CallQuery(project_id, 10, **spans)))  # type: ignore[arg-type]

    assert await sids(start_time=Span(100.0, 200.0)) == {early["sid"]}
    assert await sids(start_time=Span(200.0, None)) == {late["sid"]}
    assert await sids(start_time=Span(None, 100.0)) == set()
    assert await sids(end_time=Span(None, None)) == {early["sid"], late["sid"]}  # no span: no filter
    assert await sids(end_time=Span(0.0, None)) == {early["sid"]}  # still going on: in no span


@pytest.mark.parametrize("field", ["to_address", "from_address", "parent_call_sid", "status"])
async def test_filters_holding_a_nul_find_nothing_and_never_fail(runtime: Runtime, project_id: str, field: str) -> None:
    await add_call(runtime, project_id)
    assert await page_sids(runtime, calls.CallQuery(project_id, 10, **{field: "a\x00b"})) == []


async def test_a_node_closes_only_the_records_it_was_running(runtime) -> None:
    project = await runtime.db.write(projects.create, "nodes")
    mine = call_record(project["id"], status="in-progress", node_id="10.0.0.1:5060")
    theirs = call_record(project["id"], status="ringing", node_id="10.0.0.2:5060")
    for row in (mine, theirs):
        await runtime.db.write(calls.create, row)
    assert await runtime.db.write(calls.close_unfinished, 99.0, "node restarted", "10.0.0.1:5060") == 1
    assert (await runtime.db.read(calls.get, project["id"], mine["sid"]))["status"] == "failed"
    assert (await runtime.db.read(calls.get, project["id"], theirs["sid"]))["status"] == "ringing"
