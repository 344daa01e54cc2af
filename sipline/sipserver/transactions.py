"""The transaction layer at work: the sans-IO machines of `sipline.sip.transaction`, their timers on
the event loop, their messages over their flows, their events to their owners.

Time for the machines is the loop's monotonic clock. Most transactions outlive their purpose by
up to 32 s (Timers D, I, J, K, L, M: RFC 3261 §17, RFC 6026), only to absorb late copies of
what was already handled. Once a machine is `lingering`, that duty is kept compactly, as plain
values in an expiring map (the bytes to send again, the flow as an address), and the machine,
its loop timer and its owner (a whole call, for an INVITE) are dropped: at a few hundred calls
or thousands of REGISTERs a second, tens of thousands of live objects otherwise made each of
the cyclic collector's full passes stall every answer for over 100 ms (measured).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sipline.sip.dialog import response_dialog_id
from sipline.sip.errors import SipParseError
from sipline.sip.expiring import ExpiringCache
from sipline.sip.message import SipRequest, SipResponse, parse_message, serialize
from sipline.sip.transaction import (
    TIMEOUT,
    ClientInvite,
    ClientKey,
    ClientNonInvite,
    Deliver,
    NoAck,
    Output,
    ServerInvite,
    ServerKey,
    ServerNonInvite,
    Terminated,
    TimedOut,
    Transmit,
    client_key,
    server_key,
    top_via,
)

from .flows import Datagrams, Flow, UdpFlow

log = logging.getLogger("sipline.sip.transactions")

ClientTransaction = ClientInvite | ClientNonInvite
ServerTransaction = ServerInvite | ServerNonInvite
# A flow kept for a retransmission's answer: a stream flow itself, a UDP one as (socket id, host, port).
_Kept = Flow | tuple[int, str, int]
# What a lingering transaction does with each late copy: send these bytes again over that flow,
# or (an empty tuple) nothing at all.
_Echo = tuple[bytes, _Kept] | tuple[()]
# An answered INVITE whose call is over (see `retire`): its flow, its bytes, our Contact in it,
# and the ACK sent for each dialog it set up, by the remote tag.
_Answered = tuple[_Kept, bytes, str, tuple[tuple[str, bytes], ...]]
# What a transaction tells its owner: Deliver(response), TimedOut() or NoAck().
Owner = Callable[[Deliver | TimedOut | NoAck], None]
# The TU's answer to a 2xx that sets up a dialog nobody wants any more: it acknowledges and ends
# that dialog (RFC 3261 §13.2.2.4) and returns the ACK it sent, for the 2xx's retransmissions.
LateAnswer = Callable[[SipRequest, SipResponse, str, Flow], bytes | None]


class _Entry:
    __slots__ = ("armed_for", "flow", "handle", "key", "owner", "reply_flow", "sent", "txn")

    def __init__(
        self,
        txn: ClientTransaction | ServerTransaction,
        key: tuple[str, ...],
        flow: Flow,
        owner: Owner | None,
    ) -> None:
        self.txn = txn
        self.key = key
        self.flow = flow
        self.owner = owner
        self.handle: asyncio.TimerHandle | None = None
        self.armed_for: float | None = None  # the deadline `handle` fires at
        self.reply_flow: Flow | None = None  # (server) where its responses go, found once
        self.sent: tuple[SipRequest | SipResponse, bytes] | None = None  # the last message sent, serialised

    def response_flow(self) -> Flow:
        if self.reply_flow is None:
            self.reply_flow = self.flow.for_response(top_via(self.txn.request))
        return self.reply_flow


class Transactions:
    def __init__(self, *, max_completed: int = 50_000) -> None:
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._servers: dict[tuple[str, ...], _Entry] = {}  # by ServerKey
        self._clients: dict[tuple[str, ...], _Entry] = {}  # by ClientKey
        self._entries: dict[int, _Entry] = {}  # by id() of the transaction: its owner's handle
        # What is left of lingering transactions and of retired answered INVITEs.
        self._server_echoes: ExpiringCache[ServerKey, _Echo] = ExpiringCache(max_completed)
        self._client_echoes: ExpiringCache[ClientKey, _Echo] = ExpiringCache(max_completed)
        self._answered: ExpiringCache[ClientKey, _Answered] = ExpiringCache(max_completed)
        self._sockets: dict[int, Datagrams] = {}  # the UDP sockets of kept flows, by id()
        self.late_answer: LateAnswer | None = None  # set by the TU that places INVITEs

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        if self._event_loop is None:
            self._event_loop = asyncio.get_running_loop()
        return self._event_loop

    def now(self) -> float:
        return self._loop.time()

    # --- server side -------------------------------------------------------------------------

    def absorb(self, request: SipRequest, flow: Flow) -> bool:
        """A retransmission of a request we are answering or answered, or the ACK of a non-2xx
        final response: handled here (True), and none of the TU's business."""
        key = server_key(request)
        if key is None:
            return False
        entry = self._servers.get(key)
        now = self.now()
        if entry is not None:
            txn = entry.txn
            assert isinstance(txn, ServerInvite | ServerNonInvite)
            if request.method == "ACK" and (
                not isinstance(txn, ServerInvite) or txn.state not in ("completed", "confirmed")
            ):
                # The ACK of a 2xx usually carries a branch of its own; one that reuses the
                # INVITE's (some peers do) still belongs to the dialog, not to the transaction.
                return False
            self._run(entry, txn.receive(request, now))
            return True
        if request.method == "ACK":
            # Not even the copies of a failure's ACK: at the dialog layer they find nothing to do,
            # and the ACK of a 2xx, which may carry the INVITE's branch, belongs there.
            return False
        echo = self._server_echoes.get(key, now)
        if echo is None:
            return False
        self._echo(echo)
        return True

    def known(self, key: ServerKey) -> bool:
        """A request of this server transaction is being answered, or was (a retransmission)."""
        return key in self._servers or self._server_echoes.get(key, self.now()) is not None

    def answered(self, key: ServerKey, data: bytes, flow: Flow) -> None:
        """A non-INVITE request over UDP answered at once, with a final response, outside any
        machine (`fast_register`, `SipService._register_answered`): what its machine would keep once
        completed (`_settle`), its response for the copies that come until Timer J."""
        now = self.now()
        self._server_echoes.purge(now)
        self._server_echoes.put(key, (data, self._keep(flow)), now + TIMEOUT)

    def server(self, request: SipRequest, flow: Flow, owner: Owner | None = None) -> ServerTransaction:
        """A new server transaction for a request `absorb` did not claim (never an ACK)."""
        txn: ServerTransaction
        if request.method == "INVITE":
            txn = ServerInvite(request, reliable=flow.reliable)
        else:
            txn = ServerNonInvite(request, reliable=flow.reliable)
        # A request without an RFC 3261 branch matches nothing (RFC 2543 peers): a key of its own.
        key = server_key(request) or ("", f"unmatched-{id(txn)}", request.method)
        entry = _Entry(txn, key, flow, owner)
        self._servers[key] = entry
        self._entries[id(txn)] = entry
        return txn

    def own(self, txn: ServerTransaction, owner: Owner) -> None:
        """Send a server transaction's events (NoAck, TimedOut) to `owner` from now on."""
        entry = self._entries.get(id(txn))
        if entry is not None:
            entry.owner = owner

    def find_server(self, key: ServerKey) -> ServerTransaction | None:
        entry = self._servers.get(key)
        txn = entry.txn if entry is not None else None
        return txn if isinstance(txn, ServerInvite | ServerNonInvite) else None

    def respond(self, txn: ServerTransaction, response: SipResponse) -> None:
        entry = self._entries.get(id(txn))
        if entry is not None:
            self._run(entry, txn.respond(response, self.now()))

    def acknowledged(self, txn: ServerInvite) -> None:
        entry = self._entries.get(id(txn))
        if entry is not None:
            self._run(entry, txn.acknowledged(self.now()))

    # --- client side -------------------------------------------------------------------------

    def client(self, request: SipRequest, flow: Flow, owner: Owner) -> ClientTransaction:
        """Start a client transaction for `request` over `flow`; its events go to `owner`."""
        txn: ClientTransaction
        if request.method == "INVITE":
            txn = ClientInvite(request, reliable=flow.reliable)
        else:
            txn = ClientNonInvite(request, reliable=flow.reliable)
        entry = _Entry(txn, txn.key, flow, owner)
        self._clients[txn.key] = entry
        self._entries[id(txn)] = entry
        self._run(entry, txn.start(self.now()))
        return txn

    def retire(self, txn: ClientInvite, contact: str, acks: dict[str, bytes]) -> None:
        """An answered INVITE whose call is over: until Timer M, a copy of a 2xx we acknowledged
        gets its ACK (`acks`, by the remote tag) again, and a 2xx of a dialog nobody wants (a fork
        answering late) goes to `late_answer`; `contact` was ours in the INVITE. Kept as plain
        values: the transaction's owner, and the call behind it, are let go."""
        entry = self._entries.get(id(txn))
        deadline = txn.deadline
        if entry is None or txn.state != "accepted" or deadline is None:
            return
        record = (self._keep(entry.flow), self._sent(entry, txn.request), contact, tuple(acks.items()))
        self._answered.purge(self.now())
        self._answered.put(txn.key, record, deadline)
        self._forget(entry)

    def cancelled(self, txn: ClientInvite) -> None:
        entry = self._entries.get(id(txn))
        if entry is not None:
            self._run(entry, txn.cancelled(self.now()))

    def response(self, response: SipResponse) -> bool:
        """Hand a response to its client transaction; False when none is waiting for it."""
        key = client_key(response)
        if key is None:
            return False
        entry = self._clients.get(key)
        now = self.now()
        if entry is not None:
            txn = entry.txn
            assert isinstance(txn, ClientInvite | ClientNonInvite)
            self._run(entry, txn.receive(response, now))
            return True
        echo = self._client_echoes.get(key, now)
        if echo is not None:
            if response.status >= 300:  # a failure's copy: a client INVITE's ACK again (§17.1.1.2)
                self._echo(echo)
            return True
        answered = self._answered.get(key, now)
        if answered is None:
            return False
        if 200 <= response.status < 300:
            self._late_2xx(key, answered, response, now)
        return True

    def _late_2xx(self, key: ClientKey, answered: _Answered, response: SipResponse, now: float) -> None:
        kept, invite, contact, acks = answered
        flow = self._recall(kept)
        ids = response_dialog_id(response)
        tag = ids[2] if ids is not None else ""
        for known, ack in acks:
            if known == tag:
                flow.send(ack)  # our ACK was lost
                return
        if self.late_answer is None or not tag:
            return
        try:
            request = parse_message(invite)  # our own INVITE's bytes: read again only for this
        except SipParseError:
            return
        if not isinstance(request, SipRequest):
            return
        sent = self.late_answer(request, response, contact, flow)
        expiry = self._answered.expiry(key, now)
        if sent is not None and expiry is not None:
            self._answered.put(key, (kept, invite, contact, (*acks, (tag, sent))), expiry)

    # --- running the machines ----------------------------------------------------------------

    def _run(self, entry: _Entry, outputs: list[Output]) -> None:
        txn = entry.txn
        for output in outputs:
            if isinstance(output, Transmit):
                message = output.message
                flow = entry.flow
                if isinstance(message, SipResponse):
                    flow = entry.response_flow()
                if entry.sent is None or entry.sent[0] is not message:  # retransmissions: the same bytes
                    entry.sent = (message, serialize(message))
                if not flow.send(entry.sent[1]) and isinstance(txn, ClientInvite | ClientNonInvite):
                    # The flow is gone: the machine reports it (TimedOut) on the next round.
                    self._loop.call_soon(self._transport_error, entry)
            elif isinstance(output, Terminated):
                self._forget(entry)
            elif entry.owner is not None:
                try:
                    entry.owner(output)
                except Exception:
                    log.exception("SIP: a transaction owner failed on %s", type(output).__name__)
        self._arm(entry)

    def _transport_error(self, entry: _Entry) -> None:
        txn = entry.txn
        if isinstance(txn, ClientInvite | ClientNonInvite) and txn.state != "terminated":
            self._run(entry, txn.transport_error(self.now()))

    def _arm(self, entry: _Entry) -> None:
        txn = entry.txn
        deadline = txn.deadline
        if deadline is not None and txn.lingering:
            self._settle(entry, deadline)
            return
        if entry.handle is not None:
            if deadline == entry.armed_for and txn.state != "terminated":
                return  # the timer already set still holds (most events move no deadline)
            entry.handle.cancel()
            entry.handle = None
        if deadline is None or txn.state == "terminated":
            return
        entry.armed_for = deadline
        entry.handle = self._loop.call_at(deadline, self._tick, entry)

    def _settle(self, entry: _Entry, deadline: float) -> None:
        """Keep what a lingering transaction still does as plain values, and drop it (see the
        module docstring): a server non-INVITE answers copies of its request with its final
        response, a client INVITE copies of a failure with its ACK; the others absorb copies."""
        txn = entry.txn
        echo: _Echo = ()
        if isinstance(txn, ServerNonInvite) and txn.final is not None:
            echo = (self._sent(entry, txn.final), self._keep(entry.response_flow()))
        elif isinstance(txn, ClientInvite) and entry.sent is not None:
            ack, data = entry.sent  # a failure's ACK: the last message it sent
            if isinstance(ack, SipRequest) and ack.method == "ACK":
                echo = (data, self._keep(entry.flow))
        echoes = self._server_echoes if isinstance(txn, ServerInvite | ServerNonInvite) else self._client_echoes
        echoes.purge(self.now())  # what expired goes as new entries come, not only at the bound
        echoes.put(entry.key, echo, deadline)  # type: ignore[arg-type]
        self._forget(entry)

    @staticmethod
    def _sent(entry: _Entry, message: SipRequest | SipResponse) -> bytes:
        sent = entry.sent
        return sent[1] if sent is not None and sent[0] is message else serialize(message)

    def _echo(self, echo: _Echo) -> None:
        if echo:
            data, kept = echo
            self._recall(kept).send(data)

    def _keep(self, flow: Flow) -> _Kept:
        """A flow as a lingering transaction keeps it: a UDP one as plain values, which the cyclic
        collector can leave alone (a registrar keeps 50,000 of them at 2,000 REGISTERs a second)."""
        if isinstance(flow, UdpFlow):
            socket = self._sockets.setdefault(id(flow.socket), flow.socket)  # held: its id stays its own
            return (id(socket), flow.remote[0], flow.remote[1])
        return flow

    def _recall(self, kept: _Kept) -> Flow:
        if isinstance(kept, tuple):
            socket_id, host, port = kept
            return UdpFlow(self._sockets[socket_id], (host, port))
        return kept

    def _tick(self, entry: _Entry) -> None:
        entry.handle = None
        self._run(entry, entry.txn.tick(self.now()))

    def _forget(self, entry: _Entry) -> None:
        if entry.handle is not None:
            entry.handle.cancel()
            entry.handle = None
        self._entries.pop(id(entry.txn), None)
        if isinstance(entry.txn, ClientInvite | ClientNonInvite):
            if self._clients.get(entry.key) is entry:
                del self._clients[entry.key]
        elif self._servers.get(entry.key) is entry:
            del self._servers[entry.key]

    def close(self) -> None:
        """Stop every timer (at shutdown)."""
        for entry in [*self._servers.values(), *self._clients.values()]:
            if entry.handle is not None:
                entry.handle.cancel()
        self._servers.clear()
        self._clients.clear()
        self._entries.clear()
        self._server_echoes.clear()
        self._client_echoes.clear()
        self._answered.clear()
        self._sockets.clear()

    def __len__(self) -> int:
        return len(self._servers) + len(self._clients)
