"""The call engine: INVITEs from devices become calls; requests within dialogs find their call.

An INVITE is checked (hops, loops), its sender authenticated as an endpoint of the From domain
(407), its SDP read, and a Call recorded; then the endpoint's call handler runs it (with none,
the Request-URI user names an endpoint of the caller's project and every device of it rings).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sipline import __version__
from sipline.domain import calls as call_rules
from sipline.sip.dialog import Dialog, DialogId, request_dialog_id
from sipline.sip.errors import SipParseError
from sipline.sip.headers import Headers, parse_name_addr, parse_uri
from sipline.sip.message import SipRequest, SipResponse, serialize
from sipline.sip.sdp import Refusal, SdpError, filter_sdp
from sipline.sip.transaction import Deliver, NoAck, ServerInvite, ServerKey, TimedOut, server_key
from sipline.store import bindings as binding_store
from sipline.store import db
from sipline.webhooks import Callbacks, WebhookClient

from ..flows import Datagrams, Flow, UdpFlow
from ..responses import RETRY_LATER, respond, warning
from ..transactions import ServerTransaction
from . import media
from .call import Call, DialOutcome, Identity, caller_identity, dialled, from_header
from .handlers import HandlerRun
from .legs import Leg, invite_cseq
from .records import CallRecords, new_record
from .routing import Party, Target, find_callee, targets

if TYPE_CHECKING:
    from ..service import SipService

log = logging.getLogger("sipline.calls")


class CallEngine:
    def __init__(self, service: SipService) -> None:
        self.service = service
        self.settings = service.runtime.settings
        self.db = service.runtime.db
        self.local = service.local
        self.transactions = service.transactions
        self.flows = service.flows
        self.callers = service.callers
        self.domains = service.domains
        self.records = CallRecords(self.db)
        self.webhooks = WebhookClient()  # the one HTTP client for every user URL of every call
        self.callbacks = Callbacks(self.webhooks)
        self.udp: Datagrams | None = None  # set by the server once UDP listens
        self.calls: set[Call] = set()
        self.dialogs: dict[DialogId, tuple[Call, str]] = {}
        self._invites: dict[ServerKey, Call] = {}
        self._lives: set[asyncio.Task[None]] = set()  # each call's task, from its INVITE to its end
        self.transactions.late_answer = self._late_answer

    # --- entry points --------------------------------------------------------------------------

    async def invite(self, request: SipRequest, txn: ServerInvite, flow: Flow) -> SipResponse | None:
        """A new INVITE (out of any dialog). None: the call answers through `txn` itself."""
        refusal = self._check_hops(request)
        if refusal is not None:
            return refusal
        caller = await self.callers.identify(request, flow)
        if isinstance(caller, SipResponse):
            return caller
        try:
            offer = media.sdp_of(request)
        except SdpError as exc:
            status = 415 if isinstance(exc, media.UnsupportedBody) else 400
            return respond(request, status, headers=[warning(f"the offer is not usable SDP: {exc}")])
        if offer is not None:
            own = media.policy(caller.endpoint)
            checked = filter_sdp(offer, own, own)  # the caller's own rules (SRTP when required)
            if isinstance(checked, Refusal):
                return respond(request, checked.status, headers=[warning(checked.reason)])
        if not request.headers.get("Contact"):
            return respond(request, 400, "Bad Request (INVITE without Contact)")
        call = Call(self, call_rules.new_sid(), caller, request, txn, flow)
        call.offer = offer
        self._register(call, request)
        self.transactions.own(txn, call.on_caller_transaction)
        self.records.create(self._inbound_record(call, request))
        # The call lives in a task of the engine's own, not in the request's: transports count the
        # requests being answered to know when they are overloaded, and a call that rings for a
        # minute or stays up for an hour is not one of them.
        life = asyncio.get_running_loop().create_task(self._live(call, request))
        self._lives.add(life)
        life.add_done_callback(self._lives.discard)
        return None

    async def _live(self, call: Call, request: SipRequest) -> None:
        """Run the call to its end: its endpoint's call handler, or the callee it dialled."""
        try:
            if call.caller.endpoint.get("call_handler"):
                await HandlerRun(self, call, request).run()
            else:
                await self._direct(call, request)
        except Exception as exc:
            if db.unavailable(exc):  # a 503 the caller may retry; anything else is a fault of ours
                log.warning("SIP call %s: store unavailable: %s", call.sid, db.reason(exc))
                _fail(call, 503, "the store is unavailable", headers=[RETRY_LATER])
            else:
                log.exception("SIP call %s failed", call.sid)
                _fail(call, 500, "sipline failed")
        finally:
            _fail(call, 500, "the call's handler stopped without an outcome")
            call.release()

    def cancel(self, request: SipRequest, txn: ServerTransaction) -> SipResponse:
        """CANCEL (RFC 3261 §9.2): matched to its INVITE by branch; 200 for the CANCEL itself."""
        key = server_key(request)
        call = self._invites.get((key[0], key[1], "INVITE")) if key is not None else None
        if call is None:
            return respond(request, 481)
        response = respond(request, 200, to_tag=call.dialog.local_tag)
        self.transactions.respond(txn, response)
        call.caller_cancelled()
        return response

    async def in_dialog(self, request: SipRequest, txn: ServerTransaction, flow: Flow) -> SipResponse | None:
        found = self._find(request)
        if found is None:
            return respond(request, 481)
        call, side = found
        return call.in_dialog(side, request, txn)

    def ack(self, request: SipRequest, flow: Flow) -> None:
        """An ACK for a 2xx (its own transaction; ACKs of non-2xx never get here)."""
        found = self._find(request)
        if found is not None:
            call, side = found
            call.ack(side, request)

    def _find(self, request: SipRequest) -> tuple[Call, str] | None:
        dialog_id = request_dialog_id(request)
        return self.dialogs.get(dialog_id) if dialog_id is not None else None

    # --- the direct dial (no call handler) ------------------------------------------------------

    async def _direct(self, call: Call, request: SipRequest) -> None:
        """The Request-URI user (or the To user) names an endpoint of the caller's project."""
        user = _dialled_user(request, call.caller.realm, self.domains.is_own)
        if user is None:
            call.reject(404, "Not Found (dial a user of your own project's domain)")
            return
        callee = await self.db.read(find_callee, call.caller.project["id"], user, time.time())
        if callee is None:
            call.reject(404)
            return
        await self.service.nodes.learn({b.origin.node_id for b in callee.bindings if b.origin.node_id})
        found = targets(callee, self.reach)
        if not found:
            call.reject(480, why=f"{user} has no reachable device")
            return
        party = Party(f"sip:{user}@{call.caller.realm}", media.policy(callee.endpoint), callee.endpoint)
        legs = [(target, party, call_rules.new_sid()) for target in found]
        outcome = await call.dial(legs, timeout=self.settings.call_ring_timeout, identity=caller_identity(call.caller))
        if outcome.status == "answered":
            who = await call.bridged()
            if not call.ended:
                call.hang_up(f"the {who} hung up" if who != "limit" else "the call's time limit")
        elif not call.ended:
            call.reject(outcome.sip_status, why=f"{user}: {outcome.reason}", record_status=outcome.status)

    def reach(self, stored: binding_store.StoredBinding) -> Target | None:
        """A device's binding, as a target rung over the flow it registered on; None when gone."""
        origin = stored.origin
        if origin.node_id not in (None, self.local.node_id, self.local.worker_id):
            # Held by another node: through it, while it is alive (sipline.sipserver.relay).
            relay = self.service.relay
            route = relay.route(origin.node_id, origin)
            node_flow = relay.node_flow(origin.node_id)
            if route is None or node_flow is None:
                log.debug("SIP: %s is held by node %s, which is gone", stored.binding.contact, origin.node_id)
                return None
            return Target(stored.binding.contact, node_flow, route)
        if origin.transport == "udp":
            if self.udp is None:
                return None
            return Target(stored.binding.contact, UdpFlow(self.udp, (origin.source_host, origin.source_port)))
        flow = self.flows.get(origin.flow_id) if origin.flow_id else None
        if flow is None:
            return None  # the connection the device registered on is gone: it cannot be reached
        return Target(stored.binding.contact, flow)

    # --- legs ----------------------------------------------------------------------------------

    def new_leg(self, call: Call, target: Target, party: Party, sid: str, identity: Identity) -> Leg | DialOutcome:
        """A leg toward `target`, its offer filtered for `party`; a DialOutcome when the party
        cannot take the caller's offer (488)."""
        body = b""
        if call.offer is not None:
            conveyed = media.convey(call.offer, call.policy, party.policy)
            if isinstance(conveyed, Refusal):
                log.info("SIP: call %s: %s cannot take the offer: %s", call.sid, party.name, conveyed.reason)
                return DialOutcome("failed", conveyed.status, conveyed.reason)
            body = conveyed or b""
        flow = target.flow
        contact = self.local.contact(flow.transport, sid)
        headers = Headers()
        headers.add("Via", self.local.via(flow.transport))
        if target.route:
            headers.add("Route", target.route)
        max_forwards = int(call.invite.headers.get("Max-Forwards") or "70")
        headers.add("Max-Forwards", str(min(max_forwards - 1, 70)))
        headers.add("From", from_header(identity, call.caller.realm, self.local.tag()))
        headers.add("To", f"<{party.to}>")
        headers.add("Call-ID", self.local.call_id())
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", contact)
        headers.add("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO")
        headers.add("User-Agent", f"sipline/{__version__}")
        for name, value in party.headers:
            headers.add(name, value)
        if body:
            headers.add("Content-Type", media.SDP)
        invite = SipRequest("INVITE", target.contact, headers, body)
        leg = Leg(call, target, sid, invite, contact, party)
        self.records.create(
            {
                **new_record(sid, call.caller.project["id"], "outbound", self.local.worker_id),
                "parent_call_sid": call.sid,
                "from_address": f"sip:{identity.user}@{call.caller.realm}",
                "to_address": party.to,
                "caller_name": identity.display,
                "status": "queued",
                "sip_call_id": leg.call_id,
                "endpoint_id": party.endpoint["id"] if party.endpoint is not None else None,
            }
        )
        return leg

    # --- sending ---------------------------------------------------------------------------------

    def refuse_answer(self, dialog: Dialog, invite_cseq: int, flow: Flow) -> SipRequest:
        """End a dialog that a 2xx set up and nobody wants (another device answered first, the
        caller gave up, a fork answered late): ACK it, then BYE (RFC 3261 §13.2.2.4). Returns
        the ACK, for the 2xx's retransmissions."""
        via = self.local.via(flow.transport)
        ack = dialog.ack(invite_cseq, via)
        self.send(ack, flow)
        self.client_request(dialog.new_request("BYE", via), flow)
        return ack

    def _late_answer(self, invite: SipRequest, response: SipResponse, contact: str, flow: Flow) -> bytes | None:
        """A 2xx to the INVITE of a call that is over: a dialog of its own, refused."""
        try:
            dialog = Dialog.as_uac(invite, response, contact)
        except SipParseError as exc:
            log.info("SIP: unusable late 2xx from %r: %s", flow, exc.reason)
            return None
        return serialize(self.refuse_answer(dialog, invite_cseq(invite), flow))

    def send(self, message: SipRequest | SipResponse, flow: Flow) -> None:
        """Send outside any transaction (an ACK for a 2xx)."""
        flow.send(serialize(message))

    def client_request(self, request: SipRequest, flow: Flow, owner: Any | None = None) -> None:
        """Send a request in a client transaction of its own; its outcome goes to `owner`, if any."""

        def ignore(event: Deliver | TimedOut | NoAck) -> None:
            pass

        self.transactions.client(request, flow, owner or ignore)

    def new_tag(self) -> str:
        return self.local.tag()

    # --- bookkeeping -----------------------------------------------------------------------------

    def _check_hops(self, request: SipRequest) -> SipResponse | None:
        if request.headers.get("Max-Forwards") == "0":
            return respond(request, 483)
        prefix = self.local.loop_prefix
        if any(f"branch={prefix}" in via for via in request.headers.get_all("Via")[1:]):
            return respond(request, 482)  # it went out from here and came back
        return None

    def _register(self, call: Call, request: SipRequest) -> None:
        self.calls.add(call)
        self.track_dialog(call, call.dialog.id, "caller")
        call.invite_key = server_key(request)
        if call.invite_key is not None:
            self._invites[call.invite_key] = call

    def track_dialog(self, call: Call, dialog_id: DialogId, side: str) -> None:
        self.dialogs[dialog_id] = (call, side)
        call.dialog_ids.append(dialog_id)

    def untrack_dialog(self, call: Call, dialog_id: DialogId) -> None:
        if self.dialogs.get(dialog_id, (None,))[0] is call:
            del self.dialogs[dialog_id]

    def forget(self, call: Call) -> None:
        self.calls.discard(call)
        for dialog_id in call.dialog_ids:
            self.dialogs.pop(dialog_id, None)
        if call.invite_key is not None:
            self._invites.pop(call.invite_key, None)

    def _inbound_record(self, call: Call, request: SipRequest) -> dict[str, Any]:
        identity = caller_identity(call.caller)
        return {
            **new_record(call.sid, call.caller.project["id"], "inbound", self.local.worker_id),
            "from_address": f"sip:{call.caller.username}@{call.caller.realm}",
            "to_address": dialled(request),
            "caller_name": identity.display,
            "status": "ringing",
            "sip_call_id": request.headers.get("Call-ID"),
            "endpoint_id": call.caller.endpoint["id"],
        }

    async def close(self) -> None:
        for call in list(self.calls):
            call.hang_up("sipline is stopping")
        if self._lives:
            await asyncio.wait(list(self._lives), timeout=5)
        await self.records.close()
        await self.callbacks.aclose()
        await self.webhooks.aclose()


def _fail(call: Call, status: int, why: str, headers: Sequence[tuple[str, str]] = ()) -> None:
    """End a call that its task left unfinished: `status` to a caller not yet answered."""
    if call.ended:
        return
    if call.txn.final is None:
        call.reject(status, why=why, headers=headers)
    else:
        call.hang_up(why)


def _dialled_user(request: SipRequest, realm: str, is_own: Any) -> str | None:
    """The user a device dialled: the Request-URI's user when its host is the caller's domain (or
    this server), else None; a Request-URI without a user falls back to the To user."""
    try:
        uri = parse_uri(request.uri)
    except SipParseError:
        return None
    if uri.host != realm and not is_own(uri.host):
        return None
    if uri.user:
        return uri.user
    try:
        to = parse_uri(parse_name_addr(request.headers.get("To") or "").uri)
    except SipParseError:
        return None
    return to.user if to.host == realm or is_own(to.host) else None
