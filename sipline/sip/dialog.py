"""SIP dialogs (RFC 3261 §12): the state two user agents share, and the requests made within it.

sans-IO and transport-blind: a Dialog builds in-dialog requests (BYE, re-INVITE, UPDATE, INFO,
OPTIONS, and the ACK for a 2xx) and checks the ones it receives; where they are sent is its
owner's business (`next_hop` names the URI a request goes to under loose routing).

The B2BUA holds two per call: toward the caller it is the UAS (`Dialog.as_uas`), toward each
callee the UAC (`Dialog.as_uac`, one per early dialog: a fork answering with its own To tag makes
its own dialog).
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.sip.message import SipRequest, SipResponse

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag)


def request_dialog_id(request: SipRequest) -> DialogId | None:
    """The dialog an incoming request belongs to, as its receiver sees it: (Call-ID, To tag, From
    tag); None when it has no To tag (not in a dialog) or lacks the headers."""
    raise NotImplementedError


def response_dialog_id(response: SipResponse) -> DialogId | None:
    """The dialog a response to one of our requests belongs to: (Call-ID, From tag, To tag); None
    without a To tag."""
    raise NotImplementedError


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our address: From of our requests (without tag), e.g. '"Alice" <sip:alice@d>'
    remote_uri: str  # theirs: To of our requests (without tag)
    remote_target: str  # URI from their Contact: the Request-URI of our in-dialog requests
    route_set: tuple[str, ...]  # Route header values, in the order our requests carry them
    local_cseq: int  # CSeq of the last request we sent in this dialog
    remote_cseq: int | None  # CSeq of the last request we accepted from them
    local_contact: str  # our Contact header value, e.g. '<sip:leg-1@192.0.2.1:5060;transport=udp>'
    secure: bool = False

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uac(cls, invite: SipRequest, response: SipResponse, local_contact: str) -> Dialog:
        """From a 1xx (with a To tag) or 2xx to our INVITE (§12.1.2): route set from the
        response's Record-Route reversed, remote target from its Contact, local CSeq the INVITE's.
        SipParseError when the response cannot make a dialog (no To tag, no usable Contact on a 2xx)."""
        raise NotImplementedError

    @classmethod
    def as_uas(cls, invite: SipRequest, local_tag: str, local_contact: str) -> Dialog:
        """From an INVITE we answer (§12.1.1): route set from its Record-Route in order, remote
        target from its Contact, remote CSeq the INVITE's, local CSeq starting at 0 (our first
        request uses 1). SipParseError without a usable Contact."""
        raise NotImplementedError

    def new_request(
        self,
        method: str,
        via: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        max_forwards: int = 70,
    ) -> SipRequest:
        """An in-dialog request (§12.2.1.1): Request-URI the remote target, Route the route set,
        From local_uri;tag=local_tag, To remote_uri;tag=remote_tag, Call-ID, CSeq local_cseq+1
        (and local_cseq advances), our Contact on INVITE and UPDATE, `via` as the only Via (the
        caller makes it, with a fresh branch). Not for ACK (see `ack`) nor CANCEL."""
        raise NotImplementedError

    def ack(self, invite_cseq: int, via: str, *, body: bytes = b"", content_type: str | None = None) -> SipRequest:
        """The ACK for a 2xx to our INVITE with CSeq `invite_cseq` (§13.2.2.4): same CSeq number,
        method ACK, Route and Request-URI as any in-dialog request; local_cseq unchanged."""
        raise NotImplementedError

    def receive(self, request: SipRequest) -> int | None:
        """Check an incoming in-dialog request (§12.2.2): None when acceptable (remote_cseq
        advances; a re-INVITE's or UPDATE's Contact refreshes the remote target), else the status
        to answer: 500 for a CSeq lower than or equal to remote_cseq (ACK and CANCEL are exempt:
        they carry the CSeq of what they acknowledge or cancel)."""
        raise NotImplementedError

    def refresh(self, response: SipResponse) -> None:
        """A 2xx to our re-INVITE or UPDATE with a Contact: the new remote target (§12.2.1.2)."""
        raise NotImplementedError

    def next_hop(self) -> str:
        """The URI an in-dialog request goes to under loose routing: the first route's URI (without
        <> or header parameters), else the remote target."""
        raise NotImplementedError
