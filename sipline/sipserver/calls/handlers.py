"""An endpoint's call handler at work: its documents fetched, their actions carried out.

`laml_webhooks` fetches LaML from `call_request_url` (signed, with the voice request parameters);
`relay_script` POSTs the call as JSON to `call_relay_script_url` for SWML. The interpreters
(sipline.laml, sipline.swml) are pure: this module does what they ask (ring targets, wait, fetch
the next document) and tells them how it went. A document that cannot be fetched or run goes to
`call_fallback_url` (LaML); when that fails too, the caller gets a SIP error and the Call record
says why: 502 for a document that could not be fetched (11200), 500 for one that could not be run
(12100). The caller hears 180 Ringing while the first document is fetched.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sipline import laml, swml
from sipline.domain import calls as call_rules
from sipline.handlers.actions import (
    Action,
    Callback,
    Dial,
    DialResult,
    DocumentError,
    Fetch,
    Finished,
    Hangup,
    Pause,
    Reject,
    Session,
)
from sipline.handlers.actions import Target as DialTarget
from sipline.sip.errors import SipParseError
from sipline.sip.headers import parse_name_addr, parse_uri
from sipline.sip.message import SipRequest
from sipline.sip.sdp import MediaPolicy
from sipline.webhooks.callbacks import status_params
from sipline.webhooks.client import Fetched, FetchFailed

from ..flows import Flow, UdpFlow
from . import media
from .call import Call, DialOutcome, Identity, caller_identity, dialled
from .legs import Leg
from .routing import Party, Target, find_callee, targets

if TYPE_CHECKING:
    from .engine import CallEngine

log = logging.getLogger("sipline.calls.handlers")

API_VERSION = "2010-04-01"
MAX_LEGS = 10  # devices rung at once by one Dial, whatever its nouns name
UNSUPPORTED = {
    "relay_context", "relay_topic", "relay_application", "relay_connector", "laml_application",
    "dialogflow", "video_room", "call_flow", "ai_agent",
}  # fmt: skip


@dataclass
class _Document:
    """How one kind of document is fetched and read."""

    parse: Callable[[bytes, str | None, str], object]
    session: Session
    json: bool  # SWML: fetched with a JSON body


class HandlerRun:
    def __init__(self, engine: CallEngine, call: Call, request: SipRequest) -> None:
        self.engine = engine
        self.call = call
        self.request = request
        self.endpoint = call.caller.endpoint
        self.project = call.caller.project
        self.signing_key = str(self.project.get("signing_key") or "")
        self.fallback_used = False
        self.session: Session | None = None
        self.last: DialResult | None = None
        self._sequence = itertools.count()
        self._leg_sequences: dict[str, itertools.count[int]] = {}

    # --- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        handler = self.endpoint.get("call_handler")
        if handler in UNSUPPORTED or handler not in ("laml_webhooks", "relay_script"):
            why = f"call_handler {handler} is not supported by sipline"
            log.info("SIP call %s: %s", self.call.sid, why)
            self.call.reject(501, f"Not Implemented (call handler {handler})", why=why, record_status="failed")
            return
        self.call.ring()
        if handler == "laml_webhooks":
            kind = _Document(laml.parse, laml.LamlSession(), json=False)
            url, method = (
                str(self.endpoint["call_request_url"]),
                str(self.endpoint.get("call_request_method") or "POST"),
            )
            first = Fetch(url, method)
        else:
            info = self._swml_call()
            kind = _Document(swml.parse, swml.SwmlSession(info, {}, {}), json=True)
            first = Fetch(str(self.endpoint["call_relay_script_url"]), "POST", json=True)
        try:
            await self._drive(kind, first)
        finally:
            if not self.call.ended:
                self.call.hang_up("the call handler stopped")
            if handler == "laml_webhooks":
                self._status_callback()

    async def _drive(self, kind: _Document, first: Fetch) -> None:
        self.session = kind.session
        action: Action = await self._load(kind, first)
        while not self.call.ended:
            if isinstance(action, Dial):
                self.last = await self._dial(action)
                action = kind.session.resume(self.last)
            elif isinstance(action, Pause):
                await _until(self.call.wait_ended(), action.seconds)
                action = kind.session.resume(None)
            elif isinstance(action, Fetch):
                action = await self._load(kind, action)
            elif isinstance(action, DocumentError):
                action = await self._fall_back(kind, action)
            else:
                self._finish(action)
                return

    async def _load(self, kind: _Document, fetch: Fetch) -> Action:
        """Fetch a document and begin it; the failure as a DocumentError (11200 or 12100)."""
        fetched = await self._fetch(fetch)
        if isinstance(fetched, FetchFailed):  # its url is the one asked for, without a #fragment
            return DocumentError(11200, fetched.reason, {"url": fetched.url})
        document = kind.parse(fetched.body, fetched.content_type, fetched.url)
        if isinstance(document, DocumentError):
            return DocumentError(document.code, document.message, {**document.details, "url": fetched.url})
        return kind.session.begin(document)

    async def _fetch(self, fetch: Fetch) -> Fetched | FetchFailed:
        client = self.engine.webhooks
        if fetch.json:
            session = self.session
            body = (
                session.fetch_body(self._swml_call())
                if isinstance(session, swml.SwmlSession)
                else swml.request_body(self._swml_call(), {}, {})
            )
            fetched: Fetched | FetchFailed = await client.fetch(
                fetch.url, fetch.method, json_body=body, signing_key=self.signing_key
            )
            return fetched
        params = {**self._voice_params(), **dict(fetch.params)}
        fetched = await client.fetch(fetch.url, fetch.method, params, signing_key=self.signing_key)
        return fetched

    async def _fall_back(self, kind: _Document, error: DocumentError) -> Action:
        """A document that could not be fetched or run: once, the fallback URL (LaML), with
        ErrorCode and ErrorUrl; else the end of the call, with a SIP error that says why."""
        url = self.endpoint.get("call_fallback_url")
        log.info("SIP call %s: call handler error %s: %s", self.call.sid, error.code, error.message)
        if url and not kind.json and not self.fallback_used and not self.call.ended:
            self.fallback_used = True
            method = str(self.endpoint.get("call_fallback_method") or "POST")
            params = (("ErrorCode", str(error.code)), ("ErrorUrl", error.details.get("url", "")))
            action = await self._load(kind, Fetch(str(url), method, params))
            if not isinstance(action, DocumentError):
                return action
            error = action
        status = 502 if error.code == 11200 else 500
        why = f"call handler error {error.code}: {error.message}"
        if self.call.txn.final is None:
            self.call.reject(status, why=why, record_status="failed", error_code=error.code)
        else:
            self.call.hang_up(why)
        return Finished(self.last)

    def _finish(self, action: Action) -> None:
        """Hangup, Reject or Finished: the call ends; a caller never answered hears why."""
        call = self.call
        answered = call.txn.final is not None and call.txn.final.status < 300
        if answered:
            call.hang_up("the call handler hung up")
        elif isinstance(action, Reject):
            call.reject(action.status, record_status="busy" if action.status == 486 else "failed")
        elif isinstance(action, Hangup):
            status = {"hangup": 480, "busy": 486, "decline": 603}[action.reason]
            call.reject(
                status,
                why=f"the call handler hung up ({action.reason})",
                record_status="busy" if status == 486 else "failed",
            )
        elif isinstance(action, Finished):
            last = action.last
            if last is None:
                call.reject(
                    480, why="the call handler's document ended without connecting the call", record_status="failed"
                )
            else:
                # A decline (6xx) is passed on as it is, as in a direct call; otherwise the status
                # that says what happened: busy 486, no answer 480, or the failure's own.
                code = {"busy": 486, "no-answer": 480, "canceled": 487}.get(last.status)
                if last.sip_status is not None and last.sip_status >= 600:
                    code = last.sip_status
                elif code is None:
                    code = last.sip_status if last.sip_status and last.sip_status >= 400 else 480
                call.reject(code, why=f"dial {last.status}", record_status=_record_status(last.status))

    # --- dialling --------------------------------------------------------------------------------

    async def _dial(self, dial: Dial) -> DialResult:
        call = self.call
        identity = caller_identity(call.caller)
        identity = Identity(dial.caller_name or identity.display, dial.caller_id or identity.user)
        legs: list[tuple[Target, Party, str]] = []
        failures: list[str] = []
        callbacks: dict[str, Callback] = {}
        for noun in dial.targets:
            found = await self._reach(noun, dial)
            if isinstance(found, str):
                failures.append(found)
                continue
            for target, party in found[: MAX_LEGS - len(legs)]:
                sid = call_rules.new_sid()
                legs.append((target, party, sid))
                if noun.callback is not None:
                    callbacks[sid] = noun.callback
        if not legs:
            log.info("SIP call %s: nothing to dial: %s", call.sid, "; ".join(failures) or "no targets")
            return DialResult("failed", 404 if failures else 480)
        call.watcher = self._leg_watcher(callbacks)
        outcome = await call.dial(legs, timeout=dial.timeout, identity=identity, time_limit=dial.time_limit)
        return await self._result(outcome)

    async def _result(self, outcome: DialOutcome) -> DialResult:
        leg = outcome.leg
        if outcome.status == "answered" and leg is not None:
            started = time.time()
            who = await self.call.bridged()
            return DialResult(
                "completed",
                200,
                leg.sid,
                leg.call_id,
                round(time.time() - started),
                _x_headers(leg),
                caller_hung_up=who in ("caller", "sipline"),
            )
        decided = next((leg for leg in reversed(self.call.legs) if leg.final == outcome.sip_status), None)
        return DialResult(
            outcome.status,
            outcome.sip_status,
            decided.sid if decided is not None else None,
            decided.call_id if decided is not None else None,
            0,
            _x_headers(decided) if decided is not None else (),
            caller_hung_up=outcome.status == "canceled" and self.call.ended,
        )

    async def _reach(self, noun: DialTarget, dial: Dial) -> list[tuple[Target, Party]] | str:
        """Where a Dial noun rings: every device of the endpoint it names (an endpoint of this
        installation, or of the caller's project for a number), or the remote server its URI
        names. A string says why it rings nowhere."""
        headers = (*dial.headers, *noun.headers)
        if noun.kind == "number":
            return await self._endpoint_devices(self.project["id"], noun.uri, noun, headers)
        try:
            uri = parse_uri(noun.uri)
        except SipParseError:
            return f"{noun.uri!r} is not a SIP URI"
        domains = self.engine.domains
        project: dict[str, Any] | None = None
        if domains.identifier(uri.host) is not None:
            project = await domains.project(uri.host, time.monotonic())
            if project is None:
                return f"no project at {uri.host}"
        elif domains.is_own(uri.host) and (uri.port is None or uri.port in self.engine.local.ports.values()):
            project = self.project  # this server itself (another port on its address is someone else)
        if project is not None:
            if not uri.user:
                return f"{noun.uri!r} names no user"
            return await self._endpoint_devices(project["id"], uri.user, noun, headers, realm=domains.realm(project))
        return await self._remote(uri, noun, headers)

    async def _endpoint_devices(
        self,
        project_id: str,
        user: str,
        noun: DialTarget,
        headers: tuple[tuple[str, str], ...],
        *,
        realm: str | None = None,
    ) -> list[tuple[Target, Party]] | str:
        callee = await self.engine.db.read(find_callee, project_id, user, time.time())
        if callee is None:
            return f"no endpoint {user!r}"
        await self.engine.service.nodes.learn({b.origin.node_id for b in callee.bindings if b.origin.node_id})
        policy = _restricted(media.policy(callee.endpoint), noun.codecs)
        party = Party(f"sip:{user}@{realm or self.call.caller.realm}", policy, callee.endpoint, headers=headers)
        found = targets(callee, self.engine.reach)
        return [(target, party) for target in found] or f"{user} has no reachable device"

    async def _remote(
        self, uri: Any, noun: DialTarget, headers: tuple[tuple[str, str], ...]
    ) -> list[tuple[Target, Party]] | str:
        destinations = await self.engine.service.resolver.resolve(uri)
        if not destinations:
            return f"{uri.host} does not resolve"
        destination = destinations[0]
        flow: Flow
        if destination.transport == "udp":
            if self.engine.udp is None:
                return "no UDP socket"
            flow = UdpFlow(self.engine.udp, (destination.address, destination.port))
        else:
            outbound = self.engine.service.outbound
            stream = await outbound.connect(destination) if outbound is not None else None
            if stream is None:
                return f"cannot connect to {destination.address}:{destination.port} over {destination.transport}"
            flow = stream
        own = media.policy(self.endpoint)
        policy = _restricted(MediaPolicy(own.codecs, own.ciphers, "optional"), noun.codecs)
        party = Party(noun.uri.split("?", 1)[0], policy, None, noun.username, noun.password, headers)
        return [(Target(party.to, flow), party)]

    # --- what the handler's URLs are told ----------------------------------------------------

    def _voice_params(self) -> dict[str, str]:
        """The voice request's parameters (Twilio/SignalWire), the same on every request of the call."""
        call, request = self.call, self.request
        params = {
            "AccountSid": str(self.project["id"]),
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": "in-progress" if call.answered_time is not None else "ringing",
            "Direction": "inbound",
            "From": f"sip:{call.caller.username}@{call.caller.realm}",
            "To": dialled(request),
            "Caller": f"sip:{call.caller.username}@{call.caller.realm}",
            "Called": dialled(request),
            "ParentCallSid": "",
            "SipDomain": call.caller.realm,
            "SipUsername": call.caller.username,
            "SipCallId": request.headers.get("Call-ID") or "",
            "SipSourceIp": call.flow.remote[0],
        }
        for name, value in request.headers.items():
            if name.lower().startswith("x-"):
                params[f"SipHeader_{name}"] = value
        return params

    def _swml_call(self) -> swml.CallInfo:
        """The call as SWML sees it (`%{call.*}`, and the JSON POSTed to fetch a document)."""
        call, request = self.call, self.request
        return swml.CallInfo(
            call_id=call.sid,
            from_=f"sip:{call.caller.username}@{call.caller.realm}",
            to=dialled(request),
            project_id=str(self.project["id"]),
            space_id=str(self.project["id"]),
            node_id=self.engine.local.worker_id,
            segment_id=call.sid,
            call_state="answered" if call.answered_time is not None else "created",
            direction="inbound",
            type="sip",
            headers=tuple((n, v) for n, v in request.headers.items() if n.lower().startswith("x-")),
            sip_data=_sip_data(request),
        )

    def _status_callback(self) -> None:
        """The caller's leg ended: its status callback (call_status_callback_url), if any."""
        url = self.endpoint.get("call_status_callback_url")
        if not url or not self.call.ended:
            return
        call = self.call
        duration = None
        if call.answered_time is not None and call.ended_time is not None:
            duration = round(call.ended_time - call.answered_time)
        params = status_params(
            account_sid=str(self.project["id"]),
            call_sid=call.sid,
            call_status=call.final_status,
            direction="inbound",
            from_address=f"sip:{call.caller.username}@{call.caller.realm}",
            to_address=dialled(self.request),
            timestamp=time.time(),
            sequence_number=next(self._sequence),
            call_duration=duration,
            sip_result_code=call.final_sip_status,
        )
        method = str(self.endpoint.get("call_status_callback_method") or "POST")
        self.engine.callbacks.send(str(url), method, params=params, signing_key=self.signing_key)

    def _call_state_event(self, leg: Leg, event: str, status: str) -> dict[str, Any]:
        """A dialled leg's progress as SignalWire posts it to an SWML call_state_url."""
        params: dict[str, Any] = {
            "call_id": leg.sid,
            "node_id": self.engine.local.worker_id,
            "segment_id": leg.sid,
            "tag": self.call.sid,
            "call_state": _CALL_STATES[event],
            "direction": "outbound",
            "device": {
                "type": "sip",
                "params": {"from": f"sip:{self.call.caller.username}@{self.call.caller.realm}", "to": leg.party.to},
            },
        }
        if event == "completed":
            params["end_reason"] = _END_REASONS.get(status, "hangup")
        return {
            "event_type": "calling.call.state",
            "timestamp": time.time(),
            "project_id": str(self.project["id"]),
            "space_id": str(self.project["id"]),
            "params": params,
        }

    def _leg_watcher(self, callbacks: dict[str, Callback]) -> Callable[[Leg, str], None]:
        """Status callbacks of dialled legs (LaML <Sip statusCallback>, SWML call_state_url)."""
        events = {"queued": "initiated", "ringing": "ringing", "in-progress": "answered"}

        def watch(leg: Leg, status: str) -> None:
            callback = callbacks.get(leg.sid)
            if callback is None:
                return
            event = events.get(status, "completed")
            if event not in callback.events:
                return
            sequence = self._leg_sequences.setdefault(leg.sid, itertools.count())
            duration = None
            if event == "completed" and leg.answered_time is not None:
                duration = round((leg.ended_time or time.time()) - leg.answered_time)
            params = status_params(
                account_sid=str(self.project["id"]),
                call_sid=leg.sid,
                call_status="initiated" if event == "initiated" else status,
                direction="outbound",
                from_address=f"sip:{self.call.caller.username}@{self.call.caller.realm}",
                to_address=leg.party.to,
                timestamp=time.time(),
                sequence_number=next(sequence),
                parent_call_sid=self.call.sid,
                call_duration=duration,
                sip_result_code=leg.final,
            )
            if callback.json:  # SWML's call_state_url: SignalWire's calling.call.state event
                body = self._call_state_event(leg, event, status)
                self.engine.callbacks.send(callback.url, "POST", json_body=body, signing_key=self.signing_key)
            else:
                self.engine.callbacks.send(callback.url, callback.method, params=params, signing_key=self.signing_key)

        return watch


_CALL_STATES = {"initiated": "created", "ringing": "ringing", "answered": "answered", "completed": "ended"}
_END_REASONS = {"completed": "hangup", "busy": "busy", "no-answer": "noAnswer", "canceled": "cancel", "failed": "error"}


def _restricted(policy: MediaPolicy, codecs: tuple[str, ...]) -> MediaPolicy:
    """A policy narrowed to the codecs a document names for one target (none named: unchanged)."""
    if not codecs:
        return policy
    wanted = {c.upper() for c in codecs}
    return MediaPolicy(tuple(c for c in policy.codecs if c.upper() in wanted), policy.ciphers, policy.encryption)


def _x_headers(leg: Leg | None) -> tuple[tuple[str, str], ...]:
    response = leg.final_response if leg is not None else None
    if response is None:
        return ()
    return tuple((n, v) for n, v in response.headers.items() if n.lower().startswith("x-"))


def _record_status(dial_status: str) -> str:
    return {"busy": "busy", "no-answer": "no-answer", "canceled": "canceled"}.get(dial_status, "failed")


async def _until(event: Awaitable[None], seconds: float) -> None:
    """Wait `seconds`, or less if `event` happens first (the caller hanging up during a Pause)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event, seconds)


def _sip_data(request: SipRequest) -> swml.SipData:
    """The parts of the caller's INVITE SWML names (sip_req_*, sip_from_*, sip_to_*, sip_contact_*)."""
    parts: dict[str, Any] = {}
    for prefix, value in (
        ("sip_req", request.uri),
        ("sip_from", request.headers.get("From") or ""),
        ("sip_to", request.headers.get("To") or ""),
        ("sip_contact", request.headers.get("Contact") or ""),
    ):
        try:
            uri = parse_uri(parse_name_addr(value).uri if prefix != "sip_req" else value)
        except SipParseError:
            continue
        parts[f"{prefix}_uri"] = f"{uri.user}@{uri.host}" if uri.user else uri.host
        parts[f"{prefix}_user"] = uri.user or ""
        parts[f"{prefix}_host"] = uri.host
        if prefix == "sip_contact":
            parts["sip_contact_port"] = str(uri.port or "")
            parts["sip_contact_params"] = tuple((k, v or "") for k, v in uri.params.items())
    return swml.SipData(**parts)
