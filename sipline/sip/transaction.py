"""SIP transactions (RFC 3261 §17, with RFC 6026's Accepted states): four state machines, sans-IO.

A transaction is fed messages and time, and answers with what to do next: messages to transmit
(over the transaction's own flow, which its owner knows) and events for its user (the TU, the
call engine). It never reads a clock: every method takes `now`, and `deadline` says when `tick`
must be called next (None: no timer pending). Reliable transports (TCP, TLS) get no
retransmissions and zero-length wait states, as §17 says.

    txn = ClientInvite(invite, reliable=False)
    outputs = txn.start(now)                 # [Transmit(invite)]; deadline = now + T1 (Timer A)
    outputs = txn.tick(txn.deadline)         # [Transmit(invite)] again (Timer A doubled)
    outputs = txn.receive(response, now)     # [Deliver(response)], [Transmit(ack), Deliver(...)] ...

The owner forgets a transaction once it returns `Terminated`.

Timers (RFC 3261 Table 4, RFC 6026): A/B/D client INVITE, E/F/K client non-INVITE, G/H/I server
INVITE, J server non-INVITE, L server INVITE Accepted, M client INVITE Accepted.

One deliberate extension: over unreliable transports the server INVITE transaction itself
retransmits a 2xx until `acknowledged()` (RFC 3261 §13.3.1.4 gives that job to the TU core); when
no ACK came within 64*T1 it reports `NoAck`, and the TU ends the call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sipline.sip.errors import SipParseError
from sipline.sip.headers import TOKEN_RE, Headers, Via, parse_via
from sipline.sip.message import SipRequest, SipResponse

T1 = 0.5
T2 = 4.0
T4 = 5.0
TIMEOUT = 64 * T1  # Timers B, F, H, J, L, M: 32 s
TIMER_D = 32.0  # at least 32 s whatever T1 is: the longest a failure may still be retransmitted

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: a branch starting with it is a transaction id


@dataclass(frozen=True)
class Transmit:
    """Send this message over the transaction's flow."""

    message: SipRequest | SipResponse


@dataclass(frozen=True)
class Deliver:
    """(client) A response for the TU: every provisional, the final, and (INVITE) each further 2xx."""

    response: SipResponse


@dataclass(frozen=True)
class TimedOut:
    """No final response in time (client: Timer B/F, the TU acts as on a 408); or no ACK for a
    non-2xx final response (server INVITE: Timer H)."""


@dataclass(frozen=True)
class NoAck:
    """(server INVITE) The 2xx was not acknowledged within 64*T1: the TU ends the dialog."""


@dataclass(frozen=True)
class Terminated:
    """The transaction is over: its owner forgets it."""


Output = Transmit | Deliver | TimedOut | NoAck | Terminated


class TransactionError(Exception):
    """A method called in a state that does not allow it (a TU bug, never a peer's doing)."""


# --- matching (RFC 3261 §17.1.3, §17.2.3) --------------------------------------------------------

ServerKey = tuple[str, str, str]  # (branch, sent-by "host:port" of the top Via, method; ACK -> INVITE)
ClientKey = tuple[str, str]  # (branch of our top Via, CSeq method)

_CSEQ_RE = re.compile(rf"\s*([0-9]{{1,10}})\s+({TOKEN_RE.pattern})\s*")


def read_cseq(headers: Headers) -> tuple[int, str] | None:
    """(number, method) of the CSeq header; None when it is absent or malformed."""
    return headers.derived(_read_cseq)  # once per message, however many layers ask


def _read_cseq(headers: Headers) -> tuple[int, str] | None:
    match = _CSEQ_RE.fullmatch(headers.get("CSeq") or "")
    return (int(match[1]), match[2]) if match else None


def top_via(message: SipRequest | SipResponse) -> Via | None:
    """The message's parsed top Via; None when absent or malformed. Parsed once per message (and
    again only after its headers change): server_key alone is asked 3 times a request."""
    return message.headers.derived(_read_top_via)


def _read_top_via(headers: Headers) -> Via | None:
    value = headers.get("Via")
    if value is None:
        return None
    try:
        return parse_via(value)
    except SipParseError:
        return None


