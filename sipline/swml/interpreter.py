"""Running an SWML document for one call: `SwmlSession`, a `Session` of `sipline.handlers.actions`.

The session walks the document's methods and stops at each one the engine must carry out:

- `connect` becomes one `Dial` per group of destinations: `to` and `parallel` are one Dial (its
  targets rung together), `serial` is one Dial per destination and `serial_parallel` one Dial per
  inner list, tried in order until one is answered (or the caller hangs up). Then `connect_result`
  (connected | failed), `connect_failed_reason` (none, or busy, noAnswer, decline, notFound, cancel,
  error) and `return_value` (= connect_result) are set and the `result` branch, if any, runs.
- `sleep` is a `Pause`; `sleep: -1` (until the call ends) pauses for the longest a call lasts
  (14400 s) and then hangs up. `hangup` is a `Hangup`.
- `transfer` / `execute` to an http(s) URL is a `Fetch` (POST, JSON): the engine takes its body from
  `fetch_body()` and hands the parsed reply to `begin()`. A transfer replaces the section (or
  document) it is made from and does not come back; an execute runs the section or document as a
  subroutine that comes back with `return` (or by running out of methods).
- the end of `main` (or `return` outside an execute) is `Finished(last Dial result)`.

Variables: `%{...}` / `${...}` in string arguments are expanded when the method runs, from
`call.*` (`request_body`'s call object), `vars.*` (what `set` and the methods set), `params.*` (of
the running section) and `envs.*`.

The session cannot loop forever: at most 32 jumps (goto and transfer, SignalWire's own budget),
1000 methods in a row without a Dial or a Pause, 10,000 methods per call and 64 nested sections
and blocks; past a limit it stops with a DocumentError that says which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sipline.handlers.actions import (
    Action,
    Callback,
    CallbackEvent,
    Dial,
    DialResult,
    DocumentError,
    Fetch,
    Finished,
    Hangup,
    Pause,
    Target,
)
from sipline.swml import document as doc
from sipline.swml.document import (
    Block,
    Cond,
    Connect,
    Destination,
    Document,
    Execute,
    Goto,
    Invalid,
    Switch,
    Transfer,
)
from sipline.swml.expressions import evaluate, expand_text, expand_value, lookup, render

MAX_JUMPS = 32  # goto and transfer steps per call (SignalWire: relay_script_too_many_transfers)
MAX_STEPS_WITHOUT_WAITING = 1000
MAX_STEPS = 10_000
MAX_FRAMES = 64
FOREVER_SECONDS = 14400.0  # `sleep: -1`: the longest a call lasts (SignalWire's max_duration)

_REASONS: dict[str, Literal["hangup", "busy", "decline"]] = {"hangup": "hangup", "busy": "busy", "decline": "decline"}
_TOO_DEEP = "relay_script_nested_too_deep"
_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,18}\s*")
_EVENTS: dict[str, CallbackEvent] = {
    "created": "initiated",
    "ringing": "ringing",
    "answered": "answered",
    "ended": "completed",
}


@dataclass(frozen=True)
class SipData:
    """What SignalWire's `call.sip_data` holds: the parts of the caller's INVITE."""

    sip_req_host: str = ""
    sip_req_uri: str = ""
    sip_req_user: str = ""
    sip_from_host: str = ""
    sip_from_uri: str = ""
    sip_from_user: str = ""
    sip_to_host: str = ""
    sip_to_uri: str = ""
    sip_to_user: str = ""
    sip_contact_user: str = ""
    sip_contact_port: str = ""
    sip_contact_uri: str = ""
    sip_contact_host: str = ""
    sip_contact_params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CallInfo:
    """The call an SWML document runs for: what `%{call.*}` names and what the fetch POSTs."""

    call_id: str
    from_: str  # "sip:alice@acme.sip.example.com" (SWML's call.from)
    to: str
    project_id: str
    space_id: str = ""
    node_id: str = ""
    segment_id: str = ""
    call_state: str = "created"
    direction: Literal["inbound", "outbound"] = "inbound"
    type: Literal["sip", "phone", "webrtc"] = "sip"
    headers: tuple[tuple[str, str], ...] = ()  # the caller's X- headers
    sip_data: SipData | None = None
    tag: str | None = None


def call_object(call: CallInfo) -> dict[str, object]:
    """SignalWire's `call` object (specs/signalwire-rest/webhooks/calling/models/inbound-call.tsp)."""
    body: dict[str, object] = {
        "call_id": call.call_id,
        "node_id": call.node_id,
        "segment_id": call.segment_id,
        "call_state": call.call_state,
        "direction": call.direction,
        "type": call.type,
        "from": call.from_,
        "to": call.to,
        "headers": [{"name": name, "value": value} for name, value in call.headers],
        "project_id": call.project_id,
        "space_id": call.space_id,
    }
    if call.tag is not None:
        body["tag"] = call.tag
    if call.sip_data is not None and call.type == "sip":
        sip = call.sip_data
        body["sip_data"] = {
            "sip_req_host": sip.sip_req_host,
            "sip_req_uri": sip.sip_req_uri,
            "sip_req_user": sip.sip_req_user,
            "sip_from_host": sip.sip_from_host,
            "sip_from_uri": sip.sip_from_uri,
            "sip_from_user": sip.sip_from_user,
            "sip_to_host": sip.sip_to_host,
            "sip_to_uri": sip.sip_to_uri,
            "sip_to_user": sip.sip_to_user,
            "sip_contact_user": sip.sip_contact_user,
            "sip_contact_port": sip.sip_contact_port,
            "sip_contact_uri": sip.sip_contact_uri,
            "sip_contact_host": sip.sip_contact_host,
            "sip_contact_params": dict(sip.sip_contact_params),
        }
    return body


