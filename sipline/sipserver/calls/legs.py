"""An outbound leg: the call sipline places toward one device, its own dialog (own Call-ID, tags, CSeq).

The leg reports to its call (`Call.leg_*`) and does what the call decides: cancel, acknowledge the
answer, hang up. RFC 3261 §9.1: a CANCEL waits for a provisional response; a 2xx that arrives for
a leg that lost (another device answered first, the caller gave up) is acknowledged and hung up.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from sipline.sip.dialog import Dialog
from sipline.sip.digest import answer_challenge, parse_challenge
from sipline.sip.errors import SipParseError
from sipline.sip.headers import generate_tag, parse_name_addr
from sipline.sip.message import SipRequest, SipResponse, serialize
from sipline.sip.transaction import ClientInvite, Deliver, NoAck, TimedOut, cancel_request, read_cseq

from ..flows import Flow
from .routing import Party, Target

if TYPE_CHECKING:
    from .call import Call

log = logging.getLogger("sipline.calls")


class Leg:
    def __init__(
        self,
        call: Call,
        target: Target,
        sid: str,
        invite: SipRequest,
        contact: str,
        party: Party,
    ) -> None:
        self.call = call
        self.target = target
        self.sid = sid
        self.invite = invite
        self.contact = contact
        self.party = party
        self.policy = party.policy
        self.authenticated = False  # answered a remote server's challenge once already
        self.txn: ClientInvite | None = None
        self.dialog: Dialog | None = None  # the answered one
        self.acks: dict[str, SipRequest] = {}  # remote tag -> the ACK sent, sent again on a repeated 2xx
        self.provisional = False  # a provisional response came: a CANCEL may be sent (§9.1)
        self.cancel_wanted = False
        self.cancelled = False
        self.final: int | None = None  # the INVITE's final status
        self.ringing = False
        self.answered_time: float | None = None
        self.ended_time: float | None = None
        self.final_response: SipResponse | None = None  # the INVITE's final response, once known

    @property
    def flow(self) -> Flow:
        return self.target.flow

    @property
    def call_id(self) -> str:
        return self.invite.headers.get("Call-ID") or ""

    def start(self) -> None:
        self.flow.use()
        txn = self.call.engine.transactions.client(self.invite, self.flow, self._on_invite)
        assert isinstance(txn, ClientInvite)
        self.txn = txn

    # --- what the INVITE transaction reports ----------------------------------------------------

    def _on_invite(self, event: Deliver | TimedOut | NoAck) -> None:
        if not isinstance(event, Deliver):
            if self.final is None:
                self.final = 408
                self.call.leg_failed(self, 408, "no answer from the device")
            return
        response = event.response
        status = response.status
        if status < 200:
            self.provisional = True
            if self.cancel_wanted and not self.cancelled:
                self._send_cancel()
            elif status > 100 and self.final is None:
                self.call.leg_progress(self, response)
        elif status < 300:
            self._on_answer(response)
        elif self.final is None:
            if status in (401, 407) and self._authenticate(response):
                return  # asked again, with credentials (the challenge was ACKed by the transaction)
            self.final = status
            self.final_response = response
            self.call.leg_failed(self, status, response.reason)

    def _authenticate(self, challenge: SipResponse) -> bool:
        """Answer a remote server's challenge once, with the credentials the document gave
        (RFC 3261 §22.2): the same INVITE, CSeq one higher, with Authorization."""
        party = self.party
        if self.authenticated or self.cancel_wanted or party.username is None or party.password is None:
            return False
        header = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
        for value in challenge.headers.get_all(header):
            parsed = parse_challenge(value)
            if parsed is None:
                continue
            answer = answer_challenge(
                parsed, "INVITE", self.invite.uri, party.username, party.password, cnonce=generate_tag()
            )
            if answer is None:
                continue
            headers = self.invite.headers.copy()
            headers.set("CSeq", f"{invite_cseq(self.invite) + 1} INVITE")
            headers.set("Via", self._via())
            headers.add("Authorization" if challenge.status == 401 else "Proxy-Authorization", answer)
            self.invite = SipRequest("INVITE", self.invite.uri, headers, self.invite.body)
            self.authenticated = True
            self.provisional = False
            self.start()
            self.flow.release()  # start() took the flow again for the same leg
            return True
        return False

    def _on_answer(self, response: SipResponse) -> None:
        tag = _to_tag(response)
        if tag in self.acks:  # a retransmitted 2xx: our ACK was lost
            self.call.engine.send(self.acks[tag], self.flow)
            return
        if self.dialog is not None and self.dialog.remote_tag == tag:
            return  # repeated while the caller's ACK is awaited: the ACK goes when it comes
        try:
            dialog = Dialog.as_uac(self.invite, response, self.contact)
        except SipParseError as exc:
            log.info("SIP: call %s: unusable 2xx from %r: %s", self.call.sid, self.flow, exc.reason)
            if self.final is None:
                self.final = 502
                self.call.leg_failed(self, 502, "unusable answer from the device")
            return
        if self.final is None and self.call.leg_answered(self, response, dialog):
            self.final = response.status
            self.final_response = response
            self.dialog = dialog
            self.answered_time = time.time()
            return
        # Lost: another device answered first, the caller gave up, or a second fork answered.
        self.acks[dialog.remote_tag] = self.call.engine.refuse_answer(dialog, invite_cseq(self.invite), self.flow)

    # --- what the call decides ------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop ringing (§9.1): CANCEL now if the device answered provisionally, else once it does."""
        if self.final is not None or self.cancel_wanted:
            return
        self.cancel_wanted = True
        if self.provisional:
            self._send_cancel()

    def _send_cancel(self) -> None:
        assert self.txn is not None
        self.cancelled = True
        self.call.engine.client_request(cancel_request(self.invite), self.flow)
        self.call.engine.transactions.cancelled(self.txn)

    def acknowledge(self, body: bytes = b"", content_type: str | None = None) -> None:
        """ACK the answer (when the caller has acknowledged ours, with its body if it carried SDP)."""
        if self.dialog is not None:
            self._acknowledge(self.dialog, body, content_type)

    def _acknowledge(self, dialog: Dialog, body: bytes = b"", content_type: str | None = None) -> None:
        ack = dialog.ack(invite_cseq(self.invite), self._via(), body=body, content_type=content_type)
        self.acks[dialog.remote_tag] = ack
        self.call.engine.send(ack, self.flow)

    def hang_up(self) -> None:
        """End the leg whatever its state: BYE once answered, else CANCEL."""
        if self.dialog is not None:
            if self.dialog.remote_tag not in self.acks:
                self.acknowledge()  # a 2xx must be acknowledged before the BYE (§15)
            self.call.engine.client_request(self.dialog.new_request("BYE", self._via()), self.flow)
        else:
            self.cancel()

    def retire(self) -> None:
        """The call is over: what its answered INVITE still owes the device (an ACK again for
        each copy of a 2xx, until Timer M) no longer needs the leg or its call."""
        if self.txn is not None and self.txn.state == "accepted":
            acks = {tag: serialize(ack) for tag, ack in self.acks.items()}
            self.call.engine.transactions.retire(self.txn, self.contact, acks)

    def _via(self) -> str:
        return self.call.engine.local.via(self.flow.transport)


def invite_cseq(invite: SipRequest) -> int:
    """The CSeq number of an INVITE we sent (1 if it had none it could read: ours always do)."""
    cseq = read_cseq(invite.headers)
    return cseq[0] if cseq is not None else 1


def _to_tag(response: SipResponse) -> str:
    try:
        return parse_name_addr(response.headers.get("To") or "").params.get("tag") or ""
    except SipParseError:
        return ""