def server_key(request: SipRequest) -> ServerKey | None:
    """The server transaction a request belongs to; None for a request whose top Via branch lacks
    the RFC 3261 magic cookie (an RFC 2543 peer: matched by nothing, answered as new)."""
    branch_sent_by = request.headers.derived(_branch_and_sent_by)  # it is asked 3 times a request
    if branch_sent_by is None:
        return None
    # The ACK for a non-2xx final response belongs to the INVITE's transaction; a CANCEL has its own.
    method = "INVITE" if request.method == "ACK" else request.method
    return (*branch_sent_by, method)


def _branch_and_sent_by(headers: Headers) -> tuple[str, str] | None:
    via = headers.derived(_read_top_via)
    if via is None or via.branch is None or not via.branch.startswith(MAGIC_COOKIE):
        return None
    port = 5060 if via.port is None else via.port
    return (via.branch, f"{via.host}:{port}")


def client_key(response: SipResponse) -> ClientKey | None:
    """The client transaction a response belongs to (top Via branch, CSeq method); None if unusable."""
    via = top_via(response)
    cseq = read_cseq(response.headers)
    if via is None or not via.branch or cseq is None:
        return None
    return (via.branch, cseq[1])


def cancel_request(invite: SipRequest) -> SipRequest:
    """The CANCEL for a client INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq
    number and top Via (so the same branch), Route headers copied, Max-Forwards 70, no body."""
    return _sibling(invite, "CANCEL", _required(invite, "To"))


def _ack_for(invite: SipRequest, response: SipResponse) -> SipRequest:
    """The ACK for a non-2xx final response (§17.1.1.3): as the CANCEL, with the response's To (and tag)."""
    return _sibling(invite, "ACK", _required(response, "To"))


def _sibling(invite: SipRequest, method: str, to: str) -> SipRequest:
    """A request of the INVITE's own transaction: the INVITE's fields but `method`, `to` and no body."""
    cseq = read_cseq(invite.headers)
    if cseq is None:
        raise ValueError("the INVITE has no usable CSeq")
    headers = Headers()
    headers.add("Via", _required(invite, "Via"))  # the top one only: get() takes the first element
    headers.add("Max-Forwards", "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", _required(invite, "From"))
    headers.add("To", to)
    headers.add("Call-ID", _required(invite, "Call-ID"))
    headers.add("CSeq", f"{cseq[0]} {method}")
    headers.add("Content-Length", "0")
    return SipRequest(method, invite.uri, headers)


def _required(message: SipRequest | SipResponse, name: str) -> str:
    value = message.headers.get(name)
    if value is None:
        raise ValueError(f"the message has no {name} header")
    return value


def _own_key(request: SipRequest) -> ClientKey:
    """The key of a request we send; it must carry what every request needs (RFC 3261 §8.1.1)."""
    via = top_via(request)
    cseq = read_cseq(request.headers)
    if via is None or not via.branch or cseq is None or cseq[1] != request.method:
        raise ValueError("a client transaction needs a request with a top Via branch and a matching CSeq")
    for name in ("From", "To", "Call-ID"):
        _required(request, name)
    return (via.branch, request.method)


# --- timers shared by the four machines ------------------------------------------------------------


class _Transaction:
    """Named one-shot timers and the loop that fires them; each machine says what a timer does.

    Retransmission timers (A, E, G) are re-armed from the moment they fire, as §17 words it ("reset
    the timer with a value of ..."), so a late `tick` never bursts several copies.
    Every method that takes `now` first fires what is due, so `deadline` is never behind `now`.
    """

    state: str

    def __init__(self, state: str, *, reliable: bool) -> None:
        self.state = state
        self.reliable = reliable
        self._timers: dict[str, float] = {}
        self._interval = T1  # of the running retransmission timer

    @property
    def deadline(self) -> float | None:
        """When `tick` is due next; None while no timer runs, and always once terminated."""
        return min(self._timers.values(), default=None)

    @property
    def lingering(self) -> bool:
        """Nothing is left to decide: until `deadline` the machine only absorbs retransmissions
        (a server non-INVITE answers each with its final response again, a client INVITE each
        failure with its ACK). Its owner may keep just that much of it, and drop the machine."""
        return self.state != "terminated" and self._lingers()

    def _lingers(self) -> bool:
        return self.state == "completed"

    def tick(self, now: float) -> list[Output]:
        """Fire every timer due at `now`, earliest first (call it at `deadline`; early, it does nothing)."""
        out: list[Output] = []
        while self.state != "terminated":
            due = [(when, name) for name, when in self._timers.items() if when <= now]
            if not due:
                break
            name = min(due)[1]
            del self._timers[name]
            out += self._fire(name, now)
        return out

    def _fire(self, timer: str, now: float) -> list[Output]:
        raise NotImplementedError

    def _arm(self, timer: str, now: float, interval: float) -> None:
        self._interval = interval
        self._timers[timer] = now + interval

    def _linger(self, state: str, timer: str, delay: float, now: float, out: list[Output]) -> list[Output]:
        """Enter a state that only absorbs retransmissions (D, I, J, K): over a reliable transport
        none come, so it lasts no time at all."""
        if self.reliable:
            return self._terminate(out)
        self.state = state
        self._timers = {timer: now + delay}
        return out

    def _terminate(self, out: list[Output], *events: TimedOut | NoAck) -> list[Output]:
        self.state = "terminated"
        self._timers.clear()
        return [*out, *events, Terminated()]


