"""Call records: the status vocabulary, sids, the LaML Calls resource's JSON, its date filters.

Each leg of a call is one record: the caller's leg is `inbound`, each leg sipline places is
`outbound` with `parent_call_sid` naming the caller's leg (reference/calls.md, "The Calls resource").
Records are written by the call engine through sipline.store.calls; this module holds the rules
that need no database: which statuses end a call, what a client sees, what a date filter means.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, get_args

from .errors import Problem, ValidationFailed
from .times import rfc2822

CallStatus = Literal["queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"]
CallDirection = Literal["inbound", "outbound"]

CALL_STATUSES: tuple[str, ...] = get_args(CallStatus)
CALL_DIRECTIONS: tuple[str, ...] = get_args(CallDirection)
# A call in one of these is over: it has an end_time and changes no more.
FINAL_STATUSES: frozenset[str] = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
UNFINISHED_STATUSES: tuple[str, ...] = tuple(s for s in CALL_STATUSES if s not in FINAL_STATUSES)

API_VERSION = "2010-04-01"
SID_PREFIX = "CA"
_SID = re.compile(r"CA[0-9a-f]{32}")


def is_final(status: str) -> bool:
    return status in FINAL_STATUSES


def new_sid() -> str:
    """`CA` and 32 lowercase hex digits, the shape of Twilio's call sids (34 characters)."""
    return SID_PREFIX + secrets.token_hex(16)


def is_sid(raw: str) -> bool:
    """Whether `raw` could be a sid this service issued; anything else is known not to exist."""
    return _SID.fullmatch(raw) is not None


def duration(record: Mapping[str, Any]) -> str | None:
    """Whole seconds from answer to end, as Twilio reports it: a string; "0" for a call that ended
    without being answered; None while the call goes on."""
    end = record["end_time"]
    if end is None:
        return None
    answered = record["answered_time"]
    if answered is None:
        return "0"
    return str(max(0, int(end - answered)))  # nodes' clocks may disagree by a little: never negative


def _date(epoch: float | None) -> str | None:
    return None if epoch is None else rfc2822(epoch)


def view(record: Mapping[str, Any], base_path: str) -> dict[str, Any]:
    """A stored call record as the Calls resource shows it. `base_path` is the LaML API's root
    (`/api/laml/2010-04-01`): the record's `uri` is built under it."""
    account = record["project_id"]
    return {
        "sid": record["sid"],
        "account_sid": account,
        "date_created": _date(record["date_created"]),
        "date_updated": _date(record["date_updated"]),
        "parent_call_sid": record["parent_call_sid"],
        "to": record["to_address"],
        "formatted_to": record["to_address"],
        "from": record["from_address"],
        "formatted_from": record["from_address"],
        "phone_number_sid": None,
        "status": record["status"],
        "start_time": _date(record["start_time"]),
        "end_time": _date(record["end_time"]),
        "duration": duration(record),
        "price": None,
        "price_unit": "USD",
        "direction": record["direction"],
        "answered_by": None,
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": record["caller_name"],
        "uri": f"{base_path}/Accounts/{account}/Calls/{record['sid']}.json",
        "subresource_uris": {},
        "sip_result_code": record["sip_result_code"],
    }


@dataclass(frozen=True)
class Span:
    """Instants from `since` (inclusive) to `until` (exclusive), epoch seconds; None is unbounded."""

    since: float | None = None
    until: float | None = None

    def narrowed(self, since: float | None = None, until: float | None = None) -> Span:
        """The part of this span that also lies in [since, until)."""
        if since is not None and self.since is not None:
            since = max(since, self.since)
        if until is not None and self.until is not None:
            until = min(until, self.until)
        return Span(self.since if since is None else since, self.until if until is None else until)


_DAY = 86400.0


def day_start(raw: str) -> float:
    """The start (epoch seconds) of the UTC day `raw` names. Twilio's form is `YYYY-MM-DD`; an ISO
    8601 timestamp (what Twilio's SDKs send for a datetime) or an RFC 2822 one (the form SignalWire
    documents) counts as the UTC day it falls on. ValueError for anything else."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        try:
            moment = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError, OverflowError):
            raise ValueError(f"not a date: {raw!r}") from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # an offset that pushes year 1 or 9999 out of range
            raise ValueError(f"not a date: {raw!r}") from None
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp()


def day_filter(name: str, on: str | None, on_or_before: str | None, on_or_after: str | None) -> Span:
    """The instants a `Name`, `Name<` and `Name>` filter trio admits (Twilio: `StartTime=2026-11-29`
    is that UTC day, `StartTime<` on or before it, `StartTime>` on or after it); empty values are
    absent. ValidationFailed names every malformed one."""
    span = Span()
    problems = []
    for suffix, raw in (("", on), ("<", on_or_before), (">", on_or_after)):
        if not raw:
            continue
        try:
            start = day_start(raw)
        except ValueError:
            problems.append(Problem(name + suffix, f"{name}{suffix} must be a date, YYYY-MM-DD (UTC): got {raw!r}"))
            continue
        if suffix != ">":
            span = span.narrowed(until=start + _DAY)
        if suffix != "<":
            span = span.narrowed(since=start)
    if problems:
        raise ValidationFailed(problems)
    return span
