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

from dataclasses import dataclass

from sipline.sip.message import SipRequest, SipResponse

T1 = 0.5
T2 = 4.0
T4 = 5.0
TIMEOUT = 64 * T1  # Timers B, F, H, J, L, M: 32 s


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


def server_key(request: SipRequest) -> ServerKey | None:
    """The server transaction a request belongs to; None for a request whose top Via branch lacks
    the RFC 3261 magic cookie (an RFC 2543 peer: matched by nothing, answered as new)."""
    raise NotImplementedError


def client_key(response: SipResponse) -> ClientKey | None:
    """The client transaction a response belongs to (top Via branch, CSeq method); None if unusable."""
    raise NotImplementedError


def cancel_request(invite: SipRequest) -> SipRequest:
    """The CANCEL for a client INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq
    number and top Via (so the same branch), Route headers copied, Max-Forwards 70, no body."""
    raise NotImplementedError


# --- client transactions ---------------------------------------------------------------------------


class ClientInvite:
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

    def __init__(self, request: SipRequest, *, reliable: bool) -> None:
        raise NotImplementedError

    request: SipRequest
    reliable: bool
    key: ClientKey
    state: str  # "calling" | "proceeding" | "accepted" | "completed" | "terminated"
    deadline: float | None

    def start(self, now: float) -> list[Output]:
        raise NotImplementedError

    def receive(self, response: SipResponse, now: float) -> list[Output]:
        raise NotImplementedError

    def tick(self, now: float) -> list[Output]:
        """Fire every timer due at `now` (call it at `deadline`; calling it early does nothing)."""
        raise NotImplementedError

    def transport_error(self, now: float) -> list[Output]:
        raise NotImplementedError

    def cancelled(self, now: float) -> list[Output]:
        """The TU sent a CANCEL for this INVITE: a final response is due within 64*T1 (§9.1)."""
        raise NotImplementedError


class ClientNonInvite:
    """RFC 3261 §17.1.2: Trying -> Proceeding -> Completed -> Terminated.

    start: Transmit(request); Timer E (unreliable: T1, doubling up to T2; in Proceeding it stays at
    T2) and Timer F (64*T1). 1xx: Deliver, Proceeding. 200-699: Deliver, Completed, Timer K (T4
    unreliable, 0 reliable: Terminated at once). Timer F: TimedOut, Terminated.
    """

    def __init__(self, request: SipRequest, *, reliable: bool) -> None:
        raise NotImplementedError

    request: SipRequest
    reliable: bool
    key: ClientKey
    state: str  # "trying" | "proceeding" | "completed" | "terminated"
    deadline: float | None

    def start(self, now: float) -> list[Output]:
        raise NotImplementedError

    def receive(self, response: SipResponse, now: float) -> list[Output]:
        raise NotImplementedError

    def tick(self, now: float) -> list[Output]:
        raise NotImplementedError

    def transport_error(self, now: float) -> list[Output]:
        raise NotImplementedError


# --- server transactions ---------------------------------------------------------------------------


class ServerInvite:
    """RFC 3261 §17.2.1 with RFC 6026: Proceeding -> Completed -> Confirmed / Accepted -> Terminated.

    Created for a new INVITE (the TU decides whether to send 100 Trying: `respond` with a 100).
    receive(INVITE retransmission): Transmit the last response sent, if any.
    respond(1xx): Transmit, stays Proceeding. respond(2xx): Transmit, Accepted, Timer L (64*T1);
    unreliable: the 2xx is retransmitted at T1, 2*T1, ... capped at T2 until `acknowledged`;
    if L fires first: NoAck, then Terminated; if acknowledged, Terminated when L fires.
    respond(300-699): Transmit, Completed; Timer G (unreliable: T1 doubling to T2) retransmits it,
    Timer H (64*T1): TimedOut, Terminated. receive(ACK) in Completed: Confirmed, Timer I (T4
    unreliable, 0 reliable), then Terminated. ACKs in other states are ignored.
    """

    def __init__(self, request: SipRequest, *, reliable: bool) -> None:
        raise NotImplementedError

    request: SipRequest
    reliable: bool
    key: ServerKey
    state: str  # "proceeding" | "accepted" | "completed" | "confirmed" | "terminated"
    deadline: float | None
    final: SipResponse | None  # the final response sent, if any

    def receive(self, request: SipRequest, now: float) -> list[Output]:
        raise NotImplementedError

    def respond(self, response: SipResponse, now: float) -> list[Output]:
        raise NotImplementedError

    def acknowledged(self, now: float) -> list[Output]:
        """The TU matched an ACK to this transaction's 2xx: stop retransmitting it."""
        raise NotImplementedError

    def tick(self, now: float) -> list[Output]:
        raise NotImplementedError


class ServerNonInvite:
    """RFC 3261 §17.2.2: Trying -> Proceeding -> Completed -> Terminated.

    receive(retransmission): in Proceeding/Completed Transmit the last response again; in Trying
    nothing. respond(1xx): Transmit, Proceeding. respond(final): Transmit, Completed, Timer J
    (64*T1 unreliable; 0 reliable: Terminated at once).
    """

    def __init__(self, request: SipRequest, *, reliable: bool) -> None:
        raise NotImplementedError

    request: SipRequest
    reliable: bool
    key: ServerKey
    state: str  # "trying" | "proceeding" | "completed" | "terminated"
    deadline: float | None
    final: SipResponse | None

    def receive(self, request: SipRequest, now: float) -> list[Output]:
        raise NotImplementedError

    def respond(self, response: SipResponse, now: float) -> list[Output]:
        raise NotImplementedError

    def tick(self, now: float) -> list[Output]:
        raise NotImplementedError