# --- client transactions ---------------------------------------------------------------------------


class _Client(_Transaction):
    """What both client machines share: sending the request with a retransmission timer (A or E)
    and a timeout (B or F), and giving up on a transport error before the final response."""

    request: SipRequest
    key: ClientKey

    def __init__(self, request: SipRequest, *, reliable: bool, first_state: str, timers: tuple[str, str]) -> None:
        super().__init__(first_state, reliable=reliable)
        self.request = request
        self.key = _own_key(request)
        self._started = False
        self._waiting = (first_state, "proceeding")  # the states before a final response
        self._retransmit_timer, self._timeout_timer = timers

    def start(self, now: float) -> list[Output]:
        if self._started:
            raise TransactionError("the transaction was already started")
        self._started = True
        self._timers[self._timeout_timer] = now + TIMEOUT
        if not self.reliable:
            self._arm(self._retransmit_timer, now, T1)
        return [Transmit(self.request)]

    def transport_error(self, now: float) -> list[Output]:
        out = self.tick(now)
        if self._awaiting_final():
            return self._terminate(out, TimedOut())
        return out

    def _awaiting_final(self) -> bool:
        return self._started and self.state in self._waiting


class ClientInvite(_Client):
    """RFC 3261 §17.1.1 with RFC 6026: Calling -> Proceeding -> Completed / Accepted -> Terminated.

    start: Transmit(invite); Timer A (unreliable: T1, doubling, no cap) and Timer B (64*T1).
    1xx: Deliver; state Proceeding (Timer A stops). 2xx: Deliver; state Accepted, Timer M (64*T1);
    each further 2xx (a fork, a retransmission) is Delivered too; the TU sends its own ACK.
    300-699: Transmit(ACK built per §17.1.1.3) and Deliver, state Completed, Timer D (32 s
    unreliable, 0 reliable); a retransmitted final response in Completed: Transmit(ACK) again,
    no Deliver. Timer B fires in Calling only (RFC 3261: TimedOut, Terminated); in Proceeding
    the TU bounds ringing itself, and after it sent a CANCEL it calls `cancelled`, which gives
    the INVITE 64*T1 more for its final response (§9.1) before TimedOut, Terminated.
    transport_error (any state before a final response): TimedOut, Terminated.
    """

    state: str  # "calling" | "proceeding" | "accepted" | "completed" | "terminated"

    def __init__(self, request: SipRequest, *, reliable: bool) -> None:
        if request.method != "INVITE":
            raise ValueError(f"ClientInvite is for INVITE, not {request.method}")
        super().__init__(request, reliable=reliable, first_state="calling", timers=("A", "B"))
        self._ack: SipRequest | None = None  # sent for the non-2xx final, again for each copy of it

    def receive(self, response: SipResponse, now: float) -> list[Output]:
        out = self.tick(now)
        if not self._started or self.state == "terminated" or client_key(response) != self.key:
            return out
        status = response.status
        if self._awaiting_final():
            if status < 200:
                self.state = "proceeding"
                self._timers.pop("A", None)
                self._timers.pop("B", None)  # a "cancel" bound, if any, keeps running
                return [*out, Deliver(response)]
            if status < 300:
                self.state = "accepted"
                self._timers = {"M": now + TIMEOUT}
                return [*out, Deliver(response)]
            self._ack = _ack_for(self.request, response)
            return self._linger("completed", "D", TIMER_D, now, [*out, Transmit(self._ack), Deliver(response)])
        if self.state == "accepted" and 200 <= status < 300:
            return [*out, Deliver(response)]
        if self.state == "completed" and status >= 300 and self._ack is not None:
            return [*out, Transmit(self._ack)]
        return out

    def cancelled(self, now: float) -> list[Output]:
        """The TU sent a CANCEL for this INVITE: a final response is due within 64*T1 (§9.1).

        After a final response there is nothing left to bound: then it does nothing (a CANCEL that
        crossed the final response is no TU bug)."""
        if not self._started:
            raise TransactionError("cancelled before the INVITE was sent")
        out = self.tick(now)
        if self._awaiting_final():
            self._timers.setdefault("cancel", now + TIMEOUT)  # a second CANCEL extends nothing
        return out

    def _fire(self, timer: str, now: float) -> list[Output]:
        if timer == "A":
            self._arm("A", now, 2 * self._interval)
            return [Transmit(self.request)]
        if timer in ("B", "cancel"):
            return self._terminate([], TimedOut())
        return self._terminate([])  # D, M


