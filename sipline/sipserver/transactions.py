"""The transaction layer at work: the sans-IO machines of `sipline.sip.transaction`, their timers on
the event loop, their messages over their flows, their events to their owners.

Time for the machines is the loop's monotonic clock. A completed server non-INVITE transaction
over UDP has one duty left (RFC 3261 §17.2.2): answer a retransmission with its final response
until Timer J. That is kept compactly, as the response bytes in an expiring map, rather than as
a live machine with a loop timer: a registrar answers thousands of REGISTERs a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sipline.sip.expiring import ExpiringCache
from sipline.sip.message import SipRequest, SipResponse, serialize
from sipline.sip.transaction import (
    TIMEOUT,
    ClientInvite,
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
# A flow kept for a retransmitted request's answer: a stream flow itself, a UDP one as (socket id, host, port).
_Kept = Flow | tuple[int, str, int]
# What a transaction tells its owner: Deliver(response), TimedOut() or NoAck().
Owner = Callable[[Deliver | TimedOut | NoAck], None]


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
        self._completed: ExpiringCache[ServerKey, tuple[bytes, _Kept]] = ExpiringCache(max_completed)
        self._sockets: dict[int, Datagrams] = {}  # the UDP sockets of kept flows, by id()

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
            return False
        done = self._completed.get(key, now)
        if done is not None:
            data, kept = done
            self._recall(kept).send(data)
            return True
        return False

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

    def cancelled(self, txn: ClientInvite) -> None:
        entry = self._entries.get(id(txn))
        if entry is not None:
            self._run(entry, txn.cancelled(self.now()))

    def response(self, response: SipResponse) -> bool:
        """Hand a response to its client transaction; False when none is waiting for it."""
        key = client_key(response)
        entry = self._clients.get(key) if key is not None else None
        if entry is None:
            return False
        txn = entry.txn
        assert isinstance(txn, ClientInvite | ClientNonInvite)
        self._run(entry, txn.receive(response, self.now()))
        return True

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
        if entry.handle is not None:
            if deadline == entry.armed_for and txn.state != "terminated":
                return  # the timer already set still holds (most events move no deadline)
            entry.handle.cancel()
            entry.handle = None
        if deadline is None or txn.state == "terminated":
            return
        if isinstance(txn, ServerNonInvite) and txn.state == "completed" and txn.final is not None:
            # Timer J's only duty is kept compactly (see the module docstring).
            sent = entry.sent
            data = sent[1] if sent is not None and sent[0] is txn.final else serialize(txn.final)
            kept = self._keep(entry.response_flow())
            self._completed.put(entry.key, (data, kept), self.now() + TIMEOUT)  # type: ignore[arg-type]
            self._forget(entry)
            return
        entry.armed_for = deadline
        entry.handle = self._loop.call_at(deadline, self._tick, entry)

    def _keep(self, flow: Flow) -> _Kept:
        """A flow as `_completed` keeps it: a UDP one as plain values, which the cyclic collector
        can leave alone. A registrar keeps tens of thousands of these (50,000 at 2,000 REGISTERs
        a second), and as objects they made each of the collector's full passes last over 100 ms
        (measured), every answer waiting meanwhile."""
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
        self._completed.clear()
        self._sockets.clear()

    def __len__(self) -> int:
        return len(self._servers) + len(self._clients)
