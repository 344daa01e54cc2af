"""REGISTER processing per RFC 3261 §10.3, as a pure function (Kamailio's `registrar`, not `usrloc`).

`process_register` takes the request, the endpoint's current bindings and the time, and returns
either an error to send or the complete new binding set for the caller to store. It knows nothing
about transports, authentication or the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sipline.sip.errors import SipParseError
from sipline.sip.headers import NO_PARAMS, Params, SipUri, parse_name_addr, parse_uri, uris_equal
from sipline.sip.message import SipRequest

_DELTA_RE = re.compile(r"[0-9]+")
_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_CSEQ_RE = re.compile(r"\s*([0-9]{1,10})\s+\S+\s*")


@dataclass(frozen=True)
class Binding:
    contact: str  # Contact URI as sent, without <>
    expires_at: float  # epoch seconds
    call_id: str
    cseq: int
    q: float | None
    registered_at: float  # first registration of this contact; kept across refreshes


@dataclass
class RegisterPolicy:
    min_expires: int = 60
    default_expires: int = 3600
    max_expires: int = 86400  # a cap: longer requests are granted this much
    max_bindings: int = 10


@dataclass(frozen=True)
class RegisterError:
    """Send `status reason` with these extra headers; nothing is stored."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RegisterSuccess:
    """Store `bindings` (the complete new set) and answer 200 with `headers`."""

    bindings: list[Binding]
    contact_headers: list[str]
    status: int = 200
    reason: str = "OK"

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [("Contact", value) for value in self.contact_headers]


RegisterResult = RegisterSuccess | RegisterError


class _Refused(Exception):
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.error = RegisterError(status, reason, headers or [])


def aor_user(request: SipRequest) -> tuple[str | None, str]:
    """(user, host) of the To URI, the address-of-record; SipParseError when it is not sip/sips."""
    to = request.headers.get("To")
    if to is None:
        raise SipParseError("REGISTER without To header")
    uri = parse_uri(parse_name_addr(to).uri)
    return uri.user, uri.host


def process_register(
    request: SipRequest, existing: list[Binding], now: float, policy: RegisterPolicy
) -> RegisterResult:
    try:
        return _process(request, existing, now, policy)
    except _Refused as refused:
        return refused.error


def _process(request: SipRequest, existing: list[Binding], now: float, policy: RegisterPolicy) -> RegisterResult:
    call_id = request.headers.get("Call-ID")
    cseq_match = _CSEQ_RE.fullmatch(request.headers.get("CSeq") or "")
    if not call_id or cseq_match is None:
        raise _Refused(400, "Missing or invalid Call-ID/CSeq")
    cseq = int(cseq_match[1])
    header_expires = _delta_seconds(request.headers.get("Expires"), "Expires header")
    live = [b for b in existing if b.expires_at > now]
    contacts = request.headers.get_all("Contact")

    if not contacts:  # a query (§10.3 step 5 case): report, change nothing
        return RegisterSuccess(live, _contact_headers(live, now))

    if any(value.strip() == "*" for value in contacts):
        if len(contacts) != 1 or request.headers.count("Contact") != 1 or header_expires != 0:
            raise _Refused(400, "Contact * requires Expires: 0 and no other Contact")
        for binding in live:  # §10.3 step 6: remove all, unless that would reorder a Call-ID
            _check_order(binding, call_id, cseq)
        return RegisterSuccess([], [])

    stored = {b.contact for b in live}
    requested: list[tuple[str, SipUri | None, int, float | None]] = []
    for value in contacts:
        uri: SipUri | None = None
        if value[:1] == "<" and value[-1:] == ">" and value[1:-1] in stored:
            # A refresh: a live binding's URI sent again as it was, without parameters. It was
            # parsed when first registered, and is read here as parse_name_addr would read it.
            raw_uri, params = value[1:-1], NO_PARAMS
        else:
            try:
                contact = parse_name_addr(value)
                uri = parse_uri(contact.uri)
            except SipParseError as exc:
                raise _Refused(400, f"Invalid Contact: {exc.reason}") from None
            raw_uri, params = contact.uri, contact.params
        expires = _delta_seconds(params.get("expires", None), "Contact expires")
        if "expires" in params and params["expires"] is None:
            raise _Refused(400, "Invalid Contact expires")
        if expires is None:
            expires = header_expires if header_expires is not None else policy.default_expires
        if 0 < expires < policy.min_expires:
            raise _Refused(423, "Interval Too Brief", [("Min-Expires", str(policy.min_expires))])
        requested.append((raw_uri, uri, min(expires, policy.max_expires), _q_value(params)))

    bindings = list(live)
    for raw_uri, uri, expires, q in requested:
        index = next((i for i, b in enumerate(bindings) if _same_contact(b.contact, raw_uri, uri)), None)
        registered_at = now
        if index is not None:
            prior = bindings[index]
            if any(prior is b for b in live):  # a contact repeated within this request is not a reorder
                _check_order(prior, call_id, cseq)
            registered_at = prior.registered_at
            del bindings[index]
        if expires > 0:
            bindings.append(Binding(raw_uri, now + expires, call_id, cseq, q, registered_at))

    if len(bindings) > policy.max_bindings:
        # Keep the newest registrations; sorted() is stable so ties keep request order.
        keep = sorted(bindings, key=lambda b: b.registered_at)[-policy.max_bindings :]
        bindings = [b for b in bindings if b in keep]
    return RegisterSuccess(bindings, _contact_headers(bindings, now))


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    # §10.3 step 7: same Call-ID needs a higher CSeq; an older or repeated one aborts the update.
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise _Refused(500, "Out of order CSeq")


def _delta_seconds(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not _DELTA_RE.fullmatch(value):
        raise _Refused(400, f"Invalid {what}")
    # Beyond 10 digits only the cap matters; this also avoids int() on absurdly long strings.
    return int(value) if len(value) <= 10 else 2**32


def _q_value(params: Params) -> float | None:
    if "q" not in params:
        return None
    value = (params["q"] or "").strip()
    if not _QVALUE_RE.fullmatch(value):
        raise _Refused(400, "Invalid Contact q-value")
    return float(value)


def _same_contact(stored: str, raw_uri: str, uri: SipUri | None) -> bool:
    """`uri` is raw_uri parsed, or None for a live binding's URI sent again (parsed on demand)."""
    if stored == raw_uri:  # a refresh, as sent the first time: no need to compare URI by URI
        return True
    try:
        return uris_equal(parse_uri(stored), uri or parse_uri(raw_uri))
    except SipParseError:
        return False  # a stored contact we cannot parse can only be replaced by expiry


def _contact_headers(bindings: list[Binding], now: float) -> list[str]:
    headers = []
    for binding in bindings:
        value = f"<{binding.contact}>;expires={max(0, round(binding.expires_at - now))}"
        if binding.q is not None:
            value += f";q={binding.q:g}"
        headers.append(value)
    return headers
