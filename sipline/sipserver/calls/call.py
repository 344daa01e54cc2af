"""A call: the caller's leg (we are its UAS) bridged to the legs it dials (we are their UAC).

What the caller hears follows the legs: ringing and early media are passed on, the first device
to answer gets the call and the others stop ringing, and when none answers the caller gets the
response that says why (busy, unavailable...). Once answered the two dialogs are bridged: BYE from
either side ends both; re-INVITE, UPDATE, INFO and OPTIONS are passed across, their SDP under each
endpoint's policy; a failed transaction (408, 481, a 2xx never acknowledged) ends both legs.

A controller (the endpoint's call handler; a direct dial when it has none) drives the call:
`ring`, `dial`, `bridged` (until the bridge ends), `reject`, `hang_up`. When the callee hangs up
the caller stays connected and the controller decides (a direct dial hangs up; a document goes on
with its next instruction); when the caller hangs up, the call is over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from sipline import metrics
from sipline.sip.dialog import Dialog, DialogId
from sipline.sip.errors import SipParseError
from sipline.sip.headers import parse_uri, quote
from sipline.sip.message import SipRequest, SipResponse
from sipline.sip.sdp import MediaPolicy, Refusal, SdpError, SessionDescription
from sipline.sip.transaction import Deliver, NoAck, ServerInvite, ServerKey, TimedOut

from ..callers import Caller
from ..flows import Flow
from ..responses import respond, warning
from ..transactions import ServerTransaction
from . import media
from .legs import Leg
from .routing import Party, Target

if TYPE_CHECKING:
    from .engine import CallEngine

log = logging.getLogger("sipline.calls")

DialStatus = Literal["answered", "busy", "no-answer", "failed", "canceled"]
_UNREACHABLE = frozenset({408, 430, 480, 502, 503, 504})


@dataclass(frozen=True)
class Identity:
    """Who the callee sees calling: the From display name and user part."""

    display: str | None
    user: str


@dataclass(frozen=True)
class DialOutcome:
    status: DialStatus
    sip_status: int  # 200 when answered; else what the caller is answered when nothing else happens
    reason: str
    leg: Leg | None = None


def failure_outcome(finals: list[tuple[int, str]], *, rang_out: bool) -> DialOutcome:
    """Why no device answered, from their final statuses (and reasons) in arrival order (RFC 3261
    §16.7, and what a person calling expects to hear): a 6xx decides; the ring timeout is 'no
    answer'; any busy device makes the call busy; devices that could not be reached make it
    unavailable; otherwise the lowest class of failure, the first of it received."""
    for status, reason in finals:
        if status >= 600:
            return DialOutcome("busy" if status in (600, 603) else "failed", status, reason or "declined")
    if rang_out:
        return DialOutcome("no-answer", 480, "no answer")
    if any(status == 486 for status, _ in finals):
        return DialOutcome("busy", 486, "busy")
    # A redirect is not followed (a device's contacts are its own business) nor passed on.
    others = [(s, r) for s, r in finals if s not in _UNREACHABLE and s >= 400]
    if not others:
        return DialOutcome("failed", 480, "unreachable")
    status, reason = min(others, key=lambda final: final[0] // 100)
    return DialOutcome("failed", status, reason or "refused")


@dataclass
class _Side:
    """One end of the bridge: its dialog, the flow toward it, its media policy."""

    name: str
    dialog: Dialog
    flow: Flow
    policy: MediaPolicy
    leg: Leg | None = None  # the callee's leg (None for the caller)


@dataclass
class _Pending:
    """A re-INVITE passed across, until its 2xx is acknowledged end to end."""

    origin: _Side
    target: _Side
    txn: ServerTransaction  # the origin's
    forwarded: SipRequest | None = None
    answered: bool = False
    acks: list[SipRequest] = field(default_factory=list)


class Call:
    def __init__(
        self, engine: CallEngine, sid: str, caller: Caller, invite: SipRequest, txn: ServerInvite, flow: Flow
    ) -> None:
        self.engine = engine
        self.sid = sid
        self.caller = caller
        self.invite = invite
        self.txn = txn
        self.flow = flow
        self.policy = media.policy(caller.endpoint)
        self.offer: SessionDescription | None = None
        self.dialog = Dialog.as_uas(invite, engine.new_tag(), engine.local.contact(flow.transport, sid))
        self.state: Literal["setup", "answering", "up", "ended"] = "setup"
        self.legs: list[Leg] = []
        self.peer: Leg | None = None
        self.sides: dict[str, _Side] = {}
        self.pending: _Pending | None = None
        self.started = time.time()
        self.answered_time: float | None = None
        self._dial: asyncio.Future[DialOutcome] | None = None
        self._finals: list[tuple[int, str]] = []
        self._timers: list[asyncio.TimerHandle] = []
        self._ended = asyncio.Event()
        self._bridge: asyncio.Future[str] | None = None  # who ended the bridge: caller, callee, limit
        self.last_answer = b""  # the SDP the caller was last answered with
        self.final_status = ""  # the record's status once ended, and the SIP status behind it
        self.final_sip_status = 0
        self.ended_time: float | None = None
        self._time_limit: float | None = None
        # Told each status a leg's record takes (a handler's status callbacks for dialled legs).
        self.watcher: Callable[[Leg, str], None] | None = None
        self.end_reason = ""
        # What the engine finds the call by: its dialogs (in-dialog requests), its INVITE (CANCEL).
        self.dialog_ids: list[DialogId] = []
        self.invite_key: ServerKey | None = None
        flow.use()

    # --- the controller's side ------------------------------------------------------------------

    def ring(self) -> None:
        """180 Ringing toward the caller (while a handler's document is fetched, say)."""
        if self.txn.final is None:
            self._to_caller(180)

    async def dial(
        self,
        targets: list[tuple[Target, Party, str]],
        *,
        timeout: float,
        identity: Identity,
        time_limit: float | None = None,
    ) -> DialOutcome:
        """Ring every target at once; the first to answer is bridged to the caller (answered
        here, with its SDP), the others are cancelled. `targets`: (where, who, the leg's sid).
        `time_limit`: the longest the bridge may last (the call's own maximum otherwise)."""
        if self.state == "ended" or (self.txn.final is not None and self.txn.final.status >= 300):
            return DialOutcome("canceled", 487, "the caller left")
        if self.state != "setup":
            # Bridging an answered caller to a new party needs a new offer from one side and a
            # re-INVITE of the caller: not done (yet). Said plainly rather than half done.
            return DialOutcome("failed", 501, "dialling again after a bridged call ended is not supported")
        self._time_limit = time_limit
        loop = asyncio.get_running_loop()
        self._dial = loop.create_future()
        self._finals = []
        for target, party, sid in targets:
            leg = self.engine.new_leg(self, target, party, sid, identity)
            if isinstance(leg, DialOutcome):
                self._finals.append((leg.sip_status, leg.reason))
                continue
            self.legs.append(leg)
            leg.start()
            if self.watcher is not None:
                self.watcher(leg, "queued")
        if not any(leg.final is None for leg in self.legs):
            outcome = (
                failure_outcome(self._finals, rang_out=False)
                if self._finals
                else DialOutcome("failed", 480, "unreachable")
            )
            self._dial = None
            return outcome
        ring = loop.call_later(timeout, self._rang_out)
        self._timers.append(ring)
        try:
            return await self._dial
        finally:
            ring.cancel()
            self._dial = None

    def reject(
        self,
        status: int,
        reason: str | None = None,
        *,
        why: str | None = None,
        record_status: str | None = None,
        error_code: int | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Answer the caller with a failure (never answered), and end the call; `record_status`
        is what its Call record says (derived from `status` when not given), `error_code` the
        SignalWire/Twilio error behind it (11200, 12100), if any."""
        if self.txn.final is None:
            self._to_caller(status, reason, headers=[*headers, *([warning(why)] if why else [])])
        self._end(why or reason or str(status), status=record_status, error_code=error_code)

    def hang_up(self, why: str = "hung up") -> None:
        """End the call from our side: BYE whoever is connected, CANCEL whoever rings."""
        if self.state == "ended":
            return
        if self.txn.final is None:
            self.reject(480, why=why)
            return
        for side in self.sides.values():  # answered: both sides are bridged
            self._bye(side)
        self._end(why)

    async def wait_ended(self) -> None:
        await self._ended.wait()

    async def bridged(self) -> str:
        """Wait for the bridge made by the last dial to end; who ended it: "caller" (the call is
        over), "callee" (the caller is still connected), "limit" (its time limit), "sipline"."""
        if self._bridge is None:
            return "sipline"
        return await asyncio.shield(self._bridge)

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    # --- what the legs report --------------------------------------------------------------------

    def leg_progress(self, leg: Leg, response: SipResponse) -> None:
        if not leg.ringing:
            leg.ringing = True
            self._leg_update(leg, status="ringing")
        if self.txn.final is not None or self._dial is None:
            return
        body = None
        if response.status == 183:
            try:
                conveyed = media.convey(media.sdp_of(response), leg.policy, self.policy)
            except SdpError:
                conveyed = None
            body = conveyed if isinstance(conveyed, bytes) else None
        if body is not None:
            self._to_caller(183, headers=[("Content-Type", media.SDP)], body=body)
        else:
            self._to_caller(180)

    def leg_answered(self, leg: Leg, response: SipResponse, dialog: Dialog) -> bool:
        """The first answer wins: True when this leg gets the call (the caller is answered now)."""
        if self._dial is None or self._dial.done() or self.peer is not None or self.txn.final is not None:
            return False
        try:
            answer = media.convey(media.sdp_of(response), leg.policy, self.policy)
        except SdpError:
            answer = Refusal(488, "the device answered with SDP that cannot be read")
        if isinstance(answer, Refusal):
            log.info("SIP: call %s: answer from %r refused: %s", self.sid, leg.flow, answer.reason)
            self._leg_record_final(leg, "failed", 488)
            self._finals.append((488, answer.reason))
            return False  # acknowledged and hung up by the leg
        self.peer = leg
        self.answered_time = time.time()
        metrics.call_answered()
        for other in self.legs:
            if other is not leg:
                other.cancel()
                if other.final is None:
                    self._leg_record_final(other, "canceled", 487)
        caller_side = _Side("caller", self.dialog, self.flow, self.policy)
        callee_side = _Side("callee", dialog, leg.flow, leg.policy, leg)
        self.sides = {"caller": caller_side, "callee": callee_side}
        self.engine.track_dialog(self, dialog.id, "callee")
        headers = [("Contact", self.dialog.local_contact), *_ALLOW]
        if answer is not None:
            headers.append(("Content-Type", media.SDP))
        self.state = "answering"
        self.last_answer = answer or b""
        self._bridge = asyncio.get_running_loop().create_future()
        self._to_caller(200, headers=headers, body=answer or b"")
        self._leg_update(leg, status="in-progress", answered_time=self.answered_time, sip_result_code=200)
        self.engine.records.update(
            self.sid, status="in-progress", answered_time=self.answered_time, sip_result_code=200
        )
        self._dial.set_result(DialOutcome("answered", 200, "answered", leg))
        log.info(
            "SIP call %s from %s answered by %s on %r",
            self.sid,
            self.caller.username,
            leg.party.name,
            leg.flow,
        )
        loop = asyncio.get_running_loop()
        limit = self.engine.settings.call_max_duration
        self._timers.append(loop.call_later(limit, self.hang_up, "maximum call duration reached"))
        if self._time_limit is not None and self._time_limit < limit:
            self._timers.append(loop.call_later(self._time_limit, self._end_bridge, "limit"))
        return True

    def leg_failed(self, leg: Leg, status: int, reason: str) -> None:
        self._finals.append((status, reason))
        if not leg.cancelled:
            word = "busy" if status in (486, 600, 603) else "failed"
            self._leg_record_final(leg, word, status, None if status < 400 else reason)
        if self._dial is None or self._dial.done():
            return
        if status >= 600:
            for other in self.legs:
                other.cancel()
        if status >= 600 or all(other.final is not None for other in self.legs):
            self._dial.set_result(failure_outcome(self._finals, rang_out=False))

    def _rang_out(self) -> None:
        if self._dial is None or self._dial.done():
            return
        for leg in self.legs:
            if leg.final is None:
                leg.cancel()
                self._leg_record_final(leg, "no-answer", 487)
        self._dial.set_result(failure_outcome(self._finals, rang_out=True))

    # --- what the caller does --------------------------------------------------------------------

    def caller_cancelled(self) -> None:
        """CANCEL from the caller before we answered: 487 to its INVITE, every leg cancelled."""
        if self.txn.final is not None:
            return
        for leg in self.legs:
            leg.cancel()
            if leg.final is None:
                self._leg_record_final(leg, "canceled", 487)
        self._to_caller(487)
        if self._dial is not None and not self._dial.done():
            self._dial.set_result(DialOutcome("canceled", 487, "the caller cancelled"))
        self._end("the caller cancelled", status="canceled", sip_status=487)

    def on_caller_transaction(self, event: Deliver | TimedOut | NoAck) -> None:
        """The caller's INVITE transaction: a 2xx never acknowledged ends the call."""
        if isinstance(event, NoAck) and self.state == "answering":
            log.info("SIP: call %s: the caller never acknowledged the answer", self.sid)
            self.hang_up("the caller never acknowledged the answer")

    def ack(self, side_name: str, request: SipRequest) -> None:
        """An ACK for a 2xx we sent: the answer to the caller, or a re-INVITE passed across."""
        if side_name == "caller" and self.state == "answering":
            self.engine.transactions.acknowledged(self.txn)
            self.state = "up"
            assert self.peer is not None
            body, content_type = self._conveyed_body(request, self.policy, self.peer.policy)
            self.peer.acknowledge(body, content_type)
            return
        pending = self.pending
        if pending is None or pending.origin.name != side_name or not pending.answered:
            return
        if isinstance(pending.txn, ServerInvite):
            self.engine.transactions.acknowledged(pending.txn)
        assert pending.forwarded is not None
        body, content_type = self._conveyed_body(request, pending.origin.policy, pending.target.policy)
        cseq = int((pending.forwarded.headers.get("CSeq") or "0").split()[0])
        ack = pending.target.dialog.ack(cseq, self._via(pending.target.flow), body=body, content_type=content_type)
        pending.acks.append(ack)
        self.engine.send(ack, pending.target.flow)
        self.pending = None

    def in_dialog(self, side_name: str, request: SipRequest, txn: ServerTransaction) -> SipResponse | None:
        """A request within one of the call's dialogs; returns the answer, or None when it is
        passed across and answered later through `txn`."""
        side = self.sides.get(side_name)
        dialog = side.dialog if side is not None else self.dialog
        refusal = dialog.receive(request)
        if refusal is not None:
            return respond(request, refusal, to_tag=dialog.local_tag)
        method = request.method
        if side is None or self.state not in ("answering", "up"):
            if method == "BYE" and side_name == "caller" and self.txn.final is None:
                self.caller_cancelled()  # a BYE in the early dialog ends it (§15)
                return respond(request, 200, to_tag=dialog.local_tag)
            return respond(request, 481 if method == "BYE" else 491, to_tag=dialog.local_tag)
        if method == "BYE":
            if side_name == "caller":
                if "callee" in self.sides:
                    self._bye(self.sides["callee"])
                self._end("the caller hung up", who="caller")
            else:
                self._unbridge("callee")
            return respond(request, 200, to_tag=dialog.local_tag)
        if "callee" not in self.sides:
            # The bridge has ended, the caller is still connected: nobody to pass this on to.
            body = self.last_answer if method == "INVITE" else b""
            headers = [("Contact", dialog.local_contact), ("Content-Type", media.SDP)] if body else []
            return respond(request, 200, to_tag=dialog.local_tag, headers=headers, body=body)
        other = self.sides["callee" if side_name == "caller" else "caller"]
        if method in ("INVITE", "UPDATE") and self.pending is not None:
            return respond(request, 491, to_tag=dialog.local_tag)  # glare: one offer at a time (RFC 3261 §14.1)
        if method not in ("INVITE", "UPDATE", "INFO", "OPTIONS", "MESSAGE", "NOTIFY"):
            return respond(request, 501, to_tag=dialog.local_tag, headers=[warning(f"{method} is not passed across")])
        return self._pass_across(request, txn, side, other)

    # --- passing requests across the bridge ------------------------------------------------------

    def _pass_across(
        self, request: SipRequest, txn: ServerTransaction, origin: _Side, target: _Side
    ) -> SipResponse | None:
        headers: list[tuple[str, str]] = []
        body = request.body
        content_type = request.headers.get("Content-Type")
        if request.method in ("INVITE", "UPDATE"):
            try:
                conveyed = media.convey(media.sdp_of(request), origin.policy, target.policy)
            except SdpError as exc:
                status = 415 if isinstance(exc, media.UnsupportedBody) else 400
                return respond(request, status, to_tag=origin.dialog.local_tag, headers=[warning(str(exc))])
            if isinstance(conveyed, Refusal):
                return respond(
                    request, conveyed.status, to_tag=origin.dialog.local_tag, headers=[warning(conveyed.reason)]
                )
            body = conveyed or b""
            content_type = media.SDP if conveyed else None
        for name in ("Event", "Subscription-State", "Info-Package", "Recv-Info"):
            value = request.headers.get(name)
            if value:
                headers.append((name, value))
        forwarded = target.dialog.new_request(
            request.method, self._via(target.flow), headers=headers, body=body, content_type=content_type
        )
        pending = None
        if request.method == "INVITE":
            pending = self.pending = _Pending(origin, target, txn, forwarded)

        def on_event(event: Deliver | TimedOut | NoAck) -> None:
            self._across_event(event, request, txn, origin, target, pending)

        self.engine.client_request(forwarded, target.flow, on_event)
        return None

    def _across_event(
        self,
        event: Deliver | TimedOut | NoAck,
        request: SipRequest,
        txn: ServerTransaction,
        origin: _Side,
        target: _Side,
        pending: _Pending | None,
    ) -> None:
        if not isinstance(event, Deliver):
            if txn.final is None:
                self.engine.transactions.respond(txn, respond(request, 408, to_tag=origin.dialog.local_tag))
            self.hang_up(f"the {target.name} did not answer a {request.method}")
            return
        response = event.response
        if response.status < 200:
            return
        if pending is not None and pending.answered and response.status < 300:
            for ack in pending.acks:  # a repeated 2xx to a re-INVITE: our ACK was lost
                self.engine.send(ack, target.flow)
            return
        if txn.final is not None:
            return
        headers: list[tuple[str, str]] = []
        body = b""
        if 200 <= response.status < 300:
            if response.headers.get("Contact"):
                target.dialog.refresh(response)
            if request.method in ("INVITE", "UPDATE"):
                headers.append(("Contact", origin.dialog.local_contact))
            try:
                conveyed = media.convey(media.sdp_of(response), target.policy, origin.policy)
            except SdpError:
                conveyed = Refusal(488, "the answer's SDP cannot be read")
            if isinstance(conveyed, Refusal):
                conveyed = None  # an answer we cannot pass: the origin keeps its media as they were
            if conveyed:
                headers.append(("Content-Type", media.SDP))
                body = conveyed
            elif request.method not in ("INVITE", "UPDATE") and response.body:
                body = response.body
                content_type = response.headers.get("Content-Type")
                if content_type:
                    headers.append(("Content-Type", content_type))
            if pending is not None:
                pending.answered = True
        elif pending is not None:
            self.pending = None
        answer = respond(
            request, response.status, response.reason, to_tag=origin.dialog.local_tag, headers=headers, body=body
        )
        self.engine.transactions.respond(txn, answer)
        if response.status in (408, 481):
            self.hang_up(f"the {target.name}'s dialog is gone ({response.status})")

    def _conveyed_body(
        self, request: SipRequest, sender: MediaPolicy, receiver: MediaPolicy
    ) -> tuple[bytes, str | None]:
        try:
            conveyed = media.convey(media.sdp_of(request), sender, receiver)
        except SdpError:
            return b"", None
        if isinstance(conveyed, bytes):
            return conveyed, media.SDP
        return b"", None

    # --- the end ---------------------------------------------------------------------------------

    def _bye(self, side: _Side) -> None:
        if side.leg is not None:
            side.leg.hang_up()
        else:
            self.engine.client_request(side.dialog.new_request("BYE", self._via(side.flow)), side.flow)

    def _end_bridge(self, who: str) -> None:
        """Hang up the callee (its time limit); the caller stays, for the controller to decide."""
        callee = self.sides.get("callee")
        if callee is not None and self.state != "ended":
            self._bye(callee)
            self._unbridge(who)

    def _unbridge(self, who: str) -> None:
        """The callee's side is gone: its leg's record completes, the caller stays connected."""
        callee = self.sides.pop("callee", None)
        if callee is not None:
            self.engine.untrack_dialog(self, callee.dialog.id)
        if self.peer is not None:
            self._leg_update(self.peer, status="completed", end_time=time.time())
            self.peer.ended_time = time.time()
        if self._bridge is not None and not self._bridge.done():
            self._bridge.set_result(who)

    def _end(
        self,
        why: str,
        *,
        status: str | None = None,
        sip_status: int | None = None,
        who: str = "sipline",
        error_code: int | None = None,
    ) -> None:
        if self.state == "ended":
            return
        answered = self.answered_time is not None
        self.state = "ended"
        self.end_reason = why
        for timer in self._timers:
            timer.cancel()
        for leg in self.legs:
            if leg is not self.peer and leg.final is None:
                leg.cancel()
        now = time.time()
        if self.peer is not None and self.peer.ended_time is None:
            self.peer.ended_time = now
            self._leg_update(self.peer, status="completed", end_time=now)
        if self._bridge is not None and not self._bridge.done():
            self._bridge.set_result(who)
        if answered:
            self.final_status, self.final_sip_status = "completed", 200
            self.engine.records.update(self.sid, status="completed", end_time=now)
        else:
            final = self.txn.final.status if self.txn.final is not None else 480
            word = status or _status_word(final)
            self.final_status, self.final_sip_status = word, sip_status or final
            self.engine.records.update(
                self.sid,
                status=word,
                end_time=now,
                sip_result_code=sip_status or final,
                error_code=error_code,
                error_message=None if word in ("busy", "no-answer", "canceled") else why,
            )
        self.ended_time = now
        metrics.call_ended(self.final_status, answered)
        self.flow.release()
        for leg in self.legs:
            leg.flow.release()
        self.engine.forget(self)
        self._ended.set()
        if answered:
            log.info(
                "SIP call %s from %s ended after %.0f s: %s",
                self.sid,
                self.caller.username,
                now - (self.answered_time or now),
                why,
            )
        else:
            final = self.txn.final.status if self.txn.final is not None else 0
            log.info("SIP call %s from %s not answered (%s): %s", self.sid, self.caller.username, final, why)

    def release(self) -> None:
        """Drop what the call holds of its parts, once it is over and its task is done: the legs,
        sides, timers and watcher all point back at it, and without this every call (some 65
        objects, its messages among them) was left to the cyclic collector's full passes, which
        grew to stall the loop for 100-200 ms (measured at 250 calls/s)."""
        for leg in self.legs:
            leg.retire()
        self.legs = []
        self.sides = {}
        self.peer = None
        self.pending = None
        self._timers = []
        self.watcher = None

    def _leg_record_final(self, leg: Leg, status: str, sip_status: int, why: str | None = None) -> None:
        self._leg_update(leg, status=status, end_time=time.time(), sip_result_code=sip_status, error_message=why)

    def _leg_update(self, leg: Leg, **changes: object) -> None:
        """A leg's record changes (and whoever watches the legs hears of a new status)."""
        self.engine.records.update(leg.sid, **changes)
        status = changes.get("status")
        if self.watcher is not None and isinstance(status, str):
            self.watcher(leg, status)

    # --- messages to the caller ------------------------------------------------------------------

    def _to_caller(
        self, status: int, reason: str | None = None, *, headers: list[tuple[str, str]] | None = None, body: bytes = b""
    ) -> None:
        extra = list(headers or [])
        if 100 < status < 300 and not any(name == "Contact" for name, _ in extra):
            extra.insert(0, ("Contact", self.dialog.local_contact))
        response = respond(self.invite, status, reason, headers=extra, to_tag=self.dialog.local_tag, body=body)
        self.engine.transactions.respond(self.txn, response)

    def _via(self, flow: Flow) -> str:
        return self.engine.local.via(flow.transport)


_ALLOW = [("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO")]


def _status_word(final: int) -> str:
    if final in (486, 600, 603):
        return "busy"
    if final == 487:
        return "canceled"
    return "failed"


def caller_identity(caller: Caller) -> Identity:
    """The From the callee sees: the caller's caller_id as display name, its send_as (or the
    profile's) as user part when set (and not 'random', which needs numbers sipline has none
    of), else its user name."""
    endpoint = caller.endpoint
    send_as = endpoint.get("send_as") or endpoint.get("default_send_as")
    user = send_as if send_as and send_as != "random" else caller.username
    return Identity(endpoint.get("caller_id"), str(user))


def dialled(request: SipRequest) -> str:
    """What the caller dialled, as the Calls resource and a handler's `To` show it: the
    Request-URI's scheme, user and host (a phone's own parameters, `;transport=udp`, left out)."""
    try:
        uri = parse_uri(request.uri)
    except SipParseError:
        return request.uri[:255]
    host = f"{uri.host}:{uri.port}" if uri.port else uri.host
    return f"{uri.scheme}:{uri.user}@{host}" if uri.user else f"{uri.scheme}:{host}"


def from_header(identity: Identity, domain: str, tag: str) -> str:
    display = f"{quote(identity.display)} " if identity.display else ""
    return f"{display}<sip:{identity.user}@{domain}>;tag={tag}"