def request_body(
    call: CallInfo,
    vars: Mapping[str, object],
    params: Mapping[str, object],
    envs: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The JSON body POSTed to fetch an SWML document: `{call, vars, params, envs}`. `vars` and
    `params` are empty on the first fetch; sipline has no account-level environment variables, so
    `envs` is what the caller passes (nothing by default)."""
    return {"call": call_object(call), "vars": dict(vars), "params": dict(params), "envs": dict(envs or {})}


@dataclass
class _Frame:
    document: Document
    section: str
    steps: Block
    params: Mapping[str, object]
    kind: Literal["main", "execute", "block"]
    caller: Execute | None = None  # the execute this section returns to
    pc: int = 0


@dataclass
class _Connecting:
    step: Connect
    dials: list[Dial]
    index: int = 0


@dataclass
class _Fetching:
    step: Transfer | Execute
    url: str
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass
class _Sleeping:
    forever: bool


class SwmlSession:
    """One call's run of SWML documents (see the module's docstring)."""

    def __init__(
        self,
        call: CallInfo,
        params: Mapping[str, object],
        vars: Mapping[str, object],
        *,
        envs: Mapping[str, object] | None = None,
    ) -> None:
        self._call = call
        self._call_object = call_object(call)
        self._params = dict(params)
        self._vars: dict[str, object] = dict(vars)
        self._envs = dict(envs or {})
        self._frames: list[_Frame] = []
        self._waiting: _Connecting | _Fetching | _Sleeping | None = None
        self._last: DialResult | None = None
        self._ended: Action | None = None
        self._jumps = 0
        self._goto_counts: dict[tuple[int, str, str], int] = {}
        self._documents: dict[int, Document] = {}
        self._steps = 0
        self._steps_since_waiting = 0
        self._document: Document | None = None

    @property
    def vars(self) -> Mapping[str, object]:
        return dict(self._vars)

    def fetch_body(self, call: CallInfo | None = None) -> dict[str, object]:
        """The JSON body for the Fetch just returned (the call as given here, or as it is now)."""
        params = self._waiting.params if isinstance(self._waiting, _Fetching) else {}
        return request_body(call or self._call, self._vars, params, self._envs)

    def begin(self, document: object) -> Action:
        """Run `document`: from its main section, or, after a Fetch, where the transfer or execute
        that fetched it said."""
        if isinstance(document, DocumentError):
            return self._end(document)
        if not isinstance(document, Document):
            return self._end(DocumentError(doc.PARSE_ERROR, "begin() takes an SWML document from swml.parse()"))
        fetching = self._waiting if isinstance(self._waiting, _Fetching) else None
        self._waiting = None
        self._ended = None
        if fetching is None:
            self._document = document
            self._frames = [_Frame(document, "main", document.sections["main"], self._params, "main")]
        elif isinstance(fetching.step, Execute):
            if not self._push(
                _Frame(document, "main", document.sections["main"], fetching.params, "execute", fetching.step)
            ):
                return self._too_deep(fetching.step.where)
        else:
            self._replace_section(document, "main", fetching.params)
        return self._run()

    def resume(self, outcome: DialResult | None) -> Action:
        """Go on after a Dial (its result) or a Pause (None)."""
        if self._ended is not None:
            return self._ended
        waiting, self._waiting = self._waiting, None
        if isinstance(waiting, _Connecting):
            result = outcome if outcome is not None else DialResult("failed")
            return self._dialled(waiting, result)
        if isinstance(waiting, _Sleeping) and waiting.forever:
            return self._end(Hangup())
        if isinstance(waiting, _Fetching):
            return self._end(
                DocumentError(doc.PARSE_ERROR, f"{waiting.step.where}: resume() after a Fetch: call begin(document)")
            )
        return self._run()

    # The loop

    def _run(self) -> Action:
        try:
            while True:
                if not self._frames:
                    return self._end(Finished(self._last))
                frame = self._frames[-1]
                if frame.pc >= len(frame.steps):
                    self._frames.pop()
                    if frame.kind == "execute" and frame.caller is not None:
                        self._returned(frame.caller)
                    continue
                step = frame.steps[frame.pc]
                frame.pc += 1
                self._count(step.where)
                action = self._step(step, frame)
                if action is not None:
                    return action
        except Invalid as invalid:
            return self._end(invalid.error(self._document.base_url if self._document else ""))

    def _count(self, where: str) -> None:
        self._steps += 1
        self._steps_since_waiting += 1
        if self._steps > MAX_STEPS:
            raise Invalid(f"{where}: the call ran {MAX_STEPS} methods; it stops there", "relay_script_internal_error")
        if self._steps_since_waiting > MAX_STEPS_WITHOUT_WAITING:
            raise Invalid(
                f"{where}: {MAX_STEPS_WITHOUT_WAITING} methods ran without a connect or a sleep: a loop?",
                "relay_script_internal_error",
            )

    def _step(self, step: doc.Method, frame: _Frame) -> Action | None:
        scopes = self._scopes(frame)
        if isinstance(step, Connect):
            dials = self._dials(step, scopes)
            return self._wait(_Connecting(step, dials), dials[0])
        if isinstance(step, doc.Hangup):
            reason = doc.check_choice(expand_text(step.reason, scopes), f"{step.where}.reason", doc.HANGUP_REASONS)
            return self._end(Hangup(_REASONS[reason]))
        if isinstance(step, doc.Sleep):
            duration = self._integer(
                step.duration, step.where, (0, doc.SLEEP_MAX_MS), scopes, also=(doc.SLEEP_FOREVER,)
            )
            forever = duration == doc.SLEEP_FOREVER
            return self._wait(_Sleeping(forever), Pause(FOREVER_SECONDS if forever else duration / 1000))
        if isinstance(step, Transfer | Execute):
            return self._go(step, frame, scopes)
        if isinstance(step, Goto):
            self._goto(step, scopes)
        elif isinstance(step, doc.Return):
            self._vars["return_value"] = expand_value(step.value, scopes)
            self._return(step.where)
        elif isinstance(step, doc.Set):
            for name, value in step.values.items():
                self._vars[name] = expand_value(value, scopes)
        elif isinstance(step, doc.Unset):
            for name in step.names:
                self._vars.pop(name, None)
        elif isinstance(step, Switch | Cond):
            self._branch(step, frame, scopes)
        return None  # label, answer: nothing to do

    def _scopes(self, frame: _Frame) -> dict[str, object]:
        return {"call": self._call_object, "vars": self._vars, "params": frame.params, "envs": self._envs}

    def _wait(self, waiting: _Connecting | _Sleeping, action: Action) -> Action:
        self._waiting = waiting
        self._steps_since_waiting = 0
        return action

    def _end(self, action: Action) -> Action:
        self._ended = action
        self._waiting = None
        self._frames = []
        return action

    # connect

    def _dials(self, step: Connect, scopes: Mapping[str, object]) -> list[Dial]:
        where = step.where
        headers = tuple(
            doc.check_header(name, expand_text(value, scopes), f"{where}.headers[{i}]")
            for i, (name, value) in enumerate(step.headers)
        )
        dials = []
        for group in step.groups:
            first = group[0]
            seconds = self._integer(
                first.timeout if first.timeout is not None else step.timeout,
                f"{where}.timeout",
                doc.TIMEOUT_SECONDS,
                scopes,
            )
            caller_id = _line(first.from_ if first.from_ is not None else step.from_, scopes, f"{where}.from")
            caller_name = _line(
                first.from_name if first.from_name is not None else step.from_name, scopes, f"{where}.from_name"
            )
            dials.append(
                Dial(
                    targets=tuple(self._target(step, d, scopes) for d in group),
                    timeout=float(seconds),
                    caller_id=_user_part(caller_id) if caller_id else None,
                    caller_name=caller_name or None,
                    time_limit=float(
                        self._integer(step.max_duration, f"{where}.max_duration", doc.MAX_DURATION_SECONDS, scopes)
                    ),
                    headers=headers,
                )
            )
        return dials

    def _target(self, step: Connect, destination: Destination, scopes: Mapping[str, object]) -> Target:
        where = step.where
        uri = expand_text(destination.to, scopes).strip()
        kind = doc.check_target(uri, f"{where}.to")
        codecs = destination.codecs if destination.codecs is not None else step.codecs
        url = destination.call_state_url if destination.call_state_url is not None else step.call_state_url
        events = destination.call_state_events if destination.call_state_events is not None else step.call_state_events
        callback = None
        if url is not None and events:
            callback = Callback(
                url=doc.check_url(expand_text(url, scopes), f"{where}.call_state_url"),
                method="POST",
                events=frozenset(
                    _EVENTS[doc.check_choice(expand_text(e, scopes), where, doc.CALL_STATE_EVENTS)] for e in events
                ),
                json=True,
            )
        return Target(
            uri=uri,
            kind="sip" if kind == "sip" else "number",
            username=_line(destination.username, scopes, f"{where}.username") or None,
            password=_line(destination.password, scopes, f"{where}.password") or None,
            codecs=doc.check_codecs(expand_text(codecs, scopes), f"{where}.codecs") if codecs else (),
            callback=callback,
        )

    def _dialled(self, connecting: _Connecting, result: DialResult) -> Action:
        self._last = result
        answered = result.status in ("completed", "answered")
        if not answered and not result.caller_hung_up and connecting.index + 1 < len(connecting.dials):
            connecting.index += 1
            return self._wait(connecting, connecting.dials[connecting.index])
        self._vars["connect_result"] = "connected" if answered else "failed"
        self._vars["connect_failed_reason"] = "none" if answered else _failed_reason(result)
        self._vars["return_value"] = self._vars["connect_result"]
        if result.caller_hung_up:
            return self._end(Finished(result))
        if connecting.step.result is not None and self._frames:
            try:
                self._branch(connecting.step.result, self._frames[-1], self._scopes(self._frames[-1]))
            except Invalid as invalid:
                return self._end(invalid.error(self._document.base_url if self._document else ""))
        return self._run()

    # switch, cond

    def _branch(self, step: Switch | Cond, frame: _Frame, scopes: Mapping[str, object]) -> None:
        block: Block | None = None
        if isinstance(step, Switch):
            value = render(lookup(step.variable, scopes))
            block = next((steps for case, steps in step.cases if case == value), step.default)
        else:
            block = next((b.then for b in step.branches if b.when is None or evaluate(b.when, scopes)), None)
        if block:
            self._push_block(block, frame, step.where)

    def _push_block(self, block: Block, frame: _Frame, where: str) -> None:
        if not self._push(_Frame(frame.document, frame.section, block, frame.params, "block")):
            raise Invalid(
                f"{where}: blocks and sections nested more than {MAX_FRAMES} deep", "relay_script_nested_too_deep"
            )

    def _push(self, frame: _Frame) -> bool:
        if len(self._frames) >= MAX_FRAMES:
            return False
        self._frames.append(frame)
        return True

    def _too_deep(self, where: str) -> Action:
        return self._end(
            DocumentError(
                doc.PARSE_ERROR,
                f"{where}: sections executed more than {MAX_FRAMES} deep",
                {"swml_error": "relay_script_nested_too_deep"},
            )
        )

    # goto, transfer, execute, return

    def _section_frame(self) -> int:
        """The index of the running section's frame (below the blocks running inside it)."""
        index = len(self._frames) - 1
        while index > 0 and self._frames[index].kind == "block":
            index -= 1
        return index

    def _jump(self, where: str) -> None:
        self._jumps += 1
        if self._jumps > MAX_JUMPS:
            raise Invalid(
                f"{where}: more than {MAX_JUMPS} goto and transfer jumps in one call", "relay_script_too_many_transfers"
            )

    def _goto(self, step: Goto, scopes: Mapping[str, object]) -> None:
        if step.when is not None and not evaluate(step.when, scopes):
            return
        index = self._section_frame()
        section = self._frames[index]
        label = expand_text(step.label, scopes)
        target = section.document.labels.get(section.section, {}).get(label)
        if target is None:
            raise Invalid(f"{step.where}.label: there is no label {label[:60]!r} in section {section.section[:60]!r}")
        limit = self._integer(step.max, f"{step.where}.max", doc.GOTO_MAX, scopes)
        self._documents[id(section.document)] = section.document  # the id stays this document's
        key = (id(section.document), section.section, label)
        if self._goto_counts.get(key, 0) >= limit:
            return
        self._goto_counts[key] = self._goto_counts.get(key, 0) + 1
        self._jump(step.where)
        del self._frames[index + 1 :]
        section.pc = target + 1

    def _go(self, step: Transfer | Execute, frame: _Frame, scopes: Mapping[str, object]) -> Action | None:
        params = expand_value(step.params, scopes)
        assert isinstance(params, dict)
        target = step.inline
        section = "main"
        if target is None:
            dest = expand_text(step.dest, scopes).strip()
            kind, target = doc.check_dest(dest, f"{step.where}.dest", frame.document.sections, frame.document.base_url)
            if kind == "url":
                if isinstance(step, Transfer):
                    self._jump(step.where)
                self._waiting = _Fetching(step, dest, params)
                self._steps_since_waiting = 0
                return Fetch(dest, "POST", params=_flat(params), json=True)
            if target is None:
                target, section = frame.document, dest
        if isinstance(step, Transfer):
            self._jump(step.where)
            self._replace_section(target, section, params)
        elif not self._push(_Frame(target, section, target.sections[section], params, "execute", step)):
            raise Invalid(
                f"{step.where}: sections executed more than {MAX_FRAMES} deep", "relay_script_nested_too_deep"
            )
        return None

    def _replace_section(self, document: Document, section: str, params: Mapping[str, object]) -> None:
        """A transfer: the running section (and the blocks inside it) gives way to another, which
        returns where the replaced one would have."""
        index = self._section_frame() if self._frames else 0
        replaced = self._frames[index] if self._frames else None
        del self._frames[index:]
        kind: Literal["main", "execute", "block"] = replaced.kind if replaced is not None else "main"
        caller = replaced.caller if replaced is not None else None
        self._frames.append(_Frame(document, section, document.sections[section], params, kind, caller))

    def _return(self, where: str) -> None:
        index = self._section_frame()
        frame = self._frames[index]
        del self._frames[index:]
        if frame.kind == "execute" and frame.caller is not None:
            self._returned(frame.caller)
        else:
            self._frames.clear()  # return outside an execute ends the script

    def _returned(self, step: Execute) -> None:
        """Back from an execute: its `result` branch, then its `on_return` methods."""
        if not self._frames:
            return
        frame = self._frames[-1]
        if step.result is not None:
            self._branch(step.result, frame, self._scopes(frame))
        if step.on_return:
            self._push_block(step.on_return, self._frames[-1], step.where)

    # values

    def _integer(
        self,
        value: int | str,
        where: str,
        bounds: tuple[int, int],
        scopes: Mapping[str, object],
        *,
        also: tuple[int, ...] = (),
    ) -> int:
        if isinstance(value, int):
            return value
        expanded = expand_value(value, scopes)
        number: int | None = None
        if isinstance(expanded, int) and not isinstance(expanded, bool):
            number = expanded
        elif (isinstance(expanded, float) and expanded.is_integer()) or (
            isinstance(expanded, str) and _INTEGER.fullmatch(expanded)
        ):
            number = int(expanded)
        if number is None:
            raise Invalid(f"{where}: {render(expanded)[:40]!r} (from {value[:60]}) is not an integer")
        return doc.check_integer(number, where, bounds, also=also)