class ClientNonInvite(_Client):
    """RFC 3261 §17.1.2: Trying -> Proceeding -> Completed -> Terminated.

    start: Transmit(request); Timer E (unreliable: T1, doubling up to T2; in Proceeding it stays at
    T2) and Timer F (64*T1). 1xx: Deliver, Proceeding. 200-699: Deliver, Completed, Timer K (T4
    unreliable, 0 reliable: Terminated at once). Timer F: TimedOut, Terminated.
    transport_error (Trying, Proceeding): TimedOut, Terminated.
    """

    state: str  # "trying" | "proceeding" | "completed" | "terminated"

    def __init__(self, request: SipRequest, *, reliable: bool) -> None:
        if request.method in ("INVITE", "ACK"):
            raise ValueError(f"ClientNonInvite is not for {request.method}")
        super().__init__(request, reliable=reliable, first_state="trying", timers=("E", "F"))

    def receive(self, response: SipResponse, now: float) -> list[Output]:
        out = self.tick(now)
        if not self._awaiting_final() or client_key(response) != self.key:
            return out  # Completed absorbs retransmitted finals
        if response.status < 200:
            self.state = "proceeding"
            return [*out, Deliver(response)]
        return self._linger("completed", "K", T4, now, [*out, Deliver(response)])

    def _fire(self, timer: str, now: float) -> list[Output]:
        if timer == "E":
            self._arm("E", now, T2 if self.state == "proceeding" else min(2 * self._interval, T2))
            return [Transmit(self.request)]
        if timer == "F":
            return self._terminate([], TimedOut())
        return self._terminate([])  # K


# --- server transactions ---------------------------------------------------------------------------


