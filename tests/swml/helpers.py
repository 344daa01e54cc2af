"""Building SWML documents and driving a session through them, for the tests of sipline.swml."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import yaml

from sipline.handlers.actions import Action, Dial, DialResult, DocumentError, Fetch, Finished, Hangup, Pause, Reject
from sipline.swml import CallInfo, Document, SipData, SwmlSession, parse

CALL = CallInfo(
    call_id="c0ffee00-0000-4000-8000-000000000001",
    from_="sip:alice@acme.sip.example.com",
    to="sip:1000@acme.sip.example.com",
    project_id="b2c3d4e5-f6a7-4901-bcde-f12345678901",
    space_id="d3e4f5a6-b7c8-4012-8efa-345678901bcd",
    node_id="node-1",
    segment_id="segment-1",
    headers=(("X-Account", "42"),),
    sip_data=SipData(sip_req_user="1000", sip_req_host="acme.sip.example.com", sip_from_user="alice"),
)

ANSWERED = DialResult("completed", sip_status=200, duration=30)
BUSY = DialResult("busy", sip_status=486)
NO_ANSWER = DialResult("no-answer", sip_status=480)

ENDINGS = (Finished, Hangup, Reject, DocumentError)


def swml(*main: object, **sections: list[object]) -> dict[str, object]:
    return {"version": "1.0.0", "sections": {"main": list(main), **sections}}


def as_json(document: object) -> bytes:
    return json.dumps(document).encode()


def as_yaml(document: object) -> bytes:
    return yaml.safe_dump(document, sort_keys=False).encode()


def parsed(document: object, fmt: str = "json") -> Document:
    body, ctype = (as_json(document), "application/json") if fmt == "json" else (as_yaml(document), "application/yaml")
    result = parse(body, ctype, "https://app.example.com/swml")
    assert isinstance(result, Document), result
    return result


def refused(document: object, fmt: str = "json") -> str:
    body, ctype = (as_json(document), "application/json") if fmt == "json" else (as_yaml(document), "application/yaml")
    result = parse(body, ctype, "https://app.example.com/swml")
    assert isinstance(result, DocumentError), f"parsed, expected an error: {document}"
    assert result.code == 12100
    return result.message


def session(**kwargs: object) -> SwmlSession:
    return SwmlSession(CALL, kwargs.pop("params", {}), kwargs.pop("vars", {}), **kwargs)  # type: ignore[arg-type]


Outcome = Callable[[Dial], DialResult]


def outcomes(*results: DialResult) -> Outcome:
    """Each Dial gets the next result (then no-answer)."""
    queue: Iterator[DialResult] = iter(results)
    return lambda dial: next(queue, NO_ANSWER)


def run(
    document: object,
    dialled: Outcome | None = None,
    fetched: Callable[[Fetch], object] | None = None,
    sw: SwmlSession | None = None,
    limit: int = 100_000,
) -> list[Action]:
    """Every action the session asks for, the last one ending the call."""
    sw = sw or session()
    dialled = dialled or outcomes()
    first = parsed(document) if isinstance(document, dict) else document
    actions = [sw.begin(first)]
    while not isinstance(actions[-1], ENDINGS):
        assert len(actions) < limit, "the session did not end"
        action = actions[-1]
        if isinstance(action, Dial):
            actions.append(sw.resume(dialled(action)))
        elif isinstance(action, Pause):
            actions.append(sw.resume(None))
        elif isinstance(action, Fetch):
            assert fetched is not None, f"unexpected fetch of {action.url}"
            actions.append(sw.begin(fetched(action)))
    return actions


def dials(actions: list[Action]) -> list[Dial]:
    return [action for action in actions if isinstance(action, Dial)]


def uris(actions: list[Action]) -> list[tuple[str, ...]]:
    return [tuple(target.uri for target in dial.targets) for dial in dials(actions)]
