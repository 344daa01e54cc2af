"""Call record rules: statuses, sids, duration, the JSON a client sees, what a date filter admits."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipline.api import models
from sipline.domain import calls
from sipline.domain.errors import ValidationFailed
from sipline.store import schema

EPOCH_2026_11_29 = datetime(2026, 11, 29, tzinfo=UTC).timestamp()
DAY = 86400.0


def record(**changes: Any) -> dict[str, Any]:
    base = {
        "seq": 1,
        "sid": "CA" + "0" * 32,
        "project_id": "6f1c1b0e-8d4a-4a8e-9e43-2f1f3a1b2c3d",
        "parent_call_sid": None,
        "direction": "inbound",
        "from_address": "sip:alice@acme.sip.localhost",
        "to_address": "sip:bob@acme.sip.localhost",
        "caller_name": "Alice",
        "status": "in-progress",
        "start_time": EPOCH_2026_11_29 + 3600,
        "answered_time": EPOCH_2026_11_29 + 3605,
        "end_time": None,
        "sip_call_id": "abc@host",
        "sip_result_code": None,
        "error_code": None,
        "error_message": None,
        "endpoint_id": None,
        "date_created": EPOCH_2026_11_29 + 3600,
        "date_updated": EPOCH_2026_11_29 + 3605,
    }
    return base | changes


def test_the_vocabulary_has_twilios_eight_statuses_and_five_are_final() -> None:
    assert calls.CALL_STATUSES == (
        "queued",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    )
    assert {"completed", "busy", "failed", "no-answer", "canceled"} == calls.FINAL_STATUSES
    assert calls.UNFINISHED_STATUSES == ("queued", "ringing", "in-progress")
    assert all(calls.is_final(s) for s in calls.FINAL_STATUSES)
    assert not any(calls.is_final(s) for s in calls.UNFINISHED_STATUSES)


def test_columns_are_wide_enough_for_every_status_direction_and_sid() -> None:
    columns = schema.calls.c
    assert max(map(len, calls.CALL_STATUSES)) <= columns.status.type.length  # type: ignore[attr-defined]
    assert max(map(len, calls.CALL_DIRECTIONS)) <= columns.direction.type.length  # type: ignore[attr-defined]
    assert len(calls.new_sid()) == columns.sid.type.length == columns.parent_call_sid.type.length  # type: ignore[attr-defined]


def test_new_sids_are_ca_and_32_lowercase_hex_digits_and_never_repeat() -> None:
    sids = {calls.new_sid() for _ in range(1000)}
    assert len(sids) == 1000
    for sid in sids:
        assert len(sid) == 34 and sid.startswith("CA")
        assert int(sid[2:], 16) >= 0 and sid[2:] == sid[2:].lower()
        assert calls.is_sid(sid)


@pytest.mark.parametrize(
    "raw", ["", "CA", "CA" + "0" * 31, "CA" + "0" * 33, "ca" + "0" * 32, "CA" + "G" * 32, "CA" + "A" * 32]
)
def test_strings_that_no_sid_could_be_are_recognised(raw: str) -> None:
    assert not calls.is_sid(raw)


@pytest.mark.parametrize(
    ("answered", "ended", "expected"),
    [
        (None, None, None),  # ringing: still going on
        (5.0, None, None),  # answered, talking
        (None, 30.0, "0"),  # busy, no-answer, canceled, failed: ended unanswered
        (5.0, 65.9, "60"),  # whole seconds, not rounded up
        (5.0, 5.2, "0"),
        (5.0, 4.0, "0"),  # clocks of two nodes a little apart: never negative
    ],
)
def test_duration_counts_whole_seconds_from_answer_to_end(
    answered: float | None, ended: float | None, expected: str | None
) -> None:
    assert calls.duration(record(answered_time=answered, end_time=ended)) == expected


def test_view_shapes_a_record_as_twilio_and_signalwire_show_calls() -> None:
    child = record(
        sid="CA" + "1" * 32,
        parent_call_sid="CA" + "0" * 32,
        direction="outbound",
        status="completed",
        end_time=EPOCH_2026_11_29 + 3700,
        sip_result_code=200,
    )
    shown = calls.view(child, "/api/laml/2010-04-01")
    assert shown == {
        "sid": "CA" + "1" * 32,
        "account_sid": child["project_id"],
        "date_created": "Sun, 29 Nov 2026 01:00:00 +0000",
        "date_updated": "Sun, 29 Nov 2026 01:00:05 +0000",
        "parent_call_sid": "CA" + "0" * 32,
        "to": "sip:bob@acme.sip.localhost",
        "formatted_to": "sip:bob@acme.sip.localhost",
        "from": "sip:alice@acme.sip.localhost",
        "formatted_from": "sip:alice@acme.sip.localhost",
        "phone_number_sid": None,
        "status": "completed",
        "start_time": "Sun, 29 Nov 2026 01:00:00 +0000",
        "end_time": "Sun, 29 Nov 2026 01:01:40 +0000",
        "duration": "95",
        "price": None,
        "price_unit": "USD",
        "direction": "outbound",
        "answered_by": None,
        "api_version": "2010-04-01",
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": "Alice",
        "uri": f"/api/laml/2010-04-01/Accounts/{child['project_id']}/Calls/CA{'1' * 32}.json",
        "subresource_uris": {},
        "sip_result_code": 200,
    }
    assert msgspec.convert(shown, models.Call).from_ == "sip:alice@acme.sip.localhost"  # the wire model takes it


def test_absent_dates_are_null_not_an_epoch() -> None:
    shown = calls.view(record(end_time=None), "/api/laml/2010-04-01")
    assert shown["end_time"] is None and shown["duration"] is None


def test_every_status_and_direction_round_trips_through_the_wire_model() -> None:
    for status in calls.CALL_STATUSES:
        for direction in calls.CALL_DIRECTIONS:
            shown = calls.view(record(status=status, direction=direction), "/x")
            assert msgspec.convert(shown, models.Call).status == status


@pytest.mark.parametrize(
    "raw",
    [
        "2026-11-29",
        "2026-11-29T00:00:00Z",  # what Twilio's SDKs send for a date or datetime
        "2026-11-29T23:59:59+00:00",
        "2026-11-30T01:00:00+02:00",  # 23:00 UTC the day before
        "Sun, 29 Nov 2026 05:44:06 +0000",  # RFC 2822, as SignalWire documents the filter
        "Sun, 29 Nov 2026 05:44:06 GMT",
    ],
)
def test_a_date_or_timestamp_names_its_utc_day(raw: str) -> None:
    assert calls.day_start(raw) == EPOCH_2026_11_29


@pytest.mark.parametrize(
    "raw", ["", "junk", "2026-13-01", "2026-02-30", "29/11/2026", "2026-11-29\x00", "Sun, 32 Nov 2026"]
)
def test_anything_else_is_not_a_date(raw: str) -> None:
    with pytest.raises(ValueError):
        calls.day_start(raw)


@given(st.text(max_size=40))
def test_day_start_raises_nothing_but_value_error(raw: str) -> None:
    with contextlib.suppress(ValueError):
        calls.day_start(raw)


def test_day_filters_are_that_day_on_or_before_it_and_on_or_after_it() -> None:
    d = "2026-11-29"
    assert calls.day_filter("StartTime", d, None, None) == calls.Span(EPOCH_2026_11_29, EPOCH_2026_11_29 + DAY)
    assert calls.day_filter("StartTime", None, d, None) == calls.Span(None, EPOCH_2026_11_29 + DAY)
    assert calls.day_filter("StartTime", None, None, d) == calls.Span(EPOCH_2026_11_29, None)
    assert calls.day_filter("StartTime", None, None, None) == calls.Span()
    assert calls.day_filter("StartTime", "", "", "") == calls.Span()  # empty values are absent


def test_day_filters_combine_to_the_days_all_of_them_admit() -> None:
    week = calls.day_filter("StartTime", None, "2026-12-05", "2026-11-29")
    assert week == calls.Span(EPOCH_2026_11_29, EPOCH_2026_11_29 + 7 * DAY)
    empty = calls.day_filter("StartTime", None, "2026-11-28", "2026-11-29")
    assert empty.since is not None and empty.until is not None and empty.since >= empty.until


def test_the_last_representable_day_does_not_overflow() -> None:
    span = calls.day_filter("EndTime", "9999-12-31", None, None)
    assert span.until is not None and span.since is not None and span.until - span.since == DAY


def test_every_malformed_date_filter_is_named() -> None:
    with pytest.raises(ValidationFailed) as caught:
        calls.day_filter("EndTime", "nope", "2026-11-29", "never")
    assert [p.attribute for p in caught.value.problems] == ["EndTime", "EndTime>"]
    assert "YYYY-MM-DD" in caught.value.problems[0].detail