def _line(value: str | None, scopes: Mapping[str, object], where: str) -> str:
    """An optional text field, expanded and checked for what it goes into (a SIP header)."""
    return doc.check_line(expand_text(value, scopes), where, 256) if value is not None else ""


def _user_part(uri: str) -> str:
    """`from` as Dial's caller_id: a number as it is, the user part of a SIP URI."""
    if uri.lower().startswith(("sip:", "sips:")):
        return uri.split(":", 1)[1].split("@", 1)[0].split(";", 1)[0]
    return uri


def _failed_reason(result: DialResult) -> str:
    """connect_failed_reason, in SignalWire's words (hangup busy noAnswer cancel decline error
    abandoned maxDuration notFound)."""
    if result.status == "busy":
        return "busy"
    if result.status == "no-answer":
        return "noAnswer"
    if result.status == "canceled":
        return "cancel"
    if result.sip_status in (404, 410, 484, 604):
        return "notFound"
    if result.sip_status == 603:
        return "decline"
    if result.sip_status in (486, 600):
        return "busy"
    if result.sip_status in (408, 480):
        return "noAnswer"
    return "error"


def _flat(params: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    """Fetch.params carries strings only: the nested ones as JSON (the body is fetch_body())."""
    return tuple(
        (name, value if isinstance(value, str) else json.dumps(value, separators=(",", ":")))
        for name, value in params.items()
    )
