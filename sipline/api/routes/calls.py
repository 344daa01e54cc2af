"""/api/laml/2010-04-01/Accounts/{AccountSid}/Calls: the LaML (Twilio-compatible) Calls resource, read-only.

The AccountSid is the project id; any other account, like another project's call, is 404. Every
path also answers with a `.json` suffix, as Twilio's clients ask for it. Errors take Twilio's
shape (sipline.api.errors). Lists are newest first; PageToken is a keyset position (`PA...` for
the next page, `PB...` for the previous one, as SignalWire's tokens begin), so following
next_page_uri visits each call once while new calls are made.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.types import OperationIDCreator

from sipline.api import models
from sipline.api.deps import Principal
from sipline.api.pagination import Cursor, decode_token, encode_token, link
from sipline.domain import calls as rules
from sipline.domain.errors import NotFound, Problem, ValidationFailed
from sipline.runtime import Runtime
from sipline.store import calls as store

BASE_PATH = "/api/laml/" + rules.API_VERSION
ACCOUNT_PATH = BASE_PATH + "/Accounts/{AccountSid:str}"

_BAD_TOKEN = Problem("PageToken", "PageToken is not valid: use the page URIs of a previous response")


def _account(raw: str, principal: Principal) -> str:
    """The path's AccountSid, which must be the caller's own project: anything else is 404."""
    try:
        account = str(uuid.UUID(raw))
    except ValueError:
        raise NotFound() from None
    if account != principal.project_id:
        raise NotFound()
    return account


def _token_prefix(cursor: Cursor) -> str:
    """`PA` for a token to an older page (it holds an `after`), `PB` for one back (a `before`)."""
    return "PA" if cursor.after is not None else "PB"


def _encode_page_token(cursor: Cursor) -> str:
    return _token_prefix(cursor) + encode_token(cursor)


def _decode_page_token(token: str) -> Cursor:
    try:
        cursor = decode_token(token[2:])  # exactly one of after and before, or ValidationFailed
    except ValidationFailed:
        raise ValidationFailed([_BAD_TOKEN]) from None
    if token[:2] != _token_prefix(cursor):
        raise ValidationFailed([_BAD_TOKEN])
    return cursor


def _operation_id(name: str) -> OperationIDCreator:
    """Litestar documents each path of a handler as its own operation; each needs its own id."""
    return lambda _handler, _method, path: f"{name}_json" if str(path[-1]).endswith(".json") else name


_DATE = "A UTC date, YYYY-MM-DD (a timestamp counts as its UTC day)."


@get(
    ["/Calls", "/Calls.json"],
    operation_id=_operation_id("list_all_calls"),
    summary="List all Calls",
    description="Newest first. Date filters take a UTC day: `StartTime<` is on or before it, `StartTime>` on or after.",
    responses=models.laml_error_responses(400, 401, 403, 404),
)
async def list_calls(
    AccountSid: FromPath[str],
    runtime: NamedDependency[Runtime],
    principal: NamedDependency[Principal],
    # Named as on the wire, so that Litestar's validation messages name what the client sent.
    To: Annotated[str | None, QueryParameter(description="The address called (exact).")] = None,
    From: Annotated[str | None, QueryParameter(description="The caller's address (exact).")] = None,
    ParentCallSid: FromQuery[str | None] = None,
    Status: FromQuery[rules.CallStatus | None] = None,
    StartTime: Annotated[str | None, QueryParameter(description=_DATE)] = None,
    start_time_before: Annotated[str | None, QueryParameter(name="StartTime<", description=_DATE)] = None,
    start_time_after: Annotated[str | None, QueryParameter(name="StartTime>", description=_DATE)] = None,
    EndTime: Annotated[str | None, QueryParameter(description=_DATE)] = None,
    end_time_before: Annotated[str | None, QueryParameter(name="EndTime<", description=_DATE)] = None,
    end_time_after: Annotated[str | None, QueryParameter(name="EndTime>", description=_DATE)] = None,
    Page: Annotated[int, QueryParameter(ge=0, le=2**31 - 1, description="0-based; past 0 it needs a PageToken.")] = 0,
    PageSize: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
    PageToken: FromQuery[str | None] = None,
) -> models.CallList:
    account = _account(AccountSid, principal)
    filters: dict[str, str | int | None] = {
        "To": To,
        "From": From,
        "ParentCallSid": ParentCallSid,
        "Status": Status,
        "StartTime": StartTime,
        "StartTime<": start_time_before,
        "StartTime>": start_time_after,
        "EndTime": EndTime,
        "EndTime<": end_time_before,
        "EndTime>": end_time_after,
    }
    query = _query(account, filters, Page, PageSize, PageToken)
    result = await runtime.db.read(store.page, query)
    rows = result.rows
    path = f"{BASE_PATH}/Accounts/{account}/Calls"

    def page_uri(number: int, token: str | None) -> str:
        return link(path, {**filters, "Page": number, "PageSize": PageSize, "PageToken": token})

    next_uri = previous_uri = None
    if rows and result.has_older:
        next_uri = page_uri(Page + 1, _encode_page_token(Cursor(after=rows[-1]["seq"])))
    if Page > 0:
        if rows and result.has_newer:
            previous_uri = page_uri(Page - 1, _encode_page_token(Cursor(before=rows[0]["seq"])))
        else:  # nothing newer to go back to (or nothing here to start from): the first page
            previous_uri = page_uri(0, None)
    start = Page * PageSize
    return models.CallList(
        calls=[_shape(r) for r in rows],
        uri=page_uri(Page, PageToken),
        first_page_uri=page_uri(0, None),
        next_page_uri=next_uri,
        previous_page_uri=previous_uri,
        page=Page,
        page_size=PageSize,
        start=start,
        end=start + max(len(rows) - 1, 0),
    )


def _text(value: str | int | None) -> str | None:
    return str(value) if value else None  # an empty filter is no filter


def _query(
    account: str, filters: dict[str, str | int | None], page: int, size: int, token: str | None
) -> store.CallQuery:
    """The store query for a list request; ValidationFailed lists every malformed parameter."""
    problems = []
    spans = []
    for name in ("StartTime", "EndTime"):
        try:
            spans.append(rules.day_filter(name, *(_text(filters[name + op]) for op in ("", "<", ">"))))
        except ValidationFailed as exc:
            problems += exc.problems
    if page > 0 and not token:
        problems.append(Problem("Page", "PageToken is required when Page > 0: use next_page_uri"))
    if problems:
        raise ValidationFailed(problems)
    cursor = _decode_page_token(token) if token else Cursor()
    return store.CallQuery(
        project_id=account,
        size=size,
        to_address=_text(filters["To"]),
        from_address=_text(filters["From"]),
        parent_call_sid=_text(filters["ParentCallSid"]),
        status=_text(filters["Status"]),
        start_time=spans[0],
        end_time=spans[1],
        after=cursor.after,
        before=cursor.before,
    )


def _shape(record: dict[str, Any]) -> models.Call:
    return msgspec.convert(rules.view(record, BASE_PATH), models.Call)


@get(
    "/Calls/{CallSid:str}",
    operation_id="retrieve_a_call",
    summary="Retrieve a Call",
    description="`CallSid` may carry a `.json` suffix.",
    responses=models.laml_error_responses(400, 401, 403, 404),  # 400: in place of Litestar's own shape
)
async def get_call(
    AccountSid: FromPath[str],
    CallSid: FromPath[str],
    runtime: NamedDependency[Runtime],
    principal: NamedDependency[Principal],
) -> models.Call:
    account = _account(AccountSid, principal)
    sid = CallSid.removesuffix(".json")
    record = await runtime.db.read(store.get, account, sid) if rules.is_sid(sid) else None
    if record is None:
        raise NotFound()
    return _shape(record)


router = Router(path=ACCOUNT_PATH, route_handlers=[list_calls, get_call], tags=["LaML Calls"])
