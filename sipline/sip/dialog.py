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

from sipline.sip.errors import SipParseError
from sipline.sip.headers import TOKEN_RE, Headers, canonical_name, parse_name_addr, parse_uri, parse_via, quote
from sipline.sip.message import SipRequest, SipResponse
from sipline.sip.transaction import read_cseq

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag)

_TARGET_REFRESH = ("INVITE", "UPDATE")  # the methods whose Contact is a new remote target (RFC 3311 for UPDATE)
# Fields a dialog request gets from the dialog itself: a second copy from the caller would clash.
_DIALOG_FIELDS = frozenset(
    ("Via", "Max-Forwards", "Route", "From", "To", "Call-ID", "CSeq", "Content-Type", "Content-Length")
)
_MAX_CSEQ = 2**32 - 1


def request_dialog_id(request: SipRequest) -> DialogId | None:
    """The dialog an incoming request belongs to, as its receiver sees it: (Call-ID, To tag, From
    tag); None when it has no To tag (not in a dialog) or lacks the headers."""
    return _call_id_and_tags(request)


def response_dialog_id(response: SipResponse) -> DialogId | None:
    """The dialog a response to one of our requests belongs to: (Call-ID, From tag, To tag); None
    without a To tag."""
    ids = _call_id_and_tags(response)
    return None if ids is None else (ids[0], ids[2], ids[1])