class ServerInvite(_Transaction):
    """RFC 3261 §17.2.1 with RFC 6026: Proceeding -> Completed -> Confirmed / Accepted -> Terminated.

    Created for a new INVITE (the TU decides whether to send 100 Trying: `respond` with a 100).
    receive(INVITE retransmission): Transmit the last response sent, if any.
    respond(1xx): Transmit, stays Proceeding. respond(2xx): Transmit, Accepted, Timer L (64*T1);
    unreliable: the 2xx is retransmitted at T1, 2*T1, ... capped at T2 until `acknowledged`;
    if L fires first: NoAck, then Terminated; if acknowledged, Terminated when L fires.
    respond(300-699): Transmit, Completed; Timer G (unreliable: T1 doubling to T2) retransmits it,
    Timer H (64*T1): TimedOut, Terminated. receive(ACK) in Completed: Confirmed, Timer I (T4
    unreliable, 0 reliable), then Terminated. ACKs in other states are ignored.

    The last response is not sent again once it needs no more sending: in Confirmed, and in
    Accepted after `acknowledged`. `key` is None for an RFC 2543 request: nothing matches it, so
    `receive` ignores everything. NoAck comes over reliable transports too (no ACK ever came).
    """

    request: SipRequest
    key: ServerKey | None  # None for an RFC 2543 request
    state: str  # "proceeding" | "accepted" | "completed" | "confirmed" | "terminated"
    final: SipResponse | None  # the final response sent, if any

    def __init__(self, request: SipRequest, *, reliable: bool) -> None:
        if request.method != "INVITE":
            raise ValueError(f"ServerInvite is for INVITE, not {request.method}")
        super().__init__("proceeding", reliable=reliable)
        self.request = request
        self.key = server_key(request)
        self.final = None
        self._last: SipResponse | None = None  # what a retransmitted INVITE gets
        self._acknowledged = False

    def receive(self, request: SipRequest, now: float) -> list[Output]:
        out = self.tick(now)
        if self.state == "terminated" or self.key is None or server_key(request) != self.key:
            return out
        if request.method == "ACK":
            if self.state != "completed":
                return out
            return self._linger("confirmed", "I", T4, now, out)
        if self._last is None or self.state == "confirmed" or self._acknowledged:
            return out
        return [*out, Transmit(self._last)]

    def respond(self, response: SipResponse, now: float) -> list[Output]:
        if self.state != "proceeding":
            raise TransactionError(f"respond in state {self.state}: the final response was already sent")
        _check_status(response)
        # No timer runs in Proceeding, so nothing can be due: no catching up to do.
        self._last = response
        if response.status < 200:
            return [Transmit(response)]
        self.final = response
        if response.status < 300:
            self.state = "accepted"
            self._timers["L"] = now + TIMEOUT
        else:
            self.state = "completed"
            self._timers["H"] = now + TIMEOUT
        if not self.reliable:
            self._arm("G", now, T1)  # the same schedule serves the 2xx (§13.3.1.4) and the failure
        return [Transmit(response)]

    def acknowledged(self, now: float) -> list[Output]:
        """The TU matched an ACK to this transaction's 2xx: stop retransmitting it."""
        if self.state == "terminated":
            return []  # a late copy of the ACK: the transaction is already over
        if self.state != "accepted":
            raise TransactionError(f"acknowledged in state {self.state}: no 2xx was sent")
        out = self.tick(now)
        self._acknowledged = True
        self._timers.pop("G", None)
        return out

    def _lingers(self) -> bool:
        # Confirmed: absorbs the ACK's copies. Accepted and acknowledged: absorbs the INVITE's
        # copies, answered no more (the ACKs of a 2xx belong to the dialog, not to here).
        return self.state == "confirmed" or (self.state == "accepted" and self._acknowledged)

    def _fire(self, timer: str, now: float) -> list[Output]:
        if timer == "G":
            self._arm("G", now, min(2 * self._interval, T2))
            assert self.final is not None  # G runs only once a final response was sent
            return [Transmit(self.final)]
        if timer == "H":
            return self._terminate([], TimedOut())
        if timer == "L" and not self._acknowledged:
            return self._terminate([], NoAck())
        return self._terminate([])  # I, L


class ServerNonInvite(_Transaction):
    """RFC 3261 §17.2.2: Trying -> Proceeding -> Completed -> Terminated.

    receive(retransmission): in Proceeding/Completed Transmit the last response again; in Trying
    nothing. respond(1xx): Transmit, Proceeding. respond(final): Transmit, Completed, Timer J
    (64*T1 unreliable; 0 reliable: Terminated at once).
    """

    request: SipRequest
    key: ServerKey | None  # None for an RFC 2543 request
    state: str  # "trying" | "proceeding" | "completed" | "terminated"
    final: SipResponse | None

    def __init__(self, request: SipRequest, *, reliable: bool) -> None:
        if request.method in ("INVITE", "ACK"):
            raise ValueError(f"ServerNonInvite is not for {request.method}")
        super().__init__("trying", reliable=reliable)
        self.request = request
        self.key = server_key(request)
        self.final = None
        self._last: SipResponse | None = None

    def receive(self, request: SipRequest, now: float) -> list[Output]:
        out = self.tick(now)
        if self.state == "terminated" or self._last is None or self.key is None or server_key(request) != self.key:
            return out
        return [*out, Transmit(self._last)]

    def respond(self, response: SipResponse, now: float) -> list[Output]:
        if self.state not in ("trying", "proceeding"):
            raise TransactionError(f"respond in state {self.state}: the final response was already sent")
        _check_status(response)
        self._last = response
        if response.status < 200:
            self.state = "proceeding"
            return [Transmit(response)]
        self.final = response
        return self._linger("completed", "J", TIMEOUT, now, [Transmit(response)])

    def _fire(self, timer: str, now: float) -> list[Output]:
        return self._terminate([])  # J


def _check_status(response: SipResponse) -> None:
    if not 100 <= response.status <= 699:
        raise ValueError(f"status {response.status} is not a SIP status")