def _call_id_and_tags(message: SipRequest | SipResponse) -> tuple[str, str, str] | None:
    """(Call-ID, To tag, From tag): both dialog ids are made of them. A From without tag (an RFC
    2543 peer) counts as an empty tag; a To without tag means no dialog."""
    try:
        to_tag, from_tag = _tag(message, "To"), _tag(message, "From")
    except SipParseError:
        return None
    call_id = message.headers.get("Call-ID")
    if not call_id or not to_tag:
        return None
    return (call_id, to_tag, from_tag or "")


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
    secure: bool = False  # the INVITE's Request-URI was SIPS (so TLS carried it, hop by hop)

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uac(cls, invite: SipRequest, response: SipResponse, local_contact: str) -> Dialog:
        """From a 1xx (with a To tag) or 2xx to our INVITE (§12.1.2): route set from the
        response's Record-Route reversed, remote target from its Contact, local CSeq the INVITE's.
        SipParseError when the response cannot make a dialog (no To tag, no usable Contact on a 2xx).

        An early dialog from a 1xx without Contact targets the INVITE's Request-URI until a
        target refresh (`refresh` with the 2xx)."""
        _check_name_addr(local_contact, "local_contact")
        if not 100 < response.status < 300:
            raise SipParseError(f"a {response.status} response makes no dialog")
        remote_tag = _tag(response, "To")
        if not remote_tag:
            raise SipParseError("the response has no To tag: it makes no dialog")
        local_tag = _tag(invite, "From")
        if not local_tag:
            raise SipParseError("the INVITE has no From tag")
        target = _remote_target(response)
        if target is None and response.status >= 200:
            raise SipParseError("a 2xx to an INVITE must carry a Contact")
        return cls(
            call_id=_field(invite, "Call-ID"),
            local_tag=local_tag,
            remote_tag=remote_tag,
            local_uri=_address(_field(invite, "From")),
            remote_uri=_address(_field(invite, "To")),
            remote_target=target or invite.uri,
            route_set=tuple(reversed(_record_route(response))),
            local_cseq=_cseq_number(invite),
            remote_cseq=None,
            local_contact=local_contact,
            secure=_is_sips(invite.uri),
        )

    @classmethod
    def as_uas(cls, invite: SipRequest, local_tag: str, local_contact: str) -> Dialog:
        """From an INVITE we answer (§12.1.1): route set from its Record-Route in order, remote
        target from its Contact, remote CSeq the INVITE's, local CSeq starting at 0 (our first
        request uses 1). SipParseError without a usable Contact.

        A From without tag (an RFC 2543 peer) gives an empty remote tag."""
        _check_name_addr(local_contact, "local_contact")
        if not TOKEN_RE.fullmatch(local_tag):
            raise ValueError(f"local_tag {local_tag!r} is not a token")
        target = _remote_target(invite)
        if target is None:
            raise SipParseError("the INVITE has no Contact")
        return cls(
            call_id=_field(invite, "Call-ID"),
            local_tag=local_tag,
            remote_tag=_tag(invite, "From") or "",
            local_uri=_address(_field(invite, "To")),
            remote_uri=_address(_field(invite, "From")),
            remote_target=target,
            route_set=_record_route(invite),
            local_cseq=0,
            remote_cseq=_cseq_number(invite),
            local_contact=local_contact,
            secure=_is_sips(invite.uri),
        )

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
        caller makes it, with a fresh branch). Not for ACK (see `ack`) nor CANCEL.

        ValueError for what the caller got wrong (a bad method or Via, a header the dialog sets
        itself, a body without content_type); local_cseq then stays as it was."""
        if method in ("ACK", "CANCEL") or not TOKEN_RE.fullmatch(method):
            raise ValueError(f"new_request cannot make a {method!r} request")
        if self.local_cseq >= _MAX_CSEQ:
            raise ValueError("the dialog's CSeq space is exhausted")
        request = self._request(method, self.local_cseq + 1, via, headers or [], body, content_type, max_forwards)
        self.local_cseq += 1
        return request

    def ack(self, invite_cseq: int, via: str, *, body: bytes = b"", content_type: str | None = None) -> SipRequest:
        """The ACK for a 2xx to our INVITE with CSeq `invite_cseq` (§13.2.2.4): same CSeq number,
        method ACK, Route and Request-URI as any in-dialog request; local_cseq unchanged."""
        if not 0 <= invite_cseq <= _MAX_CSEQ:
            raise ValueError(f"{invite_cseq} is not a CSeq number")
        return self._request("ACK", invite_cseq, via, [], body, content_type, 70)

    def receive(self, request: SipRequest) -> int | None:
        """Check an incoming in-dialog request (§12.2.2): None when acceptable (remote_cseq
        advances; a re-INVITE's or UPDATE's Contact refreshes the remote target), else the status
        to answer: 500 for a CSeq lower than or equal to remote_cseq (ACK and CANCEL are exempt:
        they carry the CSeq of what they acknowledge or cancel).

        Also 481 for a request of another dialog, 400 without a usable CSeq; SipParseError for a
        target refresh with a malformed Contact (and then nothing changes)."""
        if request_dialog_id(request) != self.id:
            return 481
        cseq = read_cseq(request.headers)
        if cseq is None:
            return 400
        if request.method in ("ACK", "CANCEL"):
            return None
        if self.remote_cseq is not None and cseq[0] <= self.remote_cseq:
            return 500
        target = _remote_target(request) if request.method in _TARGET_REFRESH else None
        self.remote_cseq = cseq[0]
        if target is not None:
            self.remote_target = target
        return None

    def refresh(self, response: SipResponse) -> None:
        """A 2xx to our re-INVITE or UPDATE with a Contact: the new remote target (§12.2.1.2).

        Any other response changes nothing; a malformed Contact raises SipParseError."""
        cseq = read_cseq(response.headers)
        if not 200 <= response.status < 300 or cseq is None or cseq[1] not in _TARGET_REFRESH:
            return
        target = _remote_target(response)
        if target is not None:
            self.remote_target = target

    def next_hop(self) -> str:
        """The URI an in-dialog request goes to under loose routing: the first route's URI (without
        <> or header parameters), else the remote target."""
        if self.route_set:
            return parse_name_addr(self.route_set[0]).uri
        return self.remote_target

    def _request(
        self,
        method: str,
        cseq: int,
        via: str,
        extra: list[tuple[str, str]],
        body: bytes,
        content_type: str | None,
        max_forwards: int,
    ) -> SipRequest:
        try:
            parse_via(via)
        except SipParseError as exc:
            raise ValueError(f"via: {exc.reason}") from None
        if not 0 <= max_forwards <= 255:
            raise ValueError("Max-Forwards must be from 0 to 255")
        if body and content_type is None:
            raise ValueError("a body needs a content_type")
        refreshes = method in _TARGET_REFRESH
        for name, _ in extra:
            if canonical_name(name) in _DIALOG_FIELDS or (refreshes and canonical_name(name) == "Contact"):
                raise ValueError(f"the dialog sets {name} itself")
        out = Headers()
        out.add("Via", via)
        out.add("Max-Forwards", str(max_forwards))
        for route in self.route_set:
            out.add("Route", route)
        out.add("From", f"{self.local_uri};tag={self.local_tag}")
        out.add("To", f"{self.remote_uri};tag={self.remote_tag}" if self.remote_tag else self.remote_uri)
        out.add("Call-ID", self.call_id)
        out.add("CSeq", f"{cseq} {method}")
        if refreshes:
            out.add("Contact", self.local_contact)
        for name, value in extra:
            out.add(name, value)
        if content_type is not None:
            out.add("Content-Type", content_type)
        out.add("Content-Length", str(len(body)))
        return SipRequest(method, self.remote_target, out, body)


# --- reading messages: SipParseError for what a dialog cannot use --------------------------------


def _tag(message: SipRequest | SipResponse, name: str) -> str | None:
    """The tag of From or To; None without one. It goes back into our headers, so it must be a token
    (a quoted tag, allowed by the generic-param grammar, could carry anything)."""
    tag = parse_name_addr(_field(message, name)).params.get("tag")
    if tag is not None and not TOKEN_RE.fullmatch(tag):
        raise SipParseError(f"the {name} tag is not a token")
    return tag


def _remote_target(message: SipRequest | SipResponse) -> str | None:
    """The URI of the one Contact (a SIP or SIPS URI, RFC 3261 §8.1.1.8), without the URI headers
    that have no place in a Request-URI; None without Contact."""
    contacts = message.headers.get_all("Contact")
    if not contacts:
        return None
    if len(contacts) > 1:
        raise SipParseError("a dialog needs one Contact, not several")
    uri = parse_name_addr(contacts[0]).uri
    headers = parse_uri(uri).headers
    return uri if headers is None else uri[: -len(headers) - 1]


def _record_route(message: SipRequest | SipResponse) -> tuple[str, ...]:
    """Record-Route values in received order, each a usable SIP route (next_hop parses them)."""
    routes = tuple(message.headers.get_all("Record-Route"))
    for route in routes:
        parse_uri(parse_name_addr(route).uri)
    return routes


def _address(value: str) -> str:
    """A From/To value without its tag, always in <> form so that `;tag=` can be appended after it."""
    addr = parse_name_addr(value)
    display = f"{quote(addr.display)} " if addr.display else ""
    params = "".join(_param(name, v) for name, v in addr.params.items() if name != "tag")
    return f"{display}<{addr.uri}>{params}"


def _param(name: str, value: str | None) -> str:
    if value is None:
        return f";{name}"
    return f";{name}={value if TOKEN_RE.fullmatch(value) else quote(value)}"


def _is_sips(uri: str) -> bool:
    return uri[:5].lower() == "sips:"


def _field(message: SipRequest | SipResponse, name: str) -> str:
    value = message.headers.get(name)
    if not value:
        raise SipParseError(f"no {name} header")
    return value


def _cseq_number(message: SipRequest | SipResponse) -> int:
    cseq = read_cseq(message.headers)
    if cseq is None:
        raise SipParseError("no usable CSeq")
    return cseq[0]


def _check_name_addr(value: str, what: str) -> None:
    """A value the caller hands in (our Contact): its mistakes are ValueError, not the peer's."""
    try:
        parse_name_addr(value)
    except SipParseError as exc:
        raise ValueError(f"{what}: {exc.reason}") from None
